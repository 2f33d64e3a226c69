"""Device arrival and removal: a udev netlink monitor when available, a periodic rescan always.

Readers that wait for a device call :meth:`ChangeSignal.wait` with their retry delay; the udev
monitor (pyudev, registered with ``loop.add_reader``) wakes them as soon as an input, tty or
hidraw node is added or removed. Without udev (containers, minimal systems) the delay alone
paces the rescan, so nothing depends on udev being there.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

log = structlog.get_logger("gateway.capture")

SUBSYSTEMS = ("input", "tty", "hidraw")


class ChangeSignal:
    """Wakes every waiter once per change; waiters without a change time out."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.changes = 0

    def notify(self) -> None:
        self.changes += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        """True when woken by a change, False when ``seconds`` passed first."""
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            return False
        return True


class UdevWatcher:
    """Forwards udev add/remove events of device nodes to a :class:`ChangeSignal`."""

    def __init__(self, signal: ChangeSignal) -> None:
        self._signal = signal
        self._monitor: Any = None

    def start(self) -> bool:
        """Start watching; False (and a log line saying so) when udev is unavailable."""
        try:
            import pyudev

            monitor = pyudev.Monitor.from_netlink(pyudev.Context())
            for subsystem in SUBSYSTEMS:
                monitor.filter_by(subsystem)
            monitor.start()
            asyncio.get_running_loop().add_reader(monitor.fileno(), self._drain)
        except (ImportError, OSError, ValueError) as exc:
            log.warning("hotplug_udev_unavailable", error=str(exc), fallback="periodic rescan")
            return False
        self._monitor = monitor
        log.info("hotplug_udev_watching", subsystems=list(SUBSYSTEMS))
        return True

    def stop(self) -> None:
        if self._monitor is not None:
            with contextlib.suppress(OSError, ValueError):
                asyncio.get_running_loop().remove_reader(self._monitor.fileno())
            self._monitor = None

    def _drain(self) -> None:
        changed = False
        while True:
            try:
                device = self._monitor.poll(0)
            except OSError as exc:
                log.warning("hotplug_udev_error", error=str(exc))
                break
            if device is None:
                break
            if device.action in ("add", "remove") and device.device_node:
                log.info("hotplug", action=device.action, node=device.device_node)
                changed = True
        if changed:
            self._signal.notify()
