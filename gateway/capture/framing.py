"""Pure framers: a byte stream (serial/CDC) or HID POS input reports → one scan's bytes each.

No I/O and no clock of their own: the readers feed them what arrived and the time it arrived
(seconds on any monotonic scale), and ask when the next gap deadline falls. Bytes are kept
exactly as received — never stripped (Python counts 0x1C–0x1F as whitespace, so ``strip()``
would eat a trailing GS/RS) — and every frame is capped so a flood cannot grow memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FrameEnd(StrEnum):
    TERMINATOR = "terminator"
    GAP = "gap"
    OVERFLOW = "overflow"
    LAST_REPORT = "last_report"


@dataclass(frozen=True, slots=True)
class Frame:
    """One scan's bytes. ``truncated`` frames lost bytes (overflow or a cut-short HID POS scan)."""

    data: bytes
    ended_by: FrameEnd
    truncated: bool = False


class ByteFramer:
    """Splits a byte stream on a terminator (CR, LF, CRLF, EOT…) and/or an inter-byte gap.

    With an empty terminator only the gap ends a frame. A frame reaching ``max_bytes`` without
    its terminator is emitted as truncated, and the rest of that run is discarded up to the next
    terminator (or gap) so a flooding device yields one bad scan instead of thousands.
    Empty frames (two terminators in a row) are not scans and are skipped.
    """

    def __init__(self, terminator: bytes, gap_s: float | None, max_bytes: int) -> None:
        if not terminator and gap_s is None:
            raise ValueError("a framer needs a terminator, a gap, or both")
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self._terminator = terminator
        self._gap_s = gap_s
        self._max = max_bytes
        self._buffer = bytearray()
        self._last_at: float | None = None
        self._discarding = False
        self.dropped_bytes = 0  # discarded after a cap, for the health report

    def feed(self, data: bytes, now: float) -> list[Frame]:
        frames: list[Frame] = []
        gap_frame = self.poll(now)
        if gap_frame is not None:
            frames.append(gap_frame)
        if not data:
            return frames
        self._last_at = now
        self._buffer += data
        terminator = self._terminator
        while True:
            end = self._buffer.find(terminator) if terminator else -1
            if end < 0:
                break
            chunk = bytes(self._buffer[:end])
            del self._buffer[: end + len(terminator)]
            if self._discarding:
                self._discarding = False
                self.dropped_bytes += len(chunk)
            elif chunk:
                frames.extend(self._capped(chunk, FrameEnd.TERMINATOR))
        self._overflow_check(frames)
        return frames

    def poll(self, now: float) -> Frame | None:
        """The frame ended by the inter-byte gap, if ``now`` is past it."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        chunk = bytes(self._buffer)
        self._buffer.clear()
        self._last_at = None
        if self._discarding:
            self._discarding = False
            self.dropped_bytes += len(chunk)
            return None
        return Frame(chunk, FrameEnd.GAP) if chunk else None

    def deadline(self) -> float | None:
        """When ``poll`` will end the pending frame, or None when nothing is pending."""
        if self._gap_s is None or self._last_at is None:
            return None
        if not self._buffer and not self._discarding:
            return None
        return self._last_at + self._gap_s

    def pending(self) -> bytes:
        """The bytes of the frame in progress (what is lost if the device goes away now)."""
        return b"" if self._discarding else bytes(self._buffer)

    def _capped(self, chunk: bytes, ended_by: FrameEnd) -> list[Frame]:
        if len(chunk) <= self._max:
            return [Frame(chunk, ended_by)]
        self.dropped_bytes += len(chunk) - self._max
        return [Frame(chunk[: self._max], FrameEnd.OVERFLOW, truncated=True)]

    def _overflow_check(self, frames: list[Frame]) -> None:
        keep = max(len(self._terminator) - 1, 0)  # a terminator may be split across chunks
        if self._discarding:
            excess = len(self._buffer) - keep
            if excess > 0:
                self.dropped_bytes += excess
                del self._buffer[:excess]
            return
        if len(self._buffer) > self._max:
            frames.append(
                Frame(bytes(self._buffer[: self._max]), FrameEnd.OVERFLOW, truncated=True)
            )
            excess = len(self._buffer) - keep
            self.dropped_bytes += excess - self._max
            del self._buffer[:excess]
            self._discarding = True


@dataclass(frozen=True, slots=True)
class HidPosLayout:
    """Where things sit in one HID POS input report (offsets include the report-ID byte).

    ``pos`` follows the HID POS bar-code scanner report documented by Newland/IDTech: report ID
    0x02, length, up to 56 data bytes, symbology identifier at 62, "more data" flag at 63.
    ``honeywell`` follows the layout seen by the WebHID reference driver for Honeywell/Youjie
    (AIM identifier at 2–4 before the data, flag at 63; inferred, verify on hardware): there the
    three AIM characters are kept in front of the data so the text decoder sees ``]d2…``.
    """

    name: str
    report_id: int
    length_offset: int
    data_offset: int
    max_data: int
    more_offset: int
    aim_offset: int | None = None  # 3 AIM characters to prepend to the scan
    length_adjust: int = 0  # what to add to the length byte to get the data byte count
    report_size: int = 64


HIDPOS_LAYOUTS: dict[str, HidPosLayout] = {
    "pos": HidPosLayout(
        "pos", report_id=0x02, length_offset=1, data_offset=2, max_data=56, more_offset=63
    ),
    "honeywell": HidPosLayout(
        "honeywell",
        report_id=0x02,
        length_offset=1,
        data_offset=5,
        max_data=56,
        more_offset=63,
        aim_offset=2,
        length_adjust=-1,
    ),
}


class HidPosAssembler:
    """Cuts a byte stream into fixed-size reports and concatenates scanned-data reports until
    the one whose "more data" flag is 0. Reports with another report ID are ignored.

    A scan whose continuation never arrives is ended by ``poll`` after ``gap_s`` and flagged
    truncated; so is one that grows past ``max_bytes``.
    """

    def __init__(self, layout: HidPosLayout, gap_s: float, max_bytes: int) -> None:
        self._layout = layout
        self._gap_s = gap_s
        self._max = max_bytes
        self._pending = bytearray()  # partial report (pipes may split or merge reads)
        self._scan = bytearray()
        self._open = False
        self._last_at = 0.0
        self._overflowed = False

    def feed(self, data: bytes, now: float) -> list[Frame]:
        frames: list[Frame] = []
        cut = self.poll(now)
        if cut is not None:
            frames.append(cut)
        self._pending += data
        size = self._layout.report_size
        while len(self._pending) >= size:
            report = bytes(self._pending[:size])
            del self._pending[:size]
            frame = self._report(report, now)
            if frame is not None:
                frames.append(frame)
        return frames

    def poll(self, now: float) -> Frame | None:
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        data = bytes(self._scan)
        self._reset()
        return Frame(data, FrameEnd.GAP, truncated=True)

    def deadline(self) -> float | None:
        return self._last_at + self._gap_s if self._open else None

    def pending(self) -> bytes:
        return bytes(self._scan)

    def _report(self, report: bytes, now: float) -> Frame | None:
        layout = self._layout
        if report[0] != layout.report_id:
            return None
        count = max(0, min(report[layout.length_offset] + layout.length_adjust, layout.max_data))
        if not self._open and layout.aim_offset is not None:
            self._scan += report[layout.aim_offset : layout.aim_offset + 3]
        room = self._max - len(self._scan)
        payload = report[layout.data_offset : layout.data_offset + count]
        if len(payload) > room:
            self._overflowed = True
        self._scan += payload[: max(room, 0)]
        self._open = True
        self._last_at = now
        if report[layout.more_offset]:
            return None
        frame = Frame(
            bytes(self._scan),
            FrameEnd.OVERFLOW if self._overflowed else FrameEnd.LAST_REPORT,
            truncated=self._overflowed,
        )
        self._reset()
        return frame

    def _reset(self) -> None:
        self._scan.clear()
        self._open = False
        self._overflowed = False


def encode_hidpos_reports(data: bytes, layout: HidPosLayout, aim: bytes = b"") -> list[bytes]:
    """The reports a scanner in HID POS mode sends for ``data`` (tests, benchmark, self-test)."""
    reports = []
    chunks = [data[i : i + layout.max_data] for i in range(0, len(data), layout.max_data)] or [b""]
    for index, chunk in enumerate(chunks):
        report = bytearray(layout.report_size)
        report[0] = layout.report_id
        report[layout.length_offset] = len(chunk) - layout.length_adjust
        report[layout.data_offset : layout.data_offset + len(chunk)] = chunk
        if layout.aim_offset is not None:
            report[layout.aim_offset : layout.aim_offset + 3] = aim.ljust(3, b"\0")[:3]
        report[layout.more_offset] = 1 if index < len(chunks) - 1 else 0
        reports.append(bytes(report))
    return reports
