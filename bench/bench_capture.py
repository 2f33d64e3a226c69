"""Capture latency and CPU: from the last key event (or byte, or report) of a scan to the decoded
``CapturedScan`` coming out of ``ScannerHub.scans()``, through the production readers.

    .venv/bin/python bench/bench_capture.py [--scans 1000]

Paths measured (each scan's body is sent first; the clock starts once its last event has been
written and is readable; CPU is the process's for complete scans — every event read, framed,
decoded, delivered — minus the stand-in device's own writes):
- evdev: real ``evdev.InputEvent`` objects from a pipe-backed device node (the test suite's
  kernel stand-in), the real reader, splitter and ``decode_keys`` (layout ``fr``);
- serial: a real pseudo-terminal through pyserial-asyncio-fast, terminator CR;
- hidpos: 64-byte reports through a FIFO read by the hidraw reader.
Baselines in the same process: the event-loop floor (a byte through a pipe to an ``add_reader``
callback), and the pure decode CPU (``decode_keys`` / ``decode_bytes`` without any capture).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import tty
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.capture.config import ScannerConfig
from gateway.capture.framing import HIDPOS_LAYOUTS, encode_hidpos_reports
from gateway.capture.hub import ScannerHub
from gateway.capture.runtime import ScannerState
from gateway.codes.decode import decode_bytes, decode_keys
from gateway.codes.keyboard import ScanSplitter, emulate
from tests.capture.kernel import KernelInput, KernelInputNode, input_events

TEXT = "]d2010858600770385117241231" + "10HB5R\x1d21587E4QA11R"
SCAN = TEXT.encode()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(
    name: str, latencies: list[float], cpu_s: float, base: float, base_cpu: float | None
) -> str:
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    per_1000 = cpu_s / len(latencies) * 1000
    line = f"{name:<10} p50 {p50 * 1e6:8.1f} µs  p99 {p99 * 1e6:8.1f} µs  ×{p50 / base:5.1f} floor (p50)"
    line += f"   CPU {per_1000 * 1000:7.1f} ms / 1000 scans"
    if base_cpu is not None:
        line += f"  (pure decode {base_cpu * 1000:6.1f} ms, ×{per_1000 / base_cpu:4.2f})"
    return line


async def wait_ready(hub: ScannerHub) -> None:
    async with asyncio.timeout(10):
        while hub.health()[0].state is not ScannerState.READY:  # noqa: ASYNC110 - snapshot
            await asyncio.sleep(0.005)


async def measure(
    hub: ScannerHub,
    count: int,
    write_body: Callable[[], object],
    settle: Callable[[], Awaitable[None]],
    write_last: Callable[[], object],
) -> tuple[list[float], float]:
    """Per-scan latency (last event readable → scan out) and the process CPU of ``count`` whole
    scans, minus what the stand-in device spends in its own writes (pty writes are costly)."""
    scans = hub.scans()
    latencies = []
    device_cpu = 0.0
    cpu_start = time.process_time()
    for _ in range(count):
        mark = time.process_time()
        write_body()
        device_cpu += time.process_time() - mark
        await settle()  # the reader takes the body
        mark = time.process_time()
        write_last()
        start = time.perf_counter()  # the event loop has not run since: nothing read yet
        device_cpu += time.process_time() - mark
        scan = await anext(scans)
        latencies.append(time.perf_counter() - start)
        assert scan.decoded.ok, scan.decoded.to_json()
    return latencies, time.process_time() - cpu_start - device_cpu


async def floor(count: int) -> list[float]:
    """A byte through a pipe to an add_reader callback resolving a future."""
    loop = asyncio.get_running_loop()
    r, w = os.pipe()
    os.set_blocking(r, False)
    samples = []
    for _ in range(count):
        done = loop.create_future()

        def on_read(done: asyncio.Future[None] = done) -> None:
            os.read(r, 1)
            if not done.done():
                done.set_result(None)

        loop.add_reader(r, on_read)
        os.write(w, b"x")
        start = time.perf_counter()
        await done
        samples.append(time.perf_counter() - start)
        loop.remove_reader(r)
    os.close(r)
    os.close(w)
    return samples


def pure_decode_cpu(count: int) -> tuple[float, float]:
    """CPU per 1000 scans of the decoder alone: key trace → DecodedScan, and bytes → DecodedScan."""
    config = ScannerConfig.from_toml(
        {"id": "b", "kind": "evdev", "match": "any", "layout": "fr"}, 0
    )
    splitter = ScanSplitter(config.decode.keyboard)
    trace = None
    for event in emulate(TEXT, "fr"):
        trace = splitter.feed(event) or trace
    assert trace is not None
    start = time.process_time()
    for _ in range(count):
        decode_keys(trace, config.decode)
    keys = (time.process_time() - start) / count * 1000
    start = time.process_time()
    for _ in range(count):
        decode_bytes(SCAN, config.decode)
    return keys, (time.process_time() - start) / count * 1000


async def bench_evdev(count: int) -> tuple[list[float], float]:
    node = KernelInputNode("/dev/input/event7")
    config = ScannerConfig.from_toml(
        {"id": "b", "kind": "evdev", "match": "any", "layout": "fr"}, 0
    )
    events = input_events(emulate(TEXT, "fr"))  # built once: the kernel's work, not ours
    enter_down = max(
        i for i, e in enumerate(events) if e.type == 1 and e.code == 28 and e.value == 1
    )
    body, tail = events[:enter_down], events[enter_down:]

    async def settle() -> None:
        while node.unread:  # noqa: ASYNC110 - the stand-in node has no event to wait on
            await asyncio.sleep(0)

    async with ScannerHub([config], input_backend=KernelInput(node), watch_udev=False) as hub:
        await wait_ready(hub)
        return await measure(hub, count, lambda: node.emit(body), settle, lambda: node.emit(tail))


async def settle() -> None:
    await asyncio.sleep(0.001)  # a scanner's body bytes arrive before its terminator


async def bench_serial(count: int, directory: Path) -> tuple[list[float], float]:
    master, slave = os.openpty()
    tty.setraw(slave)
    link = directory / "tty"
    link.symlink_to(os.ttyname(slave))
    config = ScannerConfig.from_toml(
        {"id": "b", "kind": "serial", "path": str(link), "gap_ms": 5000}, 0
    )

    try:
        async with ScannerHub([config], watch_udev=False) as hub:
            await wait_ready(hub)
            return await measure(
                hub, count, lambda: os.write(master, SCAN), settle, lambda: os.write(master, b"\r")
            )
    finally:
        os.close(master)
        os.close(slave)


async def bench_hidpos(count: int, directory: Path) -> tuple[list[float], float]:
    fifo = directory / "hidraw0"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    reports = encode_hidpos_reports(SCAN + b"\x1d71012345678", HIDPOS_LAYOUTS["pos"])
    config = ScannerConfig.from_toml(
        {"id": "b", "kind": "hidpos", "path": str(fifo), "gap_ms": 5000}, 0
    )

    try:
        async with ScannerHub([config], watch_udev=False) as hub:
            await wait_ready(hub)
            body = b"".join(reports[:-1])
            return await measure(
                hub,
                count,
                lambda: os.write(writer, body),
                settle,
                lambda: os.write(writer, reports[-1]),
            )
    finally:
        os.close(writer)


async def main(count: int) -> None:
    import structlog

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(40)
    )  # quiet: errors only
    base = statistics.median(await floor(count))
    keys_cpu, bytes_cpu = pure_decode_cpu(count)
    print(f"capture benchmark, {count} scans per path, Python {sys.version.split()[0]}")
    print(
        f"{'floor':<10} p50 {base * 1e6:8.1f} µs  (a byte through a pipe to an add_reader callback)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, run, pure in [
            ("evdev", bench_evdev(count), keys_cpu),
            ("serial", bench_serial(count, Path(tmp)), bytes_cpu),
            ("hidpos", bench_hidpos(count, Path(tmp)), bytes_cpu),
        ]:
            latencies, cpu = await run
            print(summary(name, latencies, cpu, base, pure))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=1000)
    asyncio.run(main(parser.parse_args().scans))
