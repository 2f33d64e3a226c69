"""Benchmark: the whole daemon on loopback — the overhead it adds between a scan and its result.

Everything real, each in its own process: mosquitto, the NMVS simulator (``nmvs-gateway
nmvs-sim``), the daemon (``nmvs-gateway run``) reading a serial scanner on a pseudo-terminal.

1. Latency: one scan at a time is written to the pty; the clock starts when the last byte (the
   CR) is written and stops when the verify's final result arrives on ``<base>/result``. Two
   baselines measured in this same process: the simulator's service time (the same verify sent
   straight to the simulator with the gateway's own Arvato client) and a bare MQTT round trip
   (publish → broker → subscriber). Overhead = end-to-end − service time (p50 and p99 each).
2. Memory: LGO verify requests (unique ids, 64 in flight) for ``--seconds``; the daemon's RSS is
   sampled as the transaction count grows, to show whether it stays flat.

Run: ``.venv/bin/python bench/bench_daemon.py [--scans N] [--seconds S]``. No assertion: the
figures go to the README.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.codes.pack import PackIdentifier  # noqa: E402
from gateway.nmvs.arvato import ArvatoClient  # noqa: E402
from gateway.nmvs.arvato.soap import SINGLE_PACK_PATH  # noqa: E402
from gateway.simulator.marketfile import load_market  # noqa: E402
from gateway.vocabulary import Operation  # noqa: E402
from tests.brokers import NO_DELAY, eventually, free_port, start_mosquitto  # noqa: E402
from tests.capture.test_serial import SerialPort  # noqa: E402
from tests.daemon.harness import (  # noqa: E402
    BASE,
    Daemon,
    gs1_text,
    write_config,
)
from tests.engine.support import arvato_config, healthy_packs  # noqa: E402

RESULT, REQUEST = f"{BASE}/result", f"{BASE}/request"
SCANNER = '\n[[scanner]]\nid = "bench"\nkind = "serial"\npath = "{path}"\n'


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


def show(name: str, samples: list[float]) -> tuple[float, float]:
    p50, p99 = percentiles(samples)
    print(f"  {name:<44} p50 {p50:8.3f} ms   p99 {p99:8.3f} ms   (n={len(samples)})")
    return p50, p99


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Results:
    """A lean subscriber: final results by pack serial (latency) and a count (memory run)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.finals = 0
        self.by_serial: dict[str, asyncio.Future[float]] = {}
        self.outstanding: set[str] = set()
        self.freed = asyncio.Event()

    async def run(self) -> None:
        async for message in self.client.messages:
            arrived = time.perf_counter()
            assert isinstance(message.payload, bytes)
            body = json.loads(message.payload)
            if body["status"] == "queued":
                continue
            self.finals += 1
            self.outstanding.discard(body["id"])
            self.freed.set()
            waiter = self.by_serial.pop(body["pack"]["serial"], None) if body["pack"] else None
            if waiter is not None and not waiter.done():
                waiter.set_result(arrived)


async def mqtt_round_trips(port: int, count: int) -> list[float]:
    samples = []
    v5 = aiomqtt.ProtocolVersion.V5
    async with aiomqtt.Client("127.0.0.1", port, protocol=v5, socket_options=NO_DELAY) as c:
        await c.subscribe("bench/echo", qos=1)
        messages = aiter(c.messages)
        for n in range(count):
            started = time.perf_counter()
            await c.publish("bench/echo", f'{{"n":{n}}}', qos=1)
            await anext(messages)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def durable_commits(directory: Path, count: int) -> list[float]:
    """One small SQLite commit in WAL mode with synchronous=FULL (the engine's setting)."""
    conn = sqlite3.connect(directory / "commit-baseline.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (n INTEGER, payload TEXT)")
    samples = []
    for n in range(count):
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?)", (n, "x" * 300))
        conn.execute("COMMIT")
        samples.append((time.perf_counter() - started) * 1000)
    conn.close()
    return samples


async def service_times(url: str, packs: list[PackIdentifier]) -> list[float]:
    config = arvato_config(url + SINGLE_PACK_PATH)
    samples = []
    async with ArvatoClient(config) as client:
        for n, pack in enumerate(packs):
            started = time.perf_counter()
            await client.execute(Operation.VERIFY, pack, client_trx_id=f"{n:032d}")
            samples.append((time.perf_counter() - started) * 1000)
    return samples


