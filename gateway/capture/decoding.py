"""Where capture meets the decoder: the capture-level problems (a scan cut short by an unplug, a flood, a missing terminator).

A scan that capture knows to be incomplete is reported with ``SCAN_INTERRUPTED`` and without a
pack: a truncated code can still parse as a valid but *different* pack (a shortened serial),
and that must never reach the NMVS.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.capture.framing import Frame, FrameEnd
from gateway.codes.decode import DecodedScan, DecodeSettings, decode_bytes, decode_keys
from gateway.codes.keyboard import KeyTrace
from gateway.codes.layout_belief import LayoutBelief
from gateway.codes.problems import ProblemCode, error


def interrupted(decoded: DecodedScan, detail: str) -> DecodedScan:
    """``decoded`` marked incomplete: ``SCAN_INTERRUPTED`` added, pack withheld."""
    return replace(
        decoded,
        pack=None,
        problems=(*decoded.problems, error(ProblemCode.SCAN_INTERRUPTED, detail)),
    )


def decode_frame(frame: Frame, settings: DecodeSettings, terminator: str | None) -> DecodedScan:
    """Decode a serial or HID POS frame. ``terminator``: the configured one's name, when a gap
    ending a frame means the terminator never came."""
    decoded = decode_bytes(frame.data, settings)
    if frame.ended_by is FrameEnd.OVERFLOW:
        return interrupted(
            decoded, f"more than {len(frame.data)} bytes without an end: the device floods"
        )
    if frame.truncated:
        return interrupted(decoded, "the scanner stopped before the last HID POS report")
    if frame.ended_by is FrameEnd.GAP and terminator is not None:
        return interrupted(
            decoded, f"no {terminator} after the data: check the scanner's suffix setting"
        )
    return decoded


def decode_trace(
    trace: KeyTrace, settings: DecodeSettings, belief: LayoutBelief | None = None
) -> DecodedScan:
    """Decode a keyboard-wedge scan. When the scanner is set to end scans with a suffix key, a
    scan ended by the inter-key gap never got its suffix: the scanner paused mid-code (a slow
    Bluetooth link), and the part read so far may parse as a valid but shorter serial."""
    decoded = decode_keys(trace, settings, belief)
    if trace.ended_by == "gap" and settings.keyboard.suffix_keys:
        return interrupted(
            decoded,
            "no Enter after the data: check the scanner's suffix setting, "
            "or set suffix_keys = [] for a scanner that sends none",
        )
    return decoded
