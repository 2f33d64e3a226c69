"""What capture hands to the rest of the gateway: ``CapturedScan``, its sortable id, and the clock.

Scan ids are ULIDs (48-bit millisecond time + 80 random bits, Crockford base32, 26 characters):
unique, and sorting them as strings sorts scans by capture time. Ids made within the same
millisecond by one factory are strictly increasing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gateway.codes.decode import DecodedScan
    from gateway.codes.keyboard import KeyTrace


class Clock(Protocol):
    """Injected time: ``time()`` is wall-clock seconds (UNIX epoch), ``monotonic()`` for gaps."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class ScanIdFactory:
    """Makes ULIDs from the injected clock; monotonic within a millisecond."""

    def __init__(self, clock: Clock, randbytes: Callable[[int], bytes] = os.urandom) -> None:
        self._clock = clock
        self._randbytes = randbytes
        self._last_ms = -1
        self._last_random = 0

    def new(self) -> str:
        ms = int(self._clock.time() * 1000)
        if ms <= self._last_ms:
            ms = self._last_ms
            random = self._last_random + 1
            if random >> 80:  # 2^80 ids in one millisecond: borrow the next one
                ms += 1
                random = int.from_bytes(self._randbytes(10), "big")
        else:
            random = int.from_bytes(self._randbytes(10), "big")
        self._last_ms, self._last_random = ms, random
        return _base32(ms, 10) + _base32(random, 16)


@dataclass(frozen=True, slots=True)
class CapturedScan:
    """One scan from one scanner, decoded, with the raw input kept for diagnostics."""

    scan_id: str
    scanner_id: str
    counter: str | None
    at: datetime  # wall clock, UTC, when the scan was complete
    decoded: DecodedScan
    raw: KeyTrace | bytes
    # layout auto: the scanner's belief after this scan, when this scan changed it (to store)
    layout_belief: dict[str, Any] | None = None

    @staticmethod
    def timestamp(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    def to_json(self) -> dict[str, Any]:
        """The scan event body (MQTT ``<base>/scan``): id, scanner, counter, time, decode result."""
        body: dict[str, Any] = {
            "id": self.scan_id,
            "scanner_id": self.scanner_id,
            "counter": self.counter,
            "at": self.at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        body.update(self.decoded.to_json())
        return body
