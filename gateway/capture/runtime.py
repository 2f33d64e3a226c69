"""Per-scanner runtime state shared by the readers and the hub: device events, counters, health,
and delivery of decoded scans into the hub's queue.

Every device event (attached, grabbed, lost, error…) goes through :meth:`ScannerRuntime.event`,
which logs it with structlog and counts it, so the health snapshot and the log always agree.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import structlog

from gateway.capture.scan import CapturedScan, Clock, ScanIdFactory

if TYPE_CHECKING:
    from gateway.capture.config import ScannerConfig
    from gateway.codes.decode import DecodedScan
    from gateway.codes.keyboard import KeyTrace


class CaptureError(Exception):
    """A device problem whose message tells the technician what is wrong and what to do."""


class DeviceMissing(CaptureError):
    """The configured device is not present (yet): wait for it to be plugged in."""


class DeviceLost(CaptureError):
    """The device was there and went away (unplugged, port closed): wait for it to come back."""


class ScannerState(StrEnum):
    STARTING = "starting"
    WAITING = "waiting"  # no matching device present
    ATTACHED = "attached"  # device open, not yet ready (e.g. waiting for keys to be released)
    READY = "ready"  # reading (grabbed, for evdev)
    LOST = "lost"
    ERROR = "error"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ScannerHealth:
    """A snapshot of one scanner for the health report."""

    id: str
    kind: str
    state: ScannerState
    device: str | None
    counts: Mapping[str, int] = field(default_factory=dict)
    last_error: str | None = None
    last_scan_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state.value,
            "device": self.device,
            "counts": dict(self.counts),
            "last_error": self.last_error,
            "last_scan_at": self.last_scan_at,
        }


class ScannerRuntime:
    """The live state of one configured scanner; owned by its supervisor task."""

    def __init__(
        self,
        config: ScannerConfig,
        clock: Clock,
        ids: ScanIdFactory,
        queue: asyncio.Queue[CapturedScan],
    ) -> None:
        self.config = config
        self.clock = clock
        self._ids = ids
        self._queue = queue
        self.state = ScannerState.STARTING
        self.device: str | None = None
        self.counts: Counter[str] = Counter()
        self.last_error: str | None = None
        self.last_scan_at: float | None = None
        self.log = structlog.get_logger("gateway.capture").bind(
            scanner_id=config.id, kind=config.kind.value
        )

    def event(
        self,
        name: str,
        state: ScannerState | None = None,
        *,
        error: str | None = None,
        **fields: Any,
    ) -> None:
        """Record a device event: count it, log it, optionally change state / last error."""
        self.counts[name] += 1
        if state is not None:
            self.state = state
        if error is not None:
            self.last_error = error
            self.log.warning(name, device=self.device, error=error, **fields)
        else:
            self.log.info(name, device=self.device, **fields)

    async def deliver(self, decoded: DecodedScan, raw: KeyTrace | bytes) -> None:
        now = self.clock.time()
        scan = CapturedScan(
            scan_id=self._ids.new(),
            scanner_id=self.config.id,
            counter=self.config.counter,
            at=CapturedScan.timestamp(now),
            decoded=decoded,
            raw=raw,
        )
        self.counts["scans"] += 1
        if not decoded.ok:
            self.counts["scans_rejected"] += 1
        self.last_scan_at = now
        await self._queue.put(scan)

    def health(self) -> ScannerHealth:
        return ScannerHealth(
            id=self.config.id,
            kind=self.config.kind.value,
            state=self.state,
            device=self.device,
            counts=dict(self.counts),
            last_error=self.last_error,
            last_scan_at=self.last_scan_at,
        )