async def main(scans: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        work = Path(tmp)
        broker = start_mosquitto(work / "broker")
        market_file = work / "market.json"
        sim_port = free_port()
        sim = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
            [
                *(sys.executable, "-m", "gateway.cli", "nmvs-sim", "--plain-http", "--admin"),
                *("--listen", f"127.0.0.1:{sim_port}", "--generate", "20000", "--seed", "11"),
                *("--packs-out", str(market_file)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port = SerialPort(work / "usb-bench-scanner")
        daemon = Daemon(
            write_config(
                work / "gw",
                broker,
                f"http://127.0.0.1:{sim_port}",
                extra=SCANNER.format(path=port.link),
            ),
            work / "daemon.log",
        )
        try:
            await eventually(market_file.exists, within=30)
            await asyncio.sleep(0.5)
            packs = healthy_packs(load_market(market_file), datetime.now(UTC).date())
            print(
                f"market: {len(packs)} dispensable packs; daemon, simulator, mosquitto: 3 processes"
            )
            await asyncio.to_thread(daemon.start)
            commits = durable_commits(work, 200)
            await run_benchmarks(broker.port, sim_port, port, daemon, packs, scans, seconds)
            print("baseline for both runs, same file system:")
            show("one SQLite commit (WAL, synchronous=FULL)", commits)
            assert await asyncio.to_thread(daemon.terminate) == 0
        finally:
            daemon.close()
            port.close()
            sim.terminate()
            sim.wait(timeout=10)
            broker.stop()


async def run_benchmarks(
    broker_port: int,
    sim_port: int,
    port: SerialPort,
    daemon: Daemon,
    packs: list[PackIdentifier],
    scans: int,
    seconds: float,
) -> None:
    latency_packs, rest = packs[:scans], packs[scans:]
    service = await service_times(f"http://127.0.0.1:{sim_port}", rest[: min(scans, 300)])
    round_trips = await mqtt_round_trips(broker_port, scans)
    assert daemon.process is not None
    pid = daemon.process.pid
    v5 = aiomqtt.ProtocolVersion.V5
    async with aiomqtt.Client("127.0.0.1", broker_port, protocol=v5, socket_options=NO_DELAY) as c:
        await c.subscribe(RESULT, qos=1)
        results = Results(c)
        reader = asyncio.create_task(results.run())
        await asyncio.sleep(1.0)  # let the scanner open
        e2e = []
        loop = asyncio.get_running_loop()
        for pack in latency_packs:
            arrived: asyncio.Future[float] = loop.create_future()
            results.by_serial[pack.serial] = arrived
            await port.send(gs1_text(pack).encode())
            await asyncio.sleep(0.002)
            started = time.perf_counter()
            await port.send(b"\r")  # the last byte of the scan
            e2e.append((await asyncio.wait_for(arrived, 10) - started) * 1000)
        print("latency (sequential, loopback):")
        e2e_p50, e2e_p99 = show("scan last byte → result on MQTT", e2e)
        svc_p50, svc_p99 = show("baseline: simulator service time (verify)", service)
        show("baseline: bare MQTT QoS 1 round trip", round_trips)
        print(
            f"  overhead = end-to-end − service time:      p50 {e2e_p50 - svc_p50:8.3f} ms   "
            f"p99 {e2e_p99 - svc_p99:8.3f} ms   (ratio end-to-end/service p50 "
            f"{e2e_p50 / svc_p50:.2f}×)"
        )
        await memory_run(c, results, rest, pid, seconds)
        reader.cancel()


async def memory_run(
    client: aiomqtt.Client, results: Results, packs: list[PackIdentifier], pid: int, seconds: float
) -> None:
    print(f"memory: LGO verify requests, 64 in flight, for {seconds:.0f} s:")
    start_rss = rss_mb(pid)
    print(f"  RSS at start of run {start_rss:7.1f} MB")
    sent = 0
    started = time.monotonic()
    next_report = 1_000
    while time.monotonic() - started < seconds:
        while len(results.outstanding) >= 64:
            results.freed.clear()
            await results.freed.wait()
        request_id = f"mem-{sent}"
        results.outstanding.add(request_id)
        pack = packs[sent % len(packs)]
        payload = {"id": request_id, "op": "verify", "pack": pack.to_json()}
        await client.publish(REQUEST, json.dumps(payload), qos=1)
        sent += 1
        if sent == next_report:
            print(f"  after {sent:>7} transactions  RSS {rss_mb(pid):7.1f} MB")
            next_report += 1_000
    while results.outstanding:
        results.freed.clear()
        await results.freed.wait()
    elapsed = time.monotonic() - started
    print(
        f"  total {sent} transactions in {elapsed:.0f} s ({sent / elapsed:.0f}/s); "
        f"RSS at end {rss_mb(pid):7.1f} MB (start {start_rss:.1f} MB)"
    )


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=500, help="scans for the latency run")
    parser.add_argument("--seconds", type=float, default=120, help="length of the memory run")
    args = parser.parse_args()
    asyncio.run(main(args.scans, args.seconds))
