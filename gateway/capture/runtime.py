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
from gateway.codes.keyboard import AUTO_LAYOUT
from gateway.codes.layout_belief import LayoutBelief
from gateway.codes.problems import ProblemCode

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
    layout: dict[str, Any] | None = None  # layout auto: the learned belief

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state.value,
            "device": self.device,
            "counts": dict(self.counts),
            "last_error": self.last_error,
            "last_scan_at": self.last_scan_at,
            "layout": self.layout,
        }


class ScannerRuntime:
    """The live state of one configured scanner; owned by its supervisor task."""

    def __init__(
        self,
        config: ScannerConfig,
        clock: Clock,
        ids: ScanIdFactory,
        queue: asyncio.Queue[CapturedScan],
        stored_belief: Any = None,
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
        decode = config.decode
        # layout auto: what this scanner's scans showed, resumed from the state database
        self.belief: LayoutBelief | None = None
        if decode.keyboard.layout == AUTO_LAYOUT:
            self.belief = LayoutBelief.from_stored(
                stored_belief, decode.auto_layouts
            ) or LayoutBelief.fresh(decode.auto_layouts)

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
        changed = self._learn(decoded)
        scan = CapturedScan(
            scan_id=self._ids.new(),
            scanner_id=self.config.id,
            counter=self.config.counter,
            at=CapturedScan.timestamp(now),
            decoded=decoded,
            raw=raw,
            layout_belief=None if changed is None else changed.stored(),
        )
        self.counts["scans"] += 1
        if not decoded.ok:
            self.counts["scans_rejected"] += 1
        self.last_scan_at = now
        await self._queue.put(scan)

    def _learn(self, decoded: DecodedScan) -> LayoutBelief | None:
        """Keep the belief this scan's decoding arrived at; return it when it changed (logged)."""
        before, after = self.belief, decoded.belief
        if before is None or after is None or after == before:
            return None
        self.belief = after
        changed = [p for p in decoded.problems if p.code is ProblemCode.LAYOUT_CHANGED]
        if changed and after.candidates != before.candidates:
            self.log.warning(
                "layout_relearned", learned=list(after.candidates), before=list(before.candidates)
            )
        elif changed:
            self.log.warning(
                "layout_misfit", layouts=list(decoded.layouts), learned=list(before.candidates)
            )
        elif after.calibrated and not before.calibrated:
            self.log.info("layout_calibrated", learned=list(after.candidates))
        elif after.settled and not before.settled:
            self.log.info("layout_settled", learned=list(after.candidates), proofs=after.proofs)
        return after

    def health(self) -> ScannerHealth:
        return ScannerHealth(
            id=self.config.id,
            kind=self.config.kind.value,
            state=self.state,
            device=self.device,
            counts=dict(self.counts),
            last_error=self.last_error,
            last_scan_at=self.last_scan_at,
            layout=None if self.belief is None else self.belief.to_json(),
        )
