"""Benchmark: the transaction engine on a real SQLite file (WAL, synchronous=FULL) against the
simulator over loopback HTTP, through the real Arvato client.

1. Durable enqueue: ``submit`` of dispenses while the NMVS is unreachable (nothing is sent),
   one caller at a time (p50/p99 latency) and 32 concurrent callers (group commit, per second).
   Baseline: a bare one-row ``INSERT`` + ``COMMIT`` on the same disk with the same pragmas
   (the fsync floor).
2. End-to-end overhead per dispense: from ``submit`` to the final result, minus the time the
   backend call itself took (HTTP + simulator service), p50/p99. Baseline: bare client calls.
3. Backlog drain: 10,000 dispenses queued while offline, then the simulator comes up; packs/s
   until the queue is empty, through bulk (G125/G188) and, for 3,000, single calls only.
   Baseline: bare single-pack client calls at the same concurrency.

Run: ``.venv/bin/python bench/bench_engine.py [--backlog N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from gateway.codes.pack import PackIdentifier
from gateway.engine import Engine, Request, Settings
from gateway.engine.store import FILENAME
from gateway.nmvs.arvato import ArvatoClient, ArvatoConfig, Secret
from gateway.simulator.market import Market, MarketData, MarketRules
from gateway.simulator.marketfile import generate_market
from gateway.simulator.server import running_simulator
from gateway.vocabulary import Operation

SETTINGS = Settings(nmvs_user="SIMUSER1", probe_interval_max=0.2, retry_max_delay=1.0)


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


def config(url: str) -> ArvatoConfig:
    return ArvatoConfig(
        endpoint=url,
        client_login_id="SIMCLIENT1",
        user_id="SIMUSER1",
        password=Secret("Simulator-Pass1"),
        software_supplier="bench",
        max_connections=16,
    )


def packs_of(count: int) -> tuple[MarketData, list[PackIdentifier]]:
    today = datetime.now(UTC).date()
    data = generate_market(int(count * 1.4) + 100, today=today, seed=1)
    stamp = today.strftime("%y%m%d")
    packs = [
        PackIdentifier("GTIN", p.product_code, b.id, b.expiry, serial)
        for p in data.products
        if not p.withdrawn
        for b in p.batches
        if not b.recalled and (b.expiry if b.expiry[4:] != "00" else b.expiry[:4] + "31") > stamp
        for serial in b.serials
    ]
    assert len(packs) >= count, len(packs)
    return data, packs[:count]


def fsync_floor(directory: Path, rounds: int) -> list[float]:
    conn = sqlite3.connect(directory / "floor.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, payload TEXT)")
    samples = []
    for i in range(-rounds, rounds):  # the first half warms the WAL file up, not measured
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t(payload) VALUES (?)", (f"row {i}",))
        conn.execute("COMMIT")
        if i >= 0:
            samples.append((time.perf_counter() - started) * 1000)
    conn.close()
    return samples


async def enqueue(directory: Path, packs: list[PackIdentifier]) -> dict[str, float]:
    floor = fsync_floor(directory, 300)
    down = ArvatoClient(config("http://127.0.0.1:9/"))
    half = len(packs) // 2
    async with Engine.open(directory / "enqueue", down, SETTINGS) as engine:
        one_by_one = []
        for pack in packs[:half]:
            started = time.perf_counter()
            await engine.submit(Request(Operation.DISPENSE, pack))
            one_by_one.append((time.perf_counter() - started) * 1000)
        rest = packs[half:]
        started = time.perf_counter()
        for i in range(0, len(rest), 32):
            await asyncio.gather(
                *(engine.submit(Request(Operation.DISPENSE, p)) for p in rest[i : i + 32])
            )
        concurrent_rate = len(rest) / (time.perf_counter() - started)
    await down.aclose()
    p50, p99 = percentiles(one_by_one)
    f50, f99 = percentiles(floor)
    return {
        "submit_p50_ms": p50,
        "submit_p99_ms": p99,
        "sequential_per_s": 1000 / statistics.mean(one_by_one),
        "concurrent32_per_s": concurrent_rate,
        "fsync_floor_p50_ms": f50,
        "fsync_floor_p99_ms": f99,
        "ratio_p50_to_floor": p50 / f50,
    }


async def end_to_end(
    directory: Path, data: MarketData, packs: list[PackIdentifier]
) -> dict[str, float]:
    market = Market(data)
    bare_packs, engine_packs = packs[: len(packs) // 2], packs[len(packs) // 2 :]
    async with running_simulator(market, plain_http=True) as sim:
        client = ArvatoClient(config(sim.single_url))
        bare = []
        for pack in bare_packs:
            started = time.perf_counter()
            await client.execute(Operation.DISPENSE, pack, client_trx_id=uuid.uuid4().hex)
            bare.append((time.perf_counter() - started) * 1000)
        totals = []
        async with Engine.open(directory / "e2e", client, SETTINGS) as engine:
            for pack in engine_packs:
                started = time.perf_counter()
                view = (await engine.submit(Request(Operation.DISPENSE, pack))).view
                while not view.final:
                    await engine.wait_events()
                    view = await engine.get(view.id)  # type: ignore[assignment]
                totals.append((time.perf_counter() - started) * 1000)
        await client.aclose()
    with sqlite3.connect(directory / "e2e" / FILENAME) as conn:
        calls = [r[0] for r in conn.execute("SELECT latency_ms FROM attempts ORDER BY trx_seq, id")]
    overhead = [total - call for total, call in zip(totals, calls, strict=True)]
    o50, o99 = percentiles(overhead)
    t50, t99 = percentiles(totals)
    b50, b99 = percentiles(bare)
    return {
        "engine_total_p50_ms": t50,
        "engine_total_p99_ms": t99,
        "backend_call_p50_ms": percentiles(calls)[0],
        "overhead_p50_ms": o50,
        "overhead_p99_ms": o99,
        "bare_client_p50_ms": b50,
        "bare_client_p99_ms": b99,
        "ratio_total_to_bare_p50": t50 / b50,
    }


async def drain(
    directory: Path, data: MarketData, packs: list[PackIdentifier], concurrency: int, *, bulk: bool
) -> dict[str, float]:
    # the simulator processes a bulk 0.2 s after accepting it (its default is 2 s)
    market = Market(data, rules=MarketRules(bulk_delay=timedelta(seconds=0.2)))
    settings = Settings(
        nmvs_user="SIMUSER1",
        concurrency=concurrency,
        probe_interval_max=0.2,
        retry_max_delay=1.0,
        bulk=bulk,
        bulk_poll_interval=0.2,
    )
    async with running_simulator(market, plain_http=True) as sim:
        port = int(sim.url.rsplit(":", 1)[1])
        baseline_client = ArvatoClient(config(sim.single_url))
        sample = packs[-2000:]
        queue = list(sample)
        started = time.perf_counter()

        async def worker() -> None:
            while queue:
                pack = queue.pop()
                await baseline_client.execute(
                    Operation.VERIFY, pack, client_trx_id=uuid.uuid4().hex
                )

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        bare_rate = len(sample) / (time.perf_counter() - started)
        await baseline_client.aclose()
    client = ArvatoClient(config(sim.single_url))
    async with Engine.open(directory / f"drain-{bulk}", client, settings) as engine:
        for i in range(0, len(packs), 64):
            await asyncio.gather(
                *(engine.submit(Request(Operation.DISPENSE, p)) for p in packs[i : i + 64])
            )
        assert (await engine.health()).queue_depth == len(packs)
        async with running_simulator(market, plain_http=True, port=port):
            started = time.perf_counter()
            while (await engine.health()).queue_depth:
                with contextlib.suppress(TimeoutError):  # look at most every 0.2 s
                    await asyncio.wait_for(engine.wait_events(), 0.2)
                await asyncio.sleep(0.2)
            rate = len(packs) / (time.perf_counter() - started)
        alerts = len(market.state.alerts)
    await client.aclose()
    return {
        "backlog": len(packs),
        "concurrency": concurrency,
        "bulk": bulk,
        "bulk_transactions": sum(
            t.use_case == "G125" for t in market.state.transactions if not t.serial
        ),
        "drain_per_s": rate,
        "bare_client_per_s": bare_rate,
        "ratio_to_bare": rate / bare_rate,
        "alerts": alerts,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--single-backlog", type=int, default=3_000)
    parser.add_argument("--e2e", type=int, default=400)
    parser.add_argument("--enqueue", type=int, default=2000)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    data, packs = packs_of(max(args.backlog, args.e2e, args.enqueue))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        results = {
            "enqueue": await enqueue(directory, packs[: args.enqueue]),
            "end_to_end": await end_to_end(directory, data, packs[: args.e2e]),
            "drain_bulk": await drain(
                directory, data, packs[: args.backlog], SETTINGS.concurrency, bulk=True
            ),
            "drain_single": await drain(
                directory, data, packs[: args.single_backlog], SETTINGS.concurrency, bulk=False
            ),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
