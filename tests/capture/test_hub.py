"""Many scanners at once: each supervised on its own, one failing never stops the others."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

from gateway.capture.framing import HIDPOS_LAYOUTS, encode_hidpos_reports
from gateway.capture.runtime import ScannerState
from gateway.capture.scan import CapturedScan, ScanIdFactory
from gateway.codes.keyboard import emulate
from tests.capture.helpers import SCAN_TEXT, Scans, config, fast_hub
from tests.capture.kernel import KernelInput, KernelInputNode, input_events
from tests.capture.test_hidpos import HidrawNode
from tests.capture.test_serial import SerialPort

SCAN = SCAN_TEXT.encode()


class BrokenNode(KernelInputNode):
    """A device whose driver returns an error the reader does not expect once readable."""

    def open(self) -> None:
        super().open()
        self.emit([])  # wakes the reader

    def read(self) -> list:  # type: ignore[type-arg]
        raise OSError(errno.EPROTO, "Protocol error")


async def test_three_kinds_at_once_while_two_others_fail(tmp_path: Path) -> None:
    port = SerialPort(tmp_path / "serial")
    hidraw = HidrawNode(tmp_path / "hidraw0")
    wedge = KernelInputNode("/dev/input/event7")
    busy = KernelInputNode("/dev/input/event9", vendor=0x05E0, product=0x1200)
    busy.grabbed_elsewhere = True
    broken = BrokenNode("/dev/input/event11", vendor=0x1EAB, product=0x0D10)
    configs = [
        config(0, id="serial", kind="serial", path=str(port.link)),
        config(1, id="hidpos", kind="hidpos", path=str(hidraw.path)),
        config(2, id="wedge", kind="evdev", match="0c2e:0b61", layout="fr"),
        config(3, id="busy", kind="evdev", match="05e0:1200"),
        config(4, id="broken", kind="evdev", match="1eab:0d10"),
        config(5, id="absent", kind="serial", path=str(tmp_path / "nothing")),
    ]
    try:
        async with fast_hub(configs, input_backend=KernelInput(wedge, busy, broken)) as hub:
            scans = Scans(hub)
            await scans.until(
                lambda h: (
                    all(h[x].state is ScannerState.READY for x in ("serial", "hidpos", "wedge"))
                    and h["busy"].counts.get("error", 0) >= 2
                    and h["broken"].counts.get("error", 0) >= 2
                    and h["absent"].state is ScannerState.WAITING
                )
            )
            await port.send(SCAN + b"\r")
            hidraw.send(*encode_hidpos_reports(SCAN, HIDPOS_LAYOUTS["pos"]))
            wedge.emit(input_events(emulate(SCAN_TEXT, "fr")))
            got = [await scans.next() for _ in range(3)]
            health = {h.id: h for h in hub.health()}
    finally:
        port.close()
        hidraw.close()
    assert sorted(s.scanner_id for s in got) == ["hidpos", "serial", "wedge"]
    assert all(s.decoded.ok for s in got)
    assert health["broken"].last_error == "/dev/input/event11: read failed (Protocol error)"
    assert health["busy"].state is ScannerState.ERROR
    assert health["absent"].counts["waiting"] == 1  # logged once, not at every rescan
    assert health["wedge"].to_json()["counts"] == {"attached": 1, "grabbed": 1, "scans": 1}
    assert {h.state for h in hub.health()} == {ScannerState.STOPPED}
    assert broken.closed and busy.closed and wedge.closed


async def test_a_flooding_keyboard_neither_crashes_nor_blocks_another_scanner(
    tmp_path: Path,
) -> None:
    port = SerialPort(tmp_path / "serial")
    flood = KernelInputNode("/dev/input/event7")
    configs = [
        config(0, id="serial", kind="serial", path=str(port.link)),
        config(1, id="wedge", kind="evdev", match="any", layout="us", gap_ms=50),
    ]
    key_a = emulate("a", "us", suffix=None)  # KEY_A down, SYN, up, SYN
    try:
        async with fast_hub(configs, input_backend=KernelInput(flood)) as hub:
            scans = Scans(hub)
            await scans.until(lambda h: all(x.state is ScannerState.READY for x in h.values()))
            flood.emit(input_events(key_a * 25_000))  # 100 000 events, no Enter
            await port.send(SCAN + b"\r")
            got = {}
            while len(got) < 2:
                scan = await scans.next()
                got[scan.scanner_id] = scan
            health = {h.id: h for h in hub.health()}
    finally:
        port.close()
    assert got["serial"].decoded.ok
    flooded = got["wedge"].decoded
    assert not flooded.ok and flooded.problems[0].code == "SCAN_INTERRUPTED"
    assert flooded.problems[0].detail == "23976 keys beyond the per-scan limit were dropped"
    assert all(h.state is ScannerState.READY and "error" not in h.counts for h in health.values())


async def test_a_crashing_reader_is_restarted_with_backoff() -> None:
    class Exploding(BrokenNode):
        def read(self) -> list:  # type: ignore[type-arg]
            raise ValueError("driver bug")

    node = Exploding("/dev/input/event4")
    async with fast_hub(
        [config(id="x", kind="evdev", match="any")], input_backend=KernelInput(node)
    ) as hub:
        scans = Scans(hub)
        health = await scans.until(lambda h: h["x"].counts.get("error", 0) >= 3)
    assert health["x"].last_error == "ValueError: driver bug"
    assert health["x"].counts["attached"] >= 3


async def test_leaving_the_hub_releases_devices_and_stops_tasks() -> None:
    node = KernelInputNode("/dev/input/event7")
    async with fast_hub(
        [config(id="w", kind="evdev", match="any")], input_backend=KernelInput(node)
    ) as hub:
        await Scans(hub).until(lambda h: h["w"].state is ScannerState.READY)
        assert node.grabbed
    assert node.closed and not node.grabbed
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("scanner ")]


async def test_a_device_change_ends_the_wait_at_once(tmp_path: Path) -> None:
    link = tmp_path / "ttyACM0"
    configs = [config(id="s", kind="serial", path=str(link))]
    async with fast_hub(configs, rescan_s=3600, watch_udev=True) as hub:  # no rescan in this test
        assert hub.hotplug in ("udev", "rescan")  # udev where netlink is allowed
        scans = Scans(hub)
        await scans.until(lambda h: h["s"].state is ScannerState.WAITING)
        port = SerialPort(link)
        try:
            hub.changes.notify()  # what the udev monitor does on an "add" event
            await scans.until(lambda h: h["s"].state is ScannerState.READY)
        finally:
            port.close()


class FixedClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


def test_scan_ids_are_unique_and_sort_by_time() -> None:
    clock = FixedClock(1_790_000_000.123)
    factory = ScanIdFactory(clock, randbytes=lambda n: b"\xff" * (n - 1) + b"\xfe")
    same_ms = [factory.new() for _ in range(3)]
    clock.now += 0.001
    later = factory.new()
    clock.now -= 10  # the wall clock stepped back: ids still increase
    after_step = factory.new()
    ids = [*same_ms, later, after_step]
    assert len(set(ids)) == 5 and ids == sorted(ids)
    assert all(len(i) == 26 and set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in ids)
    # 2^80 - 1 after the increment: the random part overflowed, so the next millisecond was borrowed
    assert same_ms[1][:10] == same_ms[0][:10] and same_ms[2][:10] > same_ms[1][:10]


def test_scan_event_json() -> None:
    from gateway.codes.decode import DecodeSettings, decode_bytes

    decoded = decode_bytes(SCAN, DecodeSettings())
    scan = CapturedScan(
        "01K", "counter-1-a", "1", CapturedScan.timestamp(1_790_000_000.5), decoded, SCAN
    )
    body = scan.to_json()
    assert {k: body[k] for k in ("id", "scanner_id", "counter", "at", "ok")} == {
        "id": "01K",
        "scanner_id": "counter-1-a",
        "counter": "1",
        "at": "2026-09-21T14:13:20.500Z",
        "ok": True,
    }
    assert body["pack"]["serial"] == "587E4QA11R"
