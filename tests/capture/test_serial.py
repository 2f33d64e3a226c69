"""Serial / USB CDC-ACM capture over a real pseudo-terminal pair, through pyserial-asyncio-fast,
the production framer and the text decoder."""

from __future__ import annotations

import array
import asyncio
import fcntl
import os
import termios
import tty
from pathlib import Path

import pytest

from gateway.capture.runtime import ScannerState
from tests.capture.helpers import PACK, SCAN_TEXT, Scans, config, fast_hub

SCAN = SCAN_TEXT.encode()
PPN = b"[)>\x1e06\x1d9N110375286414\x1d1TBATCH1\x1dD261231\x1dSSERIAL42\x1e\x04"


class SerialPort:
    """A scanner's end of a serial line: a pty master, reached through a stable symlink like
    /dev/serial/by-id/…; ``unplug`` makes the port vanish, ``plug`` brings a new one."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self.plug()

    def plug(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)  # a real serial port has no line discipline of its own
        os.symlink(os.ttyname(slave), self.link)
        os.close(slave)

    def unplug(self) -> None:
        os.close(self.master)
        self.link.unlink()
        self.master = -1

    async def send(self, data: bytes) -> None:
        """Write everything, off the event loop (a full pty buffer blocks until the reader reads)."""

        def write_all() -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(self.master, view) :]

        await asyncio.to_thread(write_all)

    async def read_by_the_gateway(self) -> None:
        """Wait until the reader has taken everything sent (the port's input queue is empty)."""
        slave = os.open(self.link, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        try:
            pending = array.array("i", [1])
            for _ in range(1000):
                fcntl.ioctl(slave, termios.FIONREAD, pending)
                if pending[0] == 0:
                    return
                await asyncio.sleep(0.005)
            raise AssertionError(f"the reader left {pending[0]} bytes unread")
        finally:
            os.close(slave)

    def close(self) -> None:
        if self.master >= 0:
            self.unplug()


@pytest.fixture
def port(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = SerialPort(tmp_path / "usb-Honeywell_Imaging_1950g-if00")
    yield port
    port.close()


def serial(port: SerialPort, **extra: object) -> object:
    return config(id="counter-1-a", kind="serial", path=str(port.link), baud=115200, **extra)


def ready(health: dict) -> bool:  # type: ignore[type-arg]
    return health["counter-1-a"].state is ScannerState.READY


@pytest.mark.parametrize("terminator", ["CR", "LF", "CRLF", "EOT"])
async def test_each_terminator(port: SerialPort, terminator: str) -> None:
    ending = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n", "EOT": b"\x04"}[terminator]
    async with fast_hub([serial(port, terminator=terminator)]) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        await port.send(SCAN + ending + SCAN + ending)
        first, second = await scans.next(), await scans.next()
    assert first.raw == second.raw == SCAN
    assert (
        first.decoded.ok and first.decoded.pack is not None and first.decoded.pack.to_json() == PACK
    )
    assert first.scanner_id == "counter-1-a" and first.scan_id < second.scan_id


async def test_control_characters_at_the_end_are_data(port: SerialPort) -> None:
    async with fast_hub([serial(port, terminator="CR")]) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        await port.send(PPN + b"\r")
        scan = await scans.next()
    assert scan.raw == PPN  # RS EOT kept: nothing stripped
    assert scan.decoded.ok, scan.decoded.to_json()
    assert scan.decoded.pack is not None and scan.decoded.pack.scheme == "PPN"
    assert scan.decoded.pack.serial == "SERIAL42"


async def test_gap_framing_without_terminator(port: SerialPort) -> None:
    async with fast_hub([serial(port, terminator="none", gap_ms=40)]) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        await port.send(SCAN)
        scan = await scans.next()
    assert scan.raw == SCAN and scan.decoded.ok


async def test_a_scan_sent_in_several_chunks(port: SerialPort) -> None:
    async with fast_hub([serial(port, gap_ms=500)]) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        for start in range(0, len(SCAN), 9):
            await port.send(SCAN[start : start + 9])
            await asyncio.sleep(0.01)
        await port.send(b"\r")
        scan = await scans.next()
    assert scan.raw == SCAN and scan.decoded.ok


async def test_garbage_becomes_a_rejected_scan_and_the_line_keeps_working(port: SerialPort) -> None:
    async with fast_hub([serial(port)]) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        await port.send(b"\x00\xff\x13\x88garbage\r" + SCAN + b"\r")
        garbage, good = await scans.next(), await scans.next()
        health = hub.health()[0]
    assert not garbage.decoded.ok and [p.code for p in garbage.decoded.problems] == ["BAD_INPUT"]
    assert good.decoded.ok
    assert (health.counts["scans"], health.counts["scans_rejected"]) == (2, 1)


async def test_a_missing_terminator_is_not_trusted(port: SerialPort) -> None:
    async with fast_hub([serial(port, terminator="CRLF", gap_ms=30)]) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        await port.send(SCAN + b"\r")  # LF never comes: the scanner's suffix is set wrong
        scan = await scans.next()
    assert not scan.decoded.ok and scan.decoded.pack is None
    problem = scan.decoded.problems[-1]
    assert (problem.code, problem.detail) == (
        "SCAN_INTERRUPTED",
        "no CRLF after the data: check the scanner's suffix setting",
    )


async def test_a_flood_is_capped_and_the_line_recovers(port: SerialPort) -> None:
    async with fast_hub([serial(port, max_scan_bytes=256, gap_ms=2000)]) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        await port.send(b"A" * 200_000 + b"\r" + SCAN + b"\r")
        flood, good = await scans.next(), await scans.next()
    assert flood.raw == b"A" * 256 and not flood.decoded.ok
    assert (
        flood.decoded.problems[-1].detail == "more than 256 bytes without an end: the device floods"
    )
    assert good.raw == SCAN and good.decoded.ok


async def test_port_disappearing_mid_scan_and_coming_back(port: SerialPort) -> None:
    async with fast_hub([serial(port, gap_ms=5000)]) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        await port.send(SCAN[:20])
        await port.read_by_the_gateway()
        port.unplug()
        cut = await scans.next()
        await scans.until(lambda h: h["counter-1-a"].state is ScannerState.WAITING)
        port.plug()
        await scans.until(ready)
        await port.send(SCAN + b"\r")
        good = await scans.next()
        health = hub.health()[0]
    assert cut.raw == SCAN[:20] and not cut.decoded.ok and cut.decoded.pack is None
    assert cut.decoded.problems[-1].detail == "the device went away mid-scan"
    assert good.decoded.ok
    assert health.counts["opened"] == 2 and health.counts["lost"] == 1


async def test_a_port_that_is_not_there_yet_is_waited_for(tmp_path: Path) -> None:
    link = tmp_path / "later"
    async with fast_hub([config(id="counter-1-a", kind="serial", path=str(link))]) as hub:
        scans = Scans(hub)
        health = await scans.until(lambda h: h["counter-1-a"].state is ScannerState.WAITING)
        port = SerialPort(link)
        try:
            await scans.until(ready)
            await port.send(SCAN + b"\r")
            assert (await scans.next()).decoded.ok
        finally:
            port.close()
    assert health["counter-1-a"].last_error is None
