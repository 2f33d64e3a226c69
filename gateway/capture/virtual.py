"""Virtual evdev nodes: stand-ins for the kernel's ``/dev/input/eventN`` — the only thing faked
in the capture tests, and the demo's virtual keyboard-wedge scanners (no ``/dev/uinput`` needed).

A ``VirtualInputNode`` behaves like ``/dev/input/eventN`` seen through python-evdev: a real
file descriptor that polls readable when events are queued, non-blocking ``read()`` returning
``evdev.InputEvent`` objects (``BlockingIOError`` when empty), key state tracked as the kernel
does it (``active_keys`` reflects presses even while nobody reads), ``EVIOCGRAB`` semantics
(one grabber; while grabbed, other readers — the "desktop" — receive nothing) and ``ENODEV``
from every call once unplugged, with the fd turning readable so the reader notices.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterable

from evdev import InputEvent, ecodes

from gateway.capture.devices import InputDeviceInfo
from gateway.codes.keyboard import KeyEvent

READ_BATCH = 64  # python-evdev reads at most 64 events per read()


def input_events(keys: Iterable[KeyEvent], start: float | None = None) -> list[InputEvent]:
    """``emulate`` output as the kernel would timestamp it (spacing kept, starting now)."""
    keys = list(keys)
    base = time.time() if start is None else start
    first = keys[0].time if keys else 0.0
    events = []
    for key in keys:
        stamp = base + (key.time - first)
        sec = int(stamp)
        events.append(
            InputEvent(sec, int((stamp - sec) * 1_000_000), key.type, key.code, key.value)
        )
    return events


def syn_dropped() -> InputEvent:
    now = time.time()
    return InputEvent(int(now), int(now % 1 * 1e6), ecodes.EV_SYN, ecodes.SYN_DROPPED, 0)


class VirtualInputNode:
    def __init__(
        self,
        path: str,
        name: str = "Honeywell Imaging & Mobility 1950g",
        vendor: int = 0x0C2E,
        product: int = 0x0B61,
        links: tuple[str, ...] = (),
        types_text: bool = True,
    ) -> None:
        self.path = path
        self.info = InputDeviceInfo(
            path, name, "usb-0000:00:14.0-2/input0", vendor, product, types_text, links
        )
        self.name = name
        self._queue: list[InputEvent] = []
        self.closed = True
        self.keys_down: set[int] = set()
        self.grabbed = False
        self.grabbed_elsewhere = False  # another process holds EVIOCGRAB
        self.unplugged = False
        self.desktop: list[InputEvent] = []  # what other readers (X, a VT) received
        self.grab_calls: list[frozenset[int]] = []  # keys down at each successful grab
        self.press_during_grab: list[InputEvent] = []  # emitted just before the next grab takes
        self.open()

    @property
    def fd(self) -> int:
        return self._r

    # the kernel side -------------------------------------------------------------------
    def emit(self, events: Iterable[InputEvent]) -> None:
        assert not self.unplugged
        for event in events:
            if event.type == ecodes.EV_KEY:
                if event.value == 1:
                    self.keys_down.add(event.code)
                elif event.value == 0:
                    self.keys_down.discard(event.code)
            if not self.grabbed:
                self.desktop.append(event)
            if not self.closed:
                self._queue.append(event)
        if not self.closed:
            os.write(self._w, b"!")

    @property
    def unread(self) -> int:
        """Events queued for the reader (the kernel discards them on unplug: read gives ENODEV)."""
        return len(self._queue)

    def unplug(self) -> None:
        self.unplugged = True
        if not self.closed:
            os.write(self._w, b"!")

    # the python-evdev side -------------------------------------------------------------
    def open(self) -> None:
        """A fresh file description: events emitted while nobody had it open are not seen."""
        if self.closed:
            self._r, self._w = os.pipe()
            os.set_blocking(self._r, False)
            self._queue = []
            self.closed = False

    def _check(self) -> None:
        if self.unplugged:
            raise OSError(errno.ENODEV, "No such device")

    def read(self) -> list[InputEvent]:
        self._check()
        with contextlib.suppress(BlockingIOError):
            os.read(self._r, 65536)
        if not self._queue:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        events, self._queue = self._queue[:READ_BATCH], self._queue[READ_BATCH:]
        if self._queue:
            os.write(self._w, b"!")  # still readable, as epoll would say
        return events

    def grab(self) -> None:
        self._check()
        if self.grabbed or self.grabbed_elsewhere:
            raise OSError(errno.EBUSY, "Device or resource busy")
        racing, self.press_during_grab = self.press_during_grab, []
        self.emit(racing)
        self.grabbed = True
        self.grab_calls.append(frozenset(self.keys_down))

    def ungrab(self) -> None:
        self._check()
        if not self.grabbed:
            raise OSError(errno.EINVAL, "Invalid argument")
        self.grabbed = False

    def active_keys(self) -> list[int]:
        self._check()
        return sorted(self.keys_down)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.grabbed = False
            os.close(self._r)
            os.close(self._w)


class VirtualInput:
    """``/dev/input`` holding the nodes currently plugged in (an ``InputBackend``)."""

    def __init__(self, *nodes: VirtualInputNode) -> None:
        self.nodes = {node.path: node for node in nodes}
        self.opened: list[str] = []

    def plug(self, node: VirtualInputNode) -> None:
        self.nodes[node.path] = node

    def unplug(self, path: str) -> None:
        self.nodes.pop(path).unplug()

    def list(self) -> list[InputDeviceInfo]:
        return [node.info for node in self.nodes.values()]

    def open(self, path: str) -> VirtualInputNode:
        node = self.nodes.get(path)
        if node is None:
            raise OSError(errno.ENOENT, "No such file or directory")
        node.open()
        self.opened.append(path)
        return node
