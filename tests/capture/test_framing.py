"""The pure framers: serial byte framing and HID POS report assembly."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.capture.framing import (
    HIDPOS_LAYOUTS,
    ByteFramer,
    Frame,
    FrameEnd,
    HidPosAssembler,
    encode_hidpos_reports,
)

SCAN = b"]d2010858600770385117241231" + b"10HB5R\x1d21587E4QA11R"
TERMINATORS = [b"\r", b"\n", b"\r\n", b"\x04"]


@pytest.mark.parametrize("terminator", TERMINATORS)
def test_each_terminator_ends_a_scan_and_keeps_trailing_separators(terminator: bytes) -> None:
    framer = ByteFramer(terminator, None, 4096)
    data = SCAN + b"\x1e\x1d"  # control characters at the end are data, never stripped
    assert framer.feed(data + terminator, 0.0) == [Frame(data, FrameEnd.TERMINATOR)]
    assert framer.pending() == b""


def test_terminator_split_across_chunks() -> None:
    framer = ByteFramer(b"\r\n", None, 4096)
    assert framer.feed(SCAN + b"\r", 0.0) == []
    assert framer.feed(b"\n" + SCAN[:5], 0.001) == [Frame(SCAN, FrameEnd.TERMINATOR)]
    assert framer.pending() == SCAN[:5]


def test_gap_ends_a_scan_when_there_is_no_terminator() -> None:
    framer = ByteFramer(b"", 0.05, 4096)
    assert framer.feed(SCAN[:10], 1.0) == []
    assert framer.feed(SCAN[10:], 1.04) == []
    assert framer.deadline() == pytest.approx(1.09)
    assert framer.poll(1.08) is None
    assert framer.poll(1.09) == Frame(SCAN, FrameEnd.GAP)
    assert framer.deadline() is None


def test_bytes_after_a_gap_start_a_new_scan() -> None:
    framer = ByteFramer(b"", 0.05, 4096)
    framer.feed(b"first", 0.0)
    assert framer.feed(b"second", 1.0) == [Frame(b"first", FrameEnd.GAP)]
    assert framer.poll(2.0) == Frame(b"second", FrameEnd.GAP)


def test_empty_frames_are_not_scans() -> None:
    framer = ByteFramer(b"\r", None, 4096)
    assert framer.feed(b"\r\r" + SCAN + b"\r\r", 0.0) == [Frame(SCAN, FrameEnd.TERMINATOR)]


def test_a_flood_gives_one_truncated_frame_then_resumes_after_the_terminator() -> None:
    framer = ByteFramer(b"\r", None, 64)
    frames = framer.feed(b"x" * 100, 0.0)
    assert frames == [Frame(b"x" * 64, FrameEnd.OVERFLOW, truncated=True)]
    assert framer.feed(b"y" * 10_000, 0.1) == []
    assert framer.pending() == b""
    assert framer.feed(b"zz\r" + SCAN + b"\r", 0.2) == [Frame(SCAN, FrameEnd.TERMINATOR)]
    assert framer.dropped_bytes == 36 + 10_000 + 2


def test_an_overlong_frame_inside_one_chunk_is_truncated() -> None:
    framer = ByteFramer(b"\r", None, 16)
    assert framer.feed(b"a" * 20 + b"\r" + b"ok\r", 0.0) == [
        Frame(b"a" * 16, FrameEnd.OVERFLOW, truncated=True),
        Frame(b"ok", FrameEnd.TERMINATOR),
    ]


def test_a_framer_needs_some_way_to_end_a_scan() -> None:
    with pytest.raises(ValueError, match="terminator, a gap, or both"):
        ByteFramer(b"", None, 100)


@given(
    scans=st.lists(
        st.binary(min_size=1, max_size=80).filter(lambda b: b"\r" not in b), min_size=1, max_size=8
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=800), max_size=10),
)
def test_any_chunking_yields_the_same_scans(scans: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(scan + b"\r" for scan in scans)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    framer = ByteFramer(b"\r", 10.0, 4096)
    frames = []
    for start, end in itertools.pairwise(points):
        frames += framer.feed(stream[start:end], 0.0)
    assert [f.data for f in frames] == scans


# --- HID POS -------------------------------------------------------------------------------

POS = HIDPOS_LAYOUTS["pos"]
HONEYWELL = HIDPOS_LAYOUTS["honeywell"]


def report(
    *, length: int, data: bytes, more: int, report_id: int = 2, symbology: int = 0x31
) -> bytes:
    """A 64-byte report written out byte by byte as in the Newland/IDTech documentation."""
    raw = bytearray(64)
    raw[0] = report_id
    raw[1] = length
    raw[2 : 2 + len(data)] = data
    raw[62] = symbology
    raw[63] = more
    return bytes(raw)


def test_single_report_scan() -> None:
    assembler = HidPosAssembler(POS, 0.1, 4096)
    frames = assembler.feed(report(length=5, data=b"ABC\x1dD", more=0), 0.0)
    assert frames == [Frame(b"ABC\x1dD", FrameEnd.LAST_REPORT)]


def test_multi_report_scan_is_concatenated_until_the_last_report() -> None:
    long_scan = SCAN + b"\x1d" + SCAN  # 93 bytes: two reports
    first, second = long_scan[:56], long_scan[56:] + b"\x1e\x04"
    assembler = HidPosAssembler(POS, 0.1, 4096)
    assert assembler.feed(report(length=56, data=first, more=1), 0.0) == []
    assert assembler.feed(report(length=len(second), data=second, more=0), 0.001) == [
        Frame(first + second, FrameEnd.LAST_REPORT)
    ]


def test_reports_with_another_id_are_ignored_and_reads_may_split_reports() -> None:
    stream = report(length=3, data=b"xyz", more=0, report_id=4) + report(
        length=2, data=b"ok", more=0
    )
    assembler = HidPosAssembler(POS, 0.1, 4096)
    assert assembler.feed(stream[:70], 0.0) == []
    assert assembler.feed(stream[70:], 0.0) == [Frame(b"ok", FrameEnd.LAST_REPORT)]


def test_missing_continuation_is_cut_by_the_gap_and_marked_truncated() -> None:
    assembler = HidPosAssembler(POS, 0.1, 4096)
    assembler.feed(report(length=4, data=b"0108", more=1), 5.0)
    assert assembler.deadline() == pytest.approx(5.1)
    assert assembler.poll(5.05) is None
    assert assembler.poll(5.1) == Frame(b"0108", FrameEnd.GAP, truncated=True)


def test_length_byte_larger_than_the_report_is_clamped() -> None:
    assembler = HidPosAssembler(POS, 0.1, 4096)
    [frame] = assembler.feed(report(length=255, data=b"A" * 56, more=0), 0.0)
    assert frame.data == b"A" * 56


def test_honeywell_layout_puts_the_aim_identifier_in_front() -> None:
    raw = bytearray(64)
    raw[0], raw[1] = 0x02, 6  # length counts one more than the payload (WebHID driver)
    raw[2:5] = b"]d2"
    raw[5:10] = b"01234"
    raw[61] = 0x77  # Honeywell code id: Data Matrix
    assembler = HidPosAssembler(HONEYWELL, 0.1, 4096)
    assert assembler.feed(bytes(raw), 0.0) == [Frame(b"]d201234", FrameEnd.LAST_REPORT)]


def test_a_scan_growing_past_the_cap_is_truncated() -> None:
    assembler = HidPosAssembler(POS, 0.1, 100)
    frames = []
    for chunk in encode_hidpos_reports(b"9" * 300, POS):
        frames += assembler.feed(chunk, 0.0)
    assert frames == [Frame(b"9" * 100, FrameEnd.OVERFLOW, truncated=True)]


@pytest.mark.parametrize("layout", [POS, HONEYWELL])
@given(data=st.binary(max_size=400))
def test_encoded_reports_round_trip(layout: object, data: bytes) -> None:
    assert isinstance(layout, type(POS))
    assembler = HidPosAssembler(layout, 0.1, 4096)
    frames = []
    for chunk in encode_hidpos_reports(data, layout, aim=b"]d2"):
        frames += assembler.feed(chunk, 0.0)
    prefix = b"]d2" if layout.aim_offset is not None else b""
    assert frames == [Frame(prefix + data, FrameEnd.LAST_REPORT)]
