"""HID POS capture: 64-byte reports written to a FIFO standing in for /dev/hidrawN, read by the
production reader (non-blocking fd + loop.add_reader), assembled and decoded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.capture.framing import HIDPOS_LAYOUTS, encode_hidpos_reports
from gateway.capture.hidpos_source import hidiocsfeature
from gateway.capture.runtime import ScannerState
from tests.capture.helpers import PACK, SCAN_TEXT, Scans, config, fast_hub

SCAN = SCAN_TEXT.encode()
LONG = SCAN + b"\x1d71012345678" + b"\x1d" + b"9" * 30  # three reports' worth


class HidrawNode:
    """The scanner's side: a FIFO at the node's path, held open read-write so it never blocks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1
        self.plug()

    def plug(self) -> None:
        os.mkfifo(self.path)
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)

    def unplug(self) -> None:
        os.close(self.fd)
        self.path.unlink()
        self.fd = -1

    def send(self, *reports: bytes) -> None:
        os.write(self.fd, b"".join(reports))

    def close(self) -> None:
        if self.fd >= 0:
            self.unplug()


@pytest.fixture
def node(tmp_path: Path):  # type: ignore[no-untyped-def]
    node = HidrawNode(tmp_path / "hidraw3")
    yield node
    node.close()


def hidpos(node: HidrawNode, **extra: object) -> object:
    return config(id="counter-2-a", kind="hidpos", path=str(node.path), counter="2", **extra)


def ready(health: dict) -> bool:  # type: ignore[type-arg]
    return health["counter-2-a"].state is ScannerState.READY


def test_hidiocsfeature_matches_the_kernel_header() -> None:
    # _IOC(_IOC_WRITE|_IOC_READ, 'H', 0x06, 2) as computed by <linux/hidraw.h> for a 2-byte buffer
    assert hidiocsfeature(2) == 0xC0024806


async def test_a_multi_report_scan(node: HidrawNode) -> None:
    reports = encode_hidpos_reports(LONG, HIDPOS_LAYOUTS["pos"])
    assert len(reports) == 2 and reports[0][63] == 1 and reports[1][63] == 0
    async with fast_hub([hidpos(node)]) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        node.send(*reports)
        node.send(*encode_hidpos_reports(SCAN, HIDPOS_LAYOUTS["pos"]))
        long, short = await scans.next(), await scans.next()
    assert long.raw == LONG and short.raw == SCAN
    assert (
        short.decoded.ok and short.decoded.pack is not None and short.decoded.pack.to_json() == PACK
    )
    assert (short.scanner_id, short.counter) == ("counter-2-a", "2")


async def test_reports_arriving_one_by_one_with_foreign_reports_between(node: HidrawNode) -> None:
    status = bytes([0x04]) + bytes(63)  # another report ID (e.g. a status report): ignored
    first, second = encode_hidpos_reports(LONG, HIDPOS_LAYOUTS["pos"])
    async with fast_hub([hidpos(node)]) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        node.send(first[:10])
        node.send(first[10:], status)
        node.send(second)
        scan = await scans.next()
    assert scan.raw == LONG


async def test_honeywell_layout_with_aim_in_the_report(node: HidrawNode) -> None:
    body = SCAN[3:]  # without "]d2": the AIM id travels in its own report bytes
    reports = encode_hidpos_reports(body, HIDPOS_LAYOUTS["honeywell"], aim=b"]d2")
    async with fast_hub([hidpos(node, hidpos_layout="honeywell")]) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        node.send(*reports)
        scan = await scans.next()
    assert scan.raw == SCAN and scan.decoded.ok and scan.decoded.aim == "]d2"


async def test_a_scan_whose_last_report_never_comes_is_interrupted(node: HidrawNode) -> None:
    first, _ = encode_hidpos_reports(LONG, HIDPOS_LAYOUTS["pos"])
    async with fast_hub([hidpos(node, gap_ms=30)]) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        node.send(first)
        scan = await scans.next()
    assert scan.raw == LONG[:56] and not scan.decoded.ok and scan.decoded.pack is None
    assert scan.decoded.problems[-1].detail == "the scanner stopped before the last HID POS report"


async def test_unplug_and_replug(node: HidrawNode) -> None:
    async with fast_hub([hidpos(node)]) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        node.unplug()
        await scans.until(lambda h: h["counter-2-a"].state is ScannerState.WAITING)
        node.plug()
        await scans.until(ready)
        node.send(*encode_hidpos_reports(SCAN, HIDPOS_LAYOUTS["pos"]))
        scan = await scans.next()
        health = hub.health()[0]
    assert scan.decoded.ok
    assert health.counts["lost"] == 1 and health.counts["opened"] == 2


async def test_the_mode_switch_is_sent_only_when_configured(node: HidrawNode) -> None:
    async with fast_hub([hidpos(node)]) as hub:
        health = await Scans(hub).until(ready)
    assert "hidpos_enabled" not in health["counter-2-a"].counts
    assert "hidpos_enable_failed" not in health["counter-2-a"].counts
    async with fast_hub([hidpos(node, hidpos_enable=True)]) as hub:
        health = await Scans(hub).until(ready)
    # a FIFO refuses the HIDIOCSFEATURE ioctl: reported, and reading goes on
    assert health["counter-2-a"].counts["hidpos_enable_failed"] == 1
    assert (
        health["counter-2-a"].last_error
        == "feature report 254 refused: Inappropriate ioctl for device"
    )
