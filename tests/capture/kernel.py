"""Stand-ins for the kernel's evdev nodes — the only thing faked in the capture tests.

They live in ``gateway/capture/virtual.py`` (the demo's virtual scanners use them too); the
tests keep their names for them.
"""

from gateway.capture.virtual import READ_BATCH, input_events, syn_dropped
from gateway.capture.virtual import VirtualInput as KernelInput
from gateway.capture.virtual import VirtualInputNode as KernelInputNode

__all__ = ["READ_BATCH", "KernelInput", "KernelInputNode", "input_events", "syn_dropped"]
