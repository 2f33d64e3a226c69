"""Fault figures: for each fault, how many accepted requests were lost, how many state changes
reached the NMVS twice, how many alerts it raised, and how long the gateway took to recover.

The engine on a real SQLite file against the simulator over loopback HTTP (the real Arvato
client), in one process; clocks injected where the fault is a clock; the simulator's French
PCK_23 counter off, so that every double decommission is an alert (PCK_22). Scenarios:

- ``late_apply``: every dispense's connection drops and the NMVS applies it 5 s later (the
  reconcile verify comes after 1 s); with the horizon rule, and with the rule before it
  (``reconcile_horizon = reconcile_delay``: resend on the first verify) as the baseline.
- ``wall_step_back``: unclear dispenses due for reconcile in 2 s, then the wall clock is set
  2 h back: seconds until all are settled.
- ``wall_step_forward``: the same, 11 days forward (past the retry horizon).
- ``disk_full``: the database file cannot grow (SQLITE_FULL) with sends in flight; refused
  requests, then seconds from room again to every accepted one final.
- ``bulk_cut_short``: a 300-pack backlog replayed by bulk; the engine stops while polling the
  result; seconds from the restart to every pack final, verifies sent.

Run: ``.venv/bin/python bench/bench_faults.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.engine import Engine, Request, StorageFullError
from gateway.engine import engine as engine_module
from gateway.nmvs.arvato import ArvatoClient
from gateway.simulator.faults import parse_faults
from gateway.simulator.market import Market, MarketRules
from gateway.simulator.server import running_simulator
from gateway.vocabulary import Operation
from tests.engine.support import arvato_config, market_data, settings

D, V = Operation.DISPENSE, Operation.VERIFY
# the French PCK_23 counter off, as a tester does: every double decommission is an alert
STRICT = MarketRules(own_repeat_info_limit=None)


class SteppedClock:
    """Wall and monotonic clocks; ``step`` moves the wall clock alone."""

    def __init__(self) -> None:
        self.step_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.step_s

    def monotonic(self) -> float:
        return time.monotonic()


async def finals(engine: Engine, ids: list[str], within: float = 120.0) -> dict[str, str]:
    deadline = time.monotonic() + within
    outcomes: dict[str, str] = {}
    while len(outcomes) < len(ids) and time.monotonic() < deadline:
        for trx_id in ids:
            view = await engine.get(trx_id)
            if view is not None and view.final and view.outcome is not None:
                outcomes[trx_id] = view.outcome.value
        await asyncio.sleep(0.05)
    return outcomes


def tally(core: Market, ids: list[str], outcomes: dict[str, str]) -> dict[str, Any]:
    changes = Counter(
        t.serial for t in core.state.transactions if t.use_case in ("G120", "G125") and t.serial
    )
    return {
        "requests": len(ids),
        "lost": len(ids) - len(outcomes),
        "double_sent": sum(1 for n in changes.values() if n > 1),
        "alerts": len(core.state.alerts),
        "outcomes": dict(Counter(outcomes.values())),
    }


async def late_apply(tmp: Path, horizon: float) -> dict[str, Any]:
    data, packs = market_data(count=120, seed=21)
    core = Market(data, rules=STRICT)
    async with running_simulator(core, plain_http=True) as sim:
        client = ArvatoClient(arvato_config(sim.single_url))
        tuned = settings(reconcile_delay=1.0, reconcile_horizon=horizon)
        try:
            async with Engine.open(tmp, client, tuned) as engine:
                chosen = packs[:20]
                for i, pack in enumerate(chosen):
                    await finals(
                        engine, [(await engine.submit(Request(V, pack, id=f"v{i}"))).view.id]
                    )
                sim.faults.configure(
                    parse_faults(
                        {"next": {"count": 20, "fault": "apply_late"}, "apply_late_ms": 5000}
                    )
                )
                started = time.monotonic()
                ids = [
                    (await engine.submit(Request(D, p, id=f"d{i}"))).view.id
                    for i, p in enumerate(chosen)
                ]
                outcomes = await finals(engine, ids)
                settled = time.monotonic() - started
        finally:
            await client.aclose()
        await asyncio.sleep(5.5)  # let every late change land before counting
    return tally(core, ids, outcomes) | {"seconds_to_settle": round(settled, 1)}


async def wall_step(tmp: Path, step: float) -> dict[str, Any]:
    data, packs = market_data(count=300, seed=22)
    core = Market(data, rules=STRICT)
    clock = SteppedClock()
    async with running_simulator(core, plain_http=True) as sim:
        client = ArvatoClient(arvato_config(sim.single_url))
        tuned = settings(reconcile_delay=2.0, reconcile_horizon=2.0)
        try:
            async with Engine.open(
                tmp, client, tuned, clock=clock, monotonic=clock.monotonic
            ) as engine:
                chosen = packs[:10]
                for i, pack in enumerate(chosen):  # seen ACTIVE: a reconcile can prove it ours
                    await finals(
                        engine, [(await engine.submit(Request(V, pack, id=f"v{i}"))).view.id]
                    )
                sim.faults.configure(parse_faults({"reset_after_rate": 1.0}))
                ids = [
                    (await engine.submit(Request(D, p, id=f"d{i}"))).view.id
                    for i, p in enumerate(chosen)
                ]
                while (await engine.health()).reconciling < len(ids):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                sim.faults.configure(parse_faults({}))
                clock.step_s = step
                started = time.monotonic()
                outcomes = await finals(engine, ids, within=30)
                settled = time.monotonic() - started
        finally:
            await client.aclose()
    return tally(core, ids, outcomes) | {"seconds_to_settle": round(settled, 1)}


async def disk_full(tmp: Path) -> dict[str, Any]:
    data, packs = market_data(count=200, seed=23)
    core = Market(data, rules=STRICT)
    async with running_simulator(core, plain_http=True) as sim:
        client = ArvatoClient(arvato_config(sim.single_url))
        try:
            async with Engine.open(tmp, client, settings()) as engine:
                sim.faults.configure(parse_faults({"latency_ms": 300}))
                await engine._read(lambda conn: _limit(conn, 0))
                ids, refused = [], 0
                for i, pack in enumerate(packs[:60]):
                    try:
                        ids.append((await engine.submit(Request(D, pack, id=f"d{i}"))).view.id)
                    except StorageFullError:
                        refused += 1
                await engine._read(lambda conn: _limit(conn, None))
                started = time.monotonic()
                outcomes = await finals(engine, ids)
                settled = time.monotonic() - started
        finally:
            await client.aclose()
    return tally(core, ids, outcomes) | {
        "refused_storage_full": refused,
        "seconds_from_room_to_all_final": round(settled, 1),
    }


def _limit(conn: Any, extra: int | None) -> None:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + extra if extra is not None else 1 << 30}")


async def bulk_cut_short(tmp: Path) -> dict[str, Any]:
    data, packs = market_data(count=900, seed=24)
    batches: dict[str, list[Any]] = {}
    for pack in packs:
        batches.setdefault(pack.batch, []).append(pack)
    chosen = [p for group in batches.values() if len(group) >= 3 for p in group][:300]
    core = Market(data, rules=replace(STRICT, bulk_delay=timedelta(seconds=3)))
    tuned = settings(bulk_min_backlog=50, bulk_poll_interval=0.2)
    engine_module.SHUTDOWN_GRACE = 0.1  # stop while polling, as a SIGKILL would leave it
    async with running_simulator(core, plain_http=True) as sim:
        port = int(sim.url.rsplit(":", 1)[1])
    client = ArvatoClient(arvato_config(sim.single_url))
    try:
        async with contextlib.AsyncExitStack() as outlives:
            async with Engine.open(tmp, client, tuned) as engine:
                ids = [
                    (await engine.submit(Request(D, p, id=f"d{i}"))).view.id
                    for i, p in enumerate(chosen)
                ]
                await outlives.enter_async_context(
                    running_simulator(core, plain_http=True, port=port)
                )
                while not any(t.use_case == "G188" for t in core.state.transactions):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            started = time.monotonic()
            async with Engine.open(tmp, client, tuned) as engine:
                outcomes = await finals(engine, ids)
                settled = time.monotonic() - started
    finally:
        await client.aclose()
    verifies = sum(1 for t in core.state.transactions if t.use_case == "G110")
    return tally(core, ids, outcomes) | {
        "verifies_after_restart": verifies,
        "seconds_from_restart_to_all_final": round(settled, 1),
    }


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    results: dict[str, Any] = {}
    scenarios = {
        "late_apply": lambda d: late_apply(d, horizon=30.0),
        "late_apply_baseline_resend_on_first_verify": lambda d: late_apply(d, horizon=1.0),
        "wall_step_back_2h": lambda d: wall_step(d, -2 * 3600),
        "wall_step_forward_11d": lambda d: wall_step(d, 11 * 86_400),
        "disk_full": disk_full,
        "bulk_cut_short": bulk_cut_short,
    }
    for name, scenario in scenarios.items():
        with tempfile.TemporaryDirectory() as tmp:
            results[name] = await scenario(Path(tmp))
        print(name, json.dumps(results[name]), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
