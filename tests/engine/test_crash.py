"""Crash safety: SIGKILL the engine at random moments during 500+ dispenses with repeats and
undos; after a restart the simulator must show every accepted transaction applied at most once
and no alert at all."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sqlite3
import sys
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from gateway.codes.pack import PackIdentifier
from gateway.engine.store import FILENAME
from gateway.simulator.market import Market, MarketRules
from gateway.simulator.server import running_simulator
from tests.engine.support import market_data

REPO = Path(__file__).resolve().parents[2]
KILLS = 6
SET_OR_UNDO = {"G120": "set", "G125": "set", "G121": "undo"}
APPLIED = {"done", "reconciled", "done_unconfirmed"}


def build_plan(packs: list[PackIdentifier], rng: random.Random) -> list[dict[str, Any]]:
    """Per pack: dispense, sometimes resent with the same id, a second dispense with a new id,
    undo then dispense again; packs interleaved at random, each pack's order kept."""
    sequences = []
    for i, pack in enumerate(packs):
        seq = [("dispense", f"d{i}")]
        if rng.random() < 0.25:
            seq.append(("dispense", f"d{i}"))  # the LGO resends the same request
        if rng.random() < 0.15:
            seq.append(("dispense", f"d{i}-again"))  # a second dispense of the same pack
        if rng.random() < 0.3:
            seq += [("undo_dispense", f"u{i}"), ("dispense", f"d{i}-after-undo")]
        sequences.append([{"op": op, "id": key, "pack": pack.to_json()} for op, key in seq])
    plan = []
    while sequences:
        current = rng.choice(sequences)
        plan.append(current.pop(0))
        if not current:
            sequences.remove(current)
    return plan


async def start(plan: Path, state: Path, url: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.engine.crash_driver",
        str(plan),
        str(state),
        url,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line == b"STARTED\n", line
    return proc


async def test_sigkill_at_random_moments_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    rng = random.Random(int(os.environ.get("CRASH_SEED", "20261122")))
    data, packs = market_data(count=700, seed=11)
    plan = build_plan(packs[:420], rng)
    assert sum(item["op"] == "dispense" for item in plan) >= 500
    plan_file, state = tmp_path / "plan.json", tmp_path / "state"
    plan_file.write_text(json.dumps(plan))
    market = Market(data, rules=MarketRules(bulk_delay=timedelta(seconds=0.3)))
    async with (
        running_simulator(market, plain_http=True) as sim,
        httpx.AsyncClient(base_url=sim.url) as admin,
    ):
        await admin.post("/_sim/faults", json={"latency_ms": {"uniform": [1, 8]}, "seed": 5})
        for _ in range(KILLS):
            proc = await start(plan_file, state, sim.single_url)
            await asyncio.sleep(rng.uniform(0.05, 0.5))
            with contextlib.suppress(ProcessLookupError):  # it may have drained everything
                proc.kill()
            await proc.wait()
        proc = await start(plan_file, state, sim.single_url)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 90)
        finally:
            if proc.returncode is None:  # never leave an engine running after a failure
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0 and out.endswith(b"DRAINED\n")
        alerts = (await admin.get("/_sim/alerts")).json()
        calls = (await admin.get("/_sim/transactions")).json()

    assert alerts == []
    pack_calls = [c for c in calls if c["serial"]]  # not the bulk submissions and G188 polls
    assert {c["return_code"] for c in pack_calls} == {"NMVS_SUCCESS"}
    # no pack decommissioned twice: set (single or bulk) and undo alternate, set first
    per_pack: dict[str, list[str]] = defaultdict(list)
    for call in pack_calls:
        if call["use_case"] != "G110":
            per_pack[call["serial"]].append(SET_OR_UNDO[call["use_case"]])
    for serial, cases in per_pack.items():
        assert cases == ["set", "undo"] * (len(cases) // 2) + ["set"] * (len(cases) % 2), serial

    with sqlite3.connect(state / FILENAME) as conn:
        rows = {
            r[0]: r[1:]
            for r in conn.execute("SELECT id, status, outcome, pack_key FROM transactions")
        }
        finals = Counter(
            json.loads(p)["id"]
            for (p,) in conn.execute("SELECT payload FROM events WHERE kind = 'result'")
            if json.loads(p)["status"] != "queued"
        )
        interrupted = conn.execute(
            "SELECT count(*) FROM attempts WHERE error = 'interrupted'"
        ).fetchone()[0]
    ids = {item["id"] for item in plan}
    assert set(rows) == ids
    assert all(status in ("done", "rejected") for status, _, _ in rows.values())
    assert finals == Counter(dict.fromkeys(ids, 1))  # exactly one final result each
    # the engine's record agrees with the NMVS: each pack's applied operations are its calls
    applied: dict[str, list[str]] = defaultdict(list)
    for item in plan:
        _, outcome, _ = rows[item["id"]]
        if outcome in APPLIED and (
            not applied[item["pack"]["serial"]] or applied[item["pack"]["serial"]][-1] != item["id"]
        ):
            applied[item["pack"]["serial"]].append(item["id"])
    for serial, applied_ids in applied.items():
        assert len(applied_ids) == len(per_pack[serial]), serial
    assert interrupted >= 1  # at least one kill landed while a request was in flight
    assert "G125" in {c["use_case"] for c in calls}  # the backlog also went through bulk
