"""``ScannerHub``: every configured scanner read at once, each in its own supervised task.

    async with ScannerHub(configs) as hub:
        async for scan in hub.scans():
            ...
        hub.health()  # snapshot, any time

The hub owns its tasks (an ``asyncio.TaskGroup``): leaving the ``async with`` cancels them and
releases every device. A reader that fails is restarted with exponential backoff; a missing or
unplugged device is waited for (udev wakes the wait, a rescan timer bounds it); one failing
scanner never stops the others. Decoded scans from all scanners go into one bounded queue.
``layout_beliefs`` (scanner id → stored belief) resumes what ``layout = "auto"`` scanners had
learned before a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol

from gateway.capture.config import Kind, ScannerConfig
from gateway.capture.devices import InputBackend, KernelInput
from gateway.capture.evdev_source import EvdevSource
from gateway.capture.hidpos_source import HidPosSource
from gateway.capture.hotplug import ChangeSignal, UdevWatcher
from gateway.capture.runtime import (
    CaptureError,
    DeviceLost,
    DeviceMissing,
    ScannerHealth,
    ScannerRuntime,
    ScannerState,
)
from gateway.capture.scan import SYSTEM_CLOCK, CapturedScan, Clock, ScanIdFactory
from gateway.capture.serial_source import SerialSource

RESCAN_S = 2.0  # how often a missing device is looked for when udev says nothing
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
QUEUE_SIZE = 1000


class Source(Protocol):
    async def run(self, rt: ScannerRuntime) -> None: ...


class ScannerHub:
    """Reads all configured scanners; see the module docstring."""

    def __init__(
        self,
        configs: Sequence[ScannerConfig],
        clock: Clock = SYSTEM_CLOCK,
        *,
        input_backend: InputBackend | None = None,
        rescan_s: float = RESCAN_S,
        backoff: tuple[float, float] = (BACKOFF_MIN_S, BACKOFF_MAX_S),
        watch_udev: bool = True,
        queue_size: int = QUEUE_SIZE,
        layout_beliefs: Mapping[str, Any] | None = None,
    ) -> None:
        self._clock = clock
        self._queue: asyncio.Queue[CapturedScan] = asyncio.Queue(queue_size)
        self._ids = ScanIdFactory(clock)
        self._rescan_s = rescan_s
        self._backoff = backoff
        self._watch_udev = watch_udev
        self._input = input_backend or KernelInput()
        self._claimed: set[str] = set()  # evdev nodes held by one of our scanners
        self.changes = ChangeSignal()  # notified on device arrival/removal
        self.hotplug = "rescan"  # "udev" once the netlink monitor runs (for the health report)
        self._scanners = [
            (
                ScannerRuntime(c, clock, self._ids, self._queue, (layout_beliefs or {}).get(c.id)),
                self._source(c),
            )
            for c in configs
        ]
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._udev: UdevWatcher | None = None

    def _source(self, config: ScannerConfig) -> Source:
        if config.kind is Kind.EVDEV:
            return EvdevSource(config, self._input, self._claimed)
        if config.kind is Kind.SERIAL:
            return SerialSource(config)
        return HidPosSource(config)

    async def __aenter__(self) -> ScannerHub:
        if self._watch_udev and self._scanners:
            self._udev = UdevWatcher(self.changes)
            if self._udev.start():
                self.hotplug = "udev"
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._tasks = [
            self._group.create_task(self._supervise(rt, source), name=f"scanner {rt.config.id}")
            for rt, source in self._scanners
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._group is not None
        for task in self._tasks:
            task.cancel()
        try:
            await self._group.__aexit__(exc_type, exc, tb)
        finally:
            if self._udev is not None:
                self._udev.stop()
            for rt, _ in self._scanners:
                rt.state = ScannerState.STOPPED

    async def scans(self) -> AsyncIterator[CapturedScan]:
        """Every scan from every scanner, in the order they completed."""
        while True:
            yield await self._queue.get()

    def health(self) -> tuple[ScannerHealth, ...]:
        return tuple(rt.health() for rt, _ in self._scanners)

    async def _supervise(self, rt: ScannerRuntime, source: Source) -> None:
        low, high = self._backoff
        delay = low
        while True:
            scans_before = rt.counts["scans"]
            try:
                await source.run(rt)
                raise DeviceLost(f"{rt.device} stopped delivering")
            except asyncio.CancelledError:
                raise
            except DeviceMissing as exc:
                if rt.state is not ScannerState.WAITING:
                    rt.event("waiting", ScannerState.WAITING, reason=str(exc))
                rt.device = None
                wait = self._rescan_s
            except DeviceLost as exc:
                rt.event("lost", ScannerState.LOST, reason=str(exc))
                wait = low
            except CaptureError as exc:
                rt.event("error", ScannerState.ERROR, error=str(exc))
                wait = delay
            except Exception as exc:  # a bug or an unexpected OS error: keep the others going
                rt.log.exception("reader_crashed")
                rt.event("error", ScannerState.ERROR, error=f"{type(exc).__name__}: {exc}")
                wait = delay
            if rt.counts["scans"] > scans_before or rt.state is ScannerState.WAITING:
                delay = low
            elif rt.state is ScannerState.ERROR:
                delay = min(delay * 2, high)
            await self.changes.wait(wait)
