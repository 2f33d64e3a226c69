"""The engine against the real simulator over loopback HTTP, through the real Arvato client."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from gateway.codes import DecodedScan
from gateway.codes.pack import PackIdentifier
from gateway.codes.problems import ProblemCode, error
from gateway.engine import (
    Engine,
    Outcome,
    Request,
    RequestConflictError,
    ScanRecord,
    Status,
    StorageFullError,
    Submitted,
    TransactionView,
)
from gateway.engine import engine as engine_module
from gateway.engine.model import UNDO_WINDOW
from gateway.engine.store import FILENAME
from gateway.nmvs.arvato import ArvatoClient, Secret
from gateway.simulator.market import Market, MarketRules
from gateway.simulator.server import running_simulator
from gateway.vocabulary import Operation
from tests.brokers import eventually
from tests.engine.conftest import FakeClock, wait_final
from tests.engine.support import Rig, arvato_config, settings

D, U, V = Operation.DISPENSE, Operation.UNDO_DISPENSE, Operation.VERIFY


async def sim_calls(rig: Rig, pack: PackIdentifier) -> list[tuple[str, str]]:
    """(use case, return code) of every request the simulator received for ``pack``."""
    return [
        (t["use_case"], t["return_code"])
        for t in await rig.transactions()
        if t["serial"] == pack.serial and t["product_code"] == pack.product_code
    ]


async def run(engine: Engine, request: Request) -> Any:
    submitted = await engine.submit(request)
    return await wait_final(engine, submitted.view.id)


def scan(
    scan_id: str,
    pack: PackIdentifier | None,
    at: float,
    *,
    text: str = "x",
    problems: tuple[Any, ...] = (),
) -> ScanRecord:
    return ScanRecord(
        scan_id, "scanner-1", "till-1", at, DecodedScan(text=text, pack=pack, problems=problems)
    )


async def test_rule1_a_code_with_a_decode_error_is_never_sent(rig: Rig) -> None:
    good = rig.packs[0]
    digit = str((int(good.product_code[-1]) + 1) % 10)
    bad = replace(good, product_code=good.product_code[:-1] + digit)
    async with Engine.open(rig.state_dir, rig.client, settings(on_scan="dispense")) as engine:
        view = (await engine.submit(Request(D, bad, id="lgo-1"))).view
        assert view.status is Status.REJECTED and view.outcome is Outcome.REJECTED_LOCALLY
        assert [p["code"] for p in view.problems] == [ProblemCode.BAD_CHECK_DIGIT.value]
        misread = await engine.submit_scan(
            scan("s1", good, 1000.0, problems=(error(ProblemCode.GS_MISSING, "batch"),))
        )
        assert misread.transaction is not None
        assert misread.transaction.outcome is Outcome.REJECTED_LOCALLY
        not_a_pack = await engine.submit_scan(
            scan("s2", None, 1001.0, problems=(error(ProblemCode.NOT_A_PACK_CODE, "EAN-13"),))
        )
        assert not_a_pack.transaction is None
        health = await engine.health()
    assert await rig.transactions() == []
    assert health.week_prevented["1_decode_error"] == 3


async def test_rule2_repeat_scans_on_one_scanner_collapse_into_one(
    rig: Rig, clock: FakeClock
) -> None:
    pack = rig.packs[1]
    async with Engine.open(
        rig.state_dir,
        rig.client,
        settings(on_scan="dispense"),
        clock=clock,
        monotonic=clock.monotonic,
    ) as engine:
        t0 = clock()
        first = await engine.submit_scan(scan("s1", pack, t0))
        repeat = await engine.submit_scan(scan("s2", pack, t0 + 1.5))
        assert repeat.collapsed_into == "s1"
        assert first.transaction is not None and repeat.transaction is not None
        assert repeat.transaction.id == first.transaction.id
        done = await wait_final(engine, first.transaction.id)
        assert done.outcome is Outcome.DONE
        later = await engine.submit_scan(scan("s3", pack, t0 + 10))  # outside the window
        assert later.collapsed_into is None and later.transaction is not None
        assert later.transaction.outcome is Outcome.ALREADY_DONE_HERE
        # every scan is published once; the repeat says which scan and transaction it joined
        scan_events = [e.payload for e in await engine.pending_events(1000) if e.kind == "scan"]
        assert [(e["id"], e["collapsed_into"]) for e in scan_events] == [
            ("s1", None),
            ("s2", "s1"),
            ("s3", None),
        ]
        assert scan_events[1]["transaction_id"] == first.transaction.id
        assert scan_events[1]["pack"] == pack.to_json() and scan_events[1]["ok"] is True
        assert scan_events[2]["transaction_id"] == later.transaction.id
        health = await engine.health()
    assert health.week_prevented["2_repeat_scan"] == 1
    assert await sim_calls(rig, pack) == [("G120", "NMVS_SUCCESS")]
    assert await rig.alerts() == []


async def test_rule3_a_second_dispense_of_a_pack_dispensed_here_is_answered_locally(
    rig: Rig,
) -> None:
    pack = rig.packs[2]
    async with Engine.open(rig.state_dir, rig.client, settings()) as engine:
        first = await run(engine, Request(D, pack, id="a"))
        second = await run(engine, Request(D, pack, id="b"))
        destroy = await run(engine, Request(Operation.DESTROY, pack, id="c"))
    assert first.outcome is Outcome.DONE
    assert second.outcome is Outcome.ALREADY_DONE_HERE and second.status is Status.REJECTED
    assert destroy.outcome is Outcome.ALREADY_DONE_HERE
    assert second.problems[0]["code"] == "ALREADY_DONE_HERE"
    assert await sim_calls(rig, pack) == [("G120", "NMVS_SUCCESS")]
    assert await rig.alerts() == []


async def other_user_dispenses(rig: Rig, pack: PackIdentifier) -> None:
    config = replace(
        arvato_config(rig.sim.single_url), user_id="SIMUSER2", password=Secret("Simulator-Pass2")
    )
    other = ArvatoClient(config)
    try:
        result = await other.execute(D, pack, client_trx_id="f" * 32)
        assert result.success
    finally:
        await other.aclose()


async def test_rule4_decommission_after_a_fresh_inactive_verify_is_not_sent(rig: Rig) -> None:
    pack = rig.packs[3]
    await other_user_dispenses(rig, pack)
    async with Engine.open(rig.state_dir, rig.client, settings()) as engine:
        verify = await run(engine, Request(V, pack, id="v"))
        assert verify.outcome is Outcome.DONE and verify.nmvs is not None
        assert (verify.nmvs.state, verify.nmvs.reasons) == ("INACTIVE", ("SUPPLIED",))
        dispense = await run(engine, Request(D, pack, id="d"))
    assert dispense.outcome is Outcome.NOT_ACTIVE
    assert "set it aside and report it" in dispense.problems[-1]["message"]
    assert "INACTIVE: SUPPLIED" in dispense.problems[-1]["detail"]
    assert [c for c in await sim_calls(rig, pack) if c[0] == "G120"] == [("G120", "NMVS_SUCCESS")]
    assert await rig.alerts() == []


async def test_rule5_undo_only_of_own_recent_matching_change(rig: Rig, clock: FakeClock) -> None:
    mine, theirs, destroyed, old = rig.packs[4:8]
    await other_user_dispenses(rig, theirs)
    async with Engine.open(
        rig.state_dir, rig.client, settings(), clock=clock, monotonic=clock.monotonic
    ) as engine:
        assert (await run(engine, Request(D, mine, id="d1"))).outcome is Outcome.DONE
        undo = await run(engine, Request(U, mine, id="u1"))
        assert undo.outcome is Outcome.DONE
        not_ours = await run(engine, Request(U, theirs, id="u2"))
        assert not_ours.outcome is Outcome.UNDO_NOT_ALLOWED
        assert "holds no decommission" in not_ours.problems[-1]["detail"]
        await run(engine, Request(Operation.DESTROY, destroyed, id="x3"))
        wrong_reason = await run(engine, Request(U, destroyed, id="u3"))
        assert wrong_reason.outcome is Outcome.UNDO_NOT_ALLOWED
        assert "not dispense" in wrong_reason.problems[-1]["detail"]
        await run(engine, Request(D, old, id="d4"))
        clock.advance(UNDO_WINDOW - 3600)  # within 10 days, but inside the safety margin
        too_late = await run(engine, Request(U, old, id="u4"))
        assert too_late.outcome is Outcome.UNDO_NOT_ALLOWED
        assert "10-day undo window" in too_late.problems[-1]["message"]
    history = (await rig.pack_state(mine))["history"]
    assert [h["use_case"] for h in history] == ["G120", "G121"]
    # RefClientTrxId attached: the simulator would answer FE_TX_01 to a wrong one
    assert (await rig.pack_state(mine))["state"] == "ACTIVE"
    assert [c[0] for c in await sim_calls(rig, theirs)] == ["G120"]
    assert [c[0] for c in await sim_calls(rig, destroyed)] == ["G130"]
    assert [c[0] for c in await sim_calls(rig, old)] == ["G120"]
    assert await rig.alerts() == []


async def test_rule6_identical_verifies_within_the_window_are_collapsed(rig: Rig) -> None:
    pack = rig.packs[8]
    async with Engine.open(rig.state_dir, rig.client, settings()) as engine:
        first = await engine.submit(Request(V, pack))
        again = await engine.submit(Request(V, pack))
        assert again.view.id == first.view.id and first.new and not again.new
        await wait_final(engine, first.view.id)
        with_id = await run(engine, Request(V, pack, id="lgo-v"))
        assert with_id.outcome is Outcome.DUPLICATE_COLLAPSED
        assert with_id.nmvs is not None and with_id.nmvs.state == "ACTIVE"
        dispense = await run(engine, Request(D, pack, id="lgo-d"))  # never blocked by verify
        assert dispense.outcome is Outcome.DONE
        health = await engine.health()
    assert health.week_prevented["6_repeat_verify"] == 2
    assert await sim_calls(rig, pack) == [("G110", "NMVS_SUCCESS"), ("G120", "NMVS_SUCCESS")]


async def test_same_id_returns_the_same_result_a_second_and_a_month_later(
    rig: Rig, clock: FakeClock
) -> None:
    pack = rig.packs[9]
    async with Engine.open(
        rig.state_dir, rig.client, settings(), clock=clock, monotonic=clock.monotonic
    ) as engine:
        first = await run(engine, Request(D, pack, id="lgo-42"))
        again = await engine.submit(Request(D, pack, id="lgo-42"))
        assert again.view == first and not again.new
        with pytest.raises(RequestConflictError, match="lgo-42"):
            await engine.submit(Request(D, rig.packs[10], id="lgo-42"))
        # without an id, a repeat send of the same operation is the same transaction
        bare = await run(engine, Request(D, rig.packs[11]))
        assert (await engine.submit(Request(D, rig.packs[11]))).view == bare
    clock.advance(31 * 86_400)
    async with Engine.open(
        rig.state_dir, rig.client, settings(), clock=clock, monotonic=clock.monotonic
    ) as engine:
        assert await engine.submit(Request(D, pack, id="lgo-42")) == Submitted(first, new=False)
        assert await engine.get("lgo-42") == first
        # dispense → undo → dispense without ids: three transactions, not one
        undo = await run(engine, Request(U, rig.packs[11]))
        assert undo.outcome is Outcome.UNDO_NOT_ALLOWED  # 31 days later: window closed
    assert await sim_calls(rig, pack) == [("G120", "NMVS_SUCCESS")]


async def test_dispense_undo_dispense_without_ids_are_three_transactions(rig: Rig) -> None:
    pack = rig.packs[12]
    async with Engine.open(rig.state_dir, rig.client, settings()) as engine:
        views = [await run(engine, Request(op, pack)) for op in (D, U, D)]
    assert len({v.id for v in views}) == 3
    assert [v.outcome for v in views] == [Outcome.DONE] * 3
    assert [c[0] for c in await sim_calls(rig, pack)] == ["G120", "G121", "G120"]


@pytest.mark.parametrize("fault", ["reset_after", "timeout_code"])
async def test_ambiguous_dispense_and_undo_are_reconciled_without_alert(
    rig: Rig, fault: str
) -> None:
    seen, unseen = rig.packs[13], rig.packs[14]
    async with Engine.open(rig.state_dir, rig.client, settings()) as engine:
        await run(engine, Request(V, seen, id="v"))
        await rig.faults({"next": {"count": 1, "fault": fault}})
        dispense = await run(engine, Request(D, seen, id="d"))
        assert dispense.outcome is Outcome.RECONCILED and dispense.status is Status.DONE
        await rig.faults({"next": {"count": 1, "fault": fault}})
        undo = await run(engine, Request(U, seen, id="u"))
        assert undo.outcome is Outcome.RECONCILED
        await rig.faults({"next": {"count": 1, "fault": fault}})
        blind = await run(engine, Request(D, unseen, id="d2"))
        assert blind.outcome is Outcome.DONE_UNCONFIRMED
        refused = await run(engine, Request(U, unseen, id="u2"))
        assert refused.outcome is Outcome.UNDO_NOT_ALLOWED
        await rig.faults({"next": {"count": 1, "fault": fault}})
        redo = await run(engine, Request(D, seen, id="d3"))  # verify shows ACTIVE: applied? no
        assert redo.outcome is Outcome.RECONCILED
    assert await rig.alerts() == []
    assert (await rig.pack_state(seen))["state"] == "INACTIVE"
    sets = [c[0] for c in await sim_calls(rig, seen) if c[1] == "NMVS_SUCCESS" and c[0] != "G110"]
    assert sets == ["G120", "G121", "G120"]


async def test_reset_before_processing_resends_after_verify_shows_active(rig: Rig) -> None:
    pack = rig.packs[15]
    async with Engine.open(rig.state_dir, rig.client, settings()) as engine:
        await rig.faults({"next": {"count": 1, "fault": "reset_before"}})
        dispense = await run(engine, Request(D, pack, id="d"))
    assert dispense.outcome is Outcome.DONE
    # verifies spanning reconcile_horizon (0.05 and 0.2 s) saw it ACTIVE, then a resend
    assert [c[0] for c in await sim_calls(rig, pack)] == ["G110", "G110", "G120"]
    assert await rig.alerts() == []


@pytest.mark.parametrize("op", [D, U])
async def test_a_change_the_nmvs_applies_after_the_first_verify_is_never_sent_twice(
    rig: Rig, op: Operation
) -> None:
    """The NMVS applies the change 0.5 s after the connection dropped: the verify at 0.05 s
    still shows the old state, the next (2.05 s) does not. Resending on the first verify (the
    rule before) raised PCK_22 (or PCK_20 for the undo)."""
    pack = rig.packs[40 + (op is U)]
    patient = settings(reconcile_horizon=5.0)
    async with Engine.open(rig.state_dir, rig.client, patient) as engine:
        await run(engine, Request(V, pack, id="seen"))
        if op is U:
            assert (await run(engine, Request(D, pack, id="sale"))).outcome is Outcome.DONE
        await rig.faults({"next": {"count": 1, "fault": "apply_late"}, "apply_late_ms": 500})
        late = await run(engine, Request(op, pack, id="late"))
    assert late.outcome is Outcome.RECONCILED
    assert await rig.alerts() == []
    changes = [c[0] for c in await sim_calls(rig, pack) if c[0] != "G110"]
    assert changes == (["G120"] if op is D else ["G120", "G121"])


async def test_rate_limit_is_retried_after_the_servers_delay(rig: Rig) -> None:
    pack = rig.packs[16]
    async with Engine.open(rig.state_dir, rig.client, settings()) as engine:
        await rig.faults({"next": {"count": 1, "fault": "rate_limit"}})
        dispense = await run(
            engine,
            Request(D, pack, id="d"),
        )
    assert dispense.outcome is Outcome.DONE
    assert await sim_calls(rig, pack) == [("G120", "NMVS_SUCCESS")]
    limited = [t for t in await rig.transactions() if t["return_code"] == "NMVS_FI_SE_CLI_01"]
    assert len(limited) == 1
    assert limited[0]["client_trx_id"] != dispense.nmvs.client_trx_id  # type: ignore[union-attr]
    assert await rig.alerts() == []


async def test_operations_on_one_pack_run_in_acceptance_order(rig: Rig) -> None:
    pack = rig.packs[17]
    others = rig.packs[18:30]
    await rig.faults({"latency_ms": {"uniform": [1, 30]}, "seed": 3})
    async with Engine.open(rig.state_dir, rig.client, settings(concurrency=8)) as engine:
        ids = []
        for i, op in enumerate([D, U, D, U, D]):
            ids.append((await engine.submit(Request(op, pack, id=f"p{i}"))).view.id)
            ids.append((await engine.submit(Request(D, others[i], id=f"o{i}"))).view.id)
        views = [await wait_final(engine, i) for i in ids]
    assert all(v.outcome is Outcome.DONE for v in views)
    assert [c[0] for c in await sim_calls(rig, pack)] == ["G120", "G121", "G120", "G121", "G120"]
    assert await rig.alerts() == []


async def test_offline_verify_answers_at_once_and_decommissions_drain_in_order(
    market: Any, tmp_path: Any
) -> None:
    data, packs = market
    from gateway.simulator.market import Market

    core = Market(data)
    async with running_simulator(core, plain_http=True) as sim:
        port = int(sim.url.rsplit(":", 1)[1])
    client = ArvatoClient(arvato_config(sim.single_url))
    try:
        async with Engine.open(tmp_path, client, settings()) as engine:
            first = await run(engine, Request(V, packs[0], id="v0"))
            assert first.outcome is Outcome.OFFLINE and first.status is Status.FAILED
            queued = [
                (await engine.submit(Request(op, pack, id=f"{op.value}-{i}"))).view
                for i, (op, pack) in enumerate(
                    [(D, packs[1]), (D, packs[2]), (U, packs[1]), (D, packs[1])]
                )
            ]
            await asyncio.sleep(0.3)
            for view in queued:
                assert (await engine.get(view.id)) == view  # still queued
            offline = (await engine.submit(Request(V, packs[3], id="v3"))).view
            assert offline.outcome is Outcome.OFFLINE  # answered at once, not queued
            assert offline.problems[0]["code"] == "NMVS_OFFLINE"
            health = await engine.health()
            assert health.nmvs_online is False and health.queue_depth == 4
            async with running_simulator(core, plain_http=True, port=port):
                finals = [await wait_final(engine, v.id) for v in queued]
                assert [v.outcome for v in finals] == [Outcome.DONE] * 4
                assert (await engine.health()).nmvs_online is True
    finally:
        await client.aclose()
    history = [
        h.use_case for h in core.state.packs[(packs[1].product_code, packs[1].serial)].history
    ]
    assert history == ["G120", "G121", "G120"]
    assert core.state.alerts == []


async def test_a_decommission_older_than_the_retry_horizon_gives_up_instead_of_sending(
    market: Any, tmp_path: Any, clock: FakeClock
) -> None:
    data, packs = market
    core = Market(data)
    async with running_simulator(core, plain_http=True) as sim:
        port = int(sim.url.rsplit(":", 1)[1])
    client = ArvatoClient(arvato_config(sim.single_url))
    try:
        async with Engine.open(
            tmp_path, client, settings(), clock=clock, monotonic=clock.monotonic
        ) as engine:
            queued = (await engine.submit(Request(D, packs[1], id="old-sale"))).view
            while (await engine.health()).nmvs_online is not False:  # noqa: ASYNC110 - first send failed
                await asyncio.sleep(0.01)
            clock.advance(settings().retry_horizon + 3600)
            async with running_simulator(core, plain_http=True, port=port):
                final = await wait_final(engine, queued.id)
    finally:
        await client.aclose()
    assert final.status is Status.FAILED and final.outcome is Outcome.GAVE_UP
    assert [p["code"] for p in final.problems] == ["GAVE_UP"]
    assert [t.use_case for t in core.state.transactions if t.use_case == "G120"] == []


async def test_outbox_events_are_ordered_and_acknowledged(rig: Rig) -> None:
    pack = rig.packs[30]
    async with Engine.open(rig.state_dir, rig.client, settings(on_scan="verify")) as engine:
        outcome = await engine.submit_scan(scan("scan-9", pack, 1000.0, text="]d2..."))
        assert outcome.transaction is not None
        await wait_final(engine, outcome.transaction.id)
        events = await engine.pending_events()
        # the scan is published before the result it started
        assert [(e.kind, e.payload.get("status")) for e in events] == [
            ("scan", None),
            ("result", "queued"),
            ("result", "done"),
        ]
        assert set(events[0].payload) == {
            "id",
            "scanner_id",
            "counter",
            "at",
            "ok",
            "pack",
            "problems",
            "text",
            "collapsed_into",
            "transaction_id",
        }
        assert events[0].payload["text"] == "]d2..."
        assert events[0].payload["collapsed_into"] is None
        assert (
            events[0].payload["transaction_id"] == outcome.transaction.id == events[1].payload["id"]
        )
        result = events[2].payload
        assert set(result) == {"id", "op", "status", "outcome", "pack", "nmvs", "problems", "at"}
        assert set(result["nmvs"]) == {
            "answer_class",
            "alert_id",
            "return_code",
            "description",
            "message",
            "message_fr",
            "alert",
            "hub_code",
            "state",
            "reasons",
            "nmvs_trx_id",
            "client_trx_id",
        }
        assert result["pack"] == pack.to_json() and result["outcome"] == "done"
        await engine.ack_events([events[0].id, events[1].id])
        assert [e.id for e in await engine.pending_events()] == [events[2].id]
        waiter = asyncio.create_task(engine.wait_events())
        await engine.submit(Request(V, rig.packs[31], id="next"))
        await asyncio.wait_for(waiter, 2)


def stored_acks(rig: Rig) -> int:
    with contextlib.closing(sqlite3.connect(rig.state_dir / FILENAME)) as conn:
        return int(
            conn.execute("SELECT count(*) FROM events WHERE acked_at IS NOT NULL").fetchone()[0]
        )


async def test_the_outbox_in_memory_keeps_order_overflows_to_sqlite_and_stores_acks(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "OUTBOX_MEMORY", 4)
    monkeypatch.setattr(engine_module, "ACK_DELAY", 0.05)
    quiet = settings(on_scan="none")  # one scan event per scan, nothing sent
    async with Engine.open(rig.state_dir, rig.client, quiet) as engine:
        # ten events in one commit: more than memory holds, so the relay reads SQLite
        await asyncio.gather(
            *(engine.submit_scan(scan(f"s{i}", None, 1000.0 + i)) for i in range(10))
        )
        first = await engine.pending_events(100)
        assert [e.payload["id"] for e in first] == [f"s{i}" for i in range(10)]
        await engine.ack_events([e.id for e in first[:4]])
        await engine.submit_scan(scan("s10", None, 1010.0))  # handed over in memory
        pending = await engine.pending_events(100)
        assert [e.payload["id"] for e in pending] == [f"s{i}" for i in range(4, 11)]
        await engine.ack_events([e.id for e in pending[:2]])
        assert [e.payload["id"] for e in await engine.pending_events(2)] == ["s6", "s7"]
        # with no commit to ride along, the acknowledgements get one of their own
        await eventually(lambda: stored_acks(rig) == 6, within=5)
    # acknowledgements held in memory are stored when the engine closes
    async with Engine.open(rig.state_dir, rig.client, quiet) as engine:
        again = await engine.pending_events(100)
    assert [e.payload["id"] for e in again] == [f"s{i}" for i in range(6, 11)]
    assert [e.id for e in again] == [e.id for e in pending[2:]]


async def test_a_stored_scan_is_found_by_id_after_a_restart(rig: Rig) -> None:
    pack = rig.packs[32]
    bad = (error(ProblemCode.NOT_A_PACK_CODE, "EAN-13"),)
    async with Engine.open(rig.state_dir, rig.client, settings(on_scan="none")) as engine:
        await engine.submit_scan(scan("good", pack, 1000.0, text="]d2 good"))
        await engine.submit_scan(scan("bad", None, 1001.0, problems=bad))
        assert await engine.scan("unknown") is None
    async with Engine.open(rig.state_dir, rig.client, settings(on_scan="none")) as engine:
        good = await engine.scan("good")
        refused = await engine.scan("bad")
        assert await engine.scan("unknown") is None
    assert good is not None and refused is not None
    assert good.pack == pack and good.ok and good.text == "]d2 good"
    assert good.transaction_id is None and good.collapsed_into is None
    assert refused.pack is None and not refused.ok
    assert [p["code"] for p in refused.problems] == ["NOT_A_PACK_CODE"]


async def test_health_warns_about_old_decommissions_and_closing_undo_windows(
    rig: Rig, clock: FakeClock
) -> None:
    pack = rig.packs[32]
    async with Engine.open(
        rig.state_dir, rig.client, settings(), clock=clock, monotonic=clock.monotonic
    ) as engine:
        await run(engine, Request(D, pack, id="d"))
    clock.advance(9 * 86_400)
    # a new engine whose link is down: the undo stays queued
    down = ArvatoClient(arvato_config("http://127.0.0.1:9/"))
    try:
        async with Engine.open(
            rig.state_dir, down, settings(), clock=clock, monotonic=clock.monotonic
        ) as engine:
            await engine.submit(Request(U, pack, id="u"))
            await asyncio.sleep(0.2)
            clock.advance(2 * 3600)
            health = await engine.health()
    finally:
        await down.aclose()
    assert any("decommission(s) queued for more than 1 h" in w for w in health.warnings)
    assert any("undo u is still queued" in w for w in health.warnings)


async def test_operator_error_pauses_sending_until_resumed(rig: Rig) -> None:
    pack = rig.packs[33]
    wrong = replace(arvato_config(rig.sim.single_url), password=Secret("Wrong-Pass-1"))
    client = ArvatoClient(wrong)
    try:
        async with Engine.open(rig.state_dir, client, settings()) as engine:
            queued = (await engine.submit(Request(D, pack, id="d"))).view
            while (await engine.health()).paused is None:
                await engine.wait_events()
            health = await engine.health()
            assert health.paused is not None and "NMVS_FE_AU_01" in health.paused
            kept = await engine.get("d")
            assert kept is not None and kept.status is Status.QUEUED  # kept, not failed
            assert queued.status is Status.QUEUED
            verify = (await engine.submit(Request(V, pack, id="v"))).view
            assert verify.outcome is Outcome.OFFLINE  # answered at once while paused
            await client.reconfigure(arvato_config(rig.sim.single_url))
            engine.resume()
            assert (await wait_final(engine, "d")).outcome is Outcome.DONE
    finally:
        await client.aclose()
    assert [c for c in await sim_calls(rig, pack) if c[1] == "NMVS_SUCCESS"] == [
        ("G120", "NMVS_SUCCESS")
    ]
    assert await rig.alerts() == []


async def test_a_failing_request_does_not_undo_the_others_committed_with_it(rig: Rig) -> None:
    async with Engine.open(rig.state_dir, rig.client, settings()) as engine:
        await run(engine, Request(V, rig.packs[34], id="taken"))
        results = await asyncio.gather(
            *(engine.submit(Request(V, rig.packs[35 + i], id=f"ok{i}")) for i in range(5)),
            engine.submit(Request(D, rig.packs[40], id="taken")),
            return_exceptions=True,
        )
        assert isinstance(results[-1], RequestConflictError)
        for i in range(5):
            assert (await wait_final(engine, f"ok{i}")).outcome is Outcome.DONE
        assert await engine.get("taken") is not None


def by_batch(packs: list[PackIdentifier]) -> dict[tuple[str, str], list[PackIdentifier]]:
    batches: dict[tuple[str, str], list[PackIdentifier]] = {}
    for pack in packs:
        batches.setdefault((pack.product_code, pack.batch), []).append(pack)
    return batches


async def test_a_backlog_drains_through_bulk_and_bulk_changes_can_be_undone(
    market: Any, tmp_path: Any
) -> None:
    data, packs = market
    batches = by_batch(packs)
    big = max(batches.values(), key=len)[:12]
    others = [b[0] for b in batches.values() if b[0].batch != big[0].batch][:5]  # one per batch
    core = Market(data, rules=MarketRules(bulk_delay=timedelta(seconds=0.2)))
    async with running_simulator(core, plain_http=True) as sim:
        port = int(sim.url.rsplit(":", 1)[1])
    client = ArvatoClient(arvato_config(sim.single_url))
    tuned = settings(bulk_min_backlog=10, bulk_min_group=5, bulk_poll_interval=0.1)
    try:
        async with Engine.open(tmp_path, client, tuned) as engine:
            views = [
                (await engine.submit(Request(D, p, id=f"b{i}"))).view
                for i, p in enumerate(big + others)
            ]
            assert (await engine.health()).queue_depth == len(views)
            async with running_simulator(core, plain_http=True, port=port):
                finals = [await wait_final(engine, v.id) for v in views]
                assert {v.outcome for v in finals} == {Outcome.DONE}
                undo = await run(engine, Request(U, big[0], id="undo-0"))
                assert undo.outcome is Outcome.DONE
    finally:
        await client.aclose()
    calls = [(t.use_case, t.serial, t.return_code) for t in core.state.transactions]
    bulked = {serial for case, serial, _ in calls if case == "G125" and serial}
    assert bulked == {p.serial for p in big}
    assert {serial for case, serial, _ in calls if case == "G120"} == {p.serial for p in others}
    assert ("G121", big[0].serial, "NMVS_SUCCESS") in calls  # RefClientTrxId of the bulk accepted
    assert core.state.alerts == []


async def test_an_unclear_bulk_submission_is_verified_only_once_the_bulk_must_be_done(
    market: Any, tmp_path: Any
) -> None:
    data, packs = market
    batches = by_batch(packs)
    big = max(batches.values(), key=len)[:8]
    core = Market(data, rules=MarketRules(bulk_delay=timedelta(seconds=0.5)))
    tuned = settings(
        bulk_min_backlog=8, bulk_min_group=8, bulk_poll_interval=0.1, bulk_result_horizon=1.0
    )
    async with running_simulator(core, plain_http=True) as sim:
        port = int(sim.url.rsplit(":", 1)[1])
    client = ArvatoClient(arvato_config(sim.single_url))
    try:
        async with Engine.open(tmp_path, client, tuned) as engine:
            views = [
                (await engine.submit(Request(D, p, id=f"b{i}"))).view for i, p in enumerate(big)
            ]
            async with running_simulator(core, plain_http=True, port=port) as back:
                await sim_faults(back, {"next": {"count": 1, "fault": "reset_after"}})
                finals = [await wait_final(engine, v.id) for v in views]
    finally:
        await client.aclose()
    assert "G125" in {t.use_case for t in core.state.transactions}
    # the bulk was accepted, then the answer lost; verifying at once would have seen ACTIVE
    assert {v.outcome for v in finals} <= {Outcome.DONE, Outcome.DONE_UNCONFIRMED}
    assert core.state.alerts == []
    applied = [
        t.serial for t in core.state.transactions if t.use_case in ("G120", "G125") and t.serial
    ]
    assert sorted(applied) == sorted(p.serial for p in big)  # each pack decommissioned once


async def sim_faults(sim: Any, plan: dict[str, Any]) -> None:
    from gateway.simulator.faults import parse_faults

    sim.faults.configure(parse_faults(plan))


async def test_an_unclear_dispense_is_reconciled_whatever_the_clock_says(
    rig: Rig, clock: FakeClock
) -> None:
    """Past the retry horizon too (a clock jump of 11 days): giving up without the verify would
    leave the pack's state unknown, and a new dispense of it would be a PCK_22 alert."""
    pack = rig.packs[31]
    calm = settings(reconcile_delay=3600.0, reconcile_horizon=3600.0)
    async with Engine.open(
        rig.state_dir, rig.client, calm, clock=clock, monotonic=clock.monotonic
    ) as engine:
        await run(engine, Request(V, pack, id="seen"))  # the state before: the proof it was ours
        await rig.faults({"next": {"count": 1, "fault": "reset_after"}})
        queued = (await engine.submit(Request(D, pack, id="unclear"))).view
        while len(await rig.transactions()) < 2:  # noqa: ASYNC110 - the send reached the NMVS
            await asyncio.sleep(0.01)
        clock.step(11 * 86_400)  # the wall clock jumps; an hour really passes
        clock.advance(3600)
        final = await wait_final(engine, queued.id)
    assert final.outcome is Outcome.RECONCILED
    assert [c[0] for c in await sim_calls(rig, pack)] == ["G110", "G120", "G110"]
    assert await rig.alerts() == []


async def test_the_undo_window_is_judged_in_nmvs_time_not_on_a_clock_behind(
    rig: Rig, clock: FakeClock
) -> None:
    """The gateway's clock 8 h behind the NMVS, 10 days 1 hour after a dispense: on its own clock
    the undo would still be inside the window, for the NMVS it is not (PCK_20, an alert)."""
    pack = rig.packs[32]
    clock.advance(-8 * 3600)
    async with Engine.open(
        rig.state_dir, rig.client, settings(), clock=clock, monotonic=clock.monotonic
    ) as engine:
        sale = await run(engine, Request(D, pack, id="sale"))
        assert sale.outcome is Outcome.DONE
        later = 10 * 86_400 + 3600
        assert (await rig.admin.post("/_sim/clock", json={"advance_seconds": later})).is_success
        clock.advance(later)
        await run(engine, Request(V, pack, id="look"))  # any dated answer shows the offset
        undo = await run(engine, Request(U, pack, id="undo"))
        health = await engine.health()
    assert undo.outcome is Outcome.UNDO_NOT_ALLOWED
    assert "G121" not in [c[0] for c in await sim_calls(rig, pack)]
    assert await rig.alerts() == []
    assert any("480 min behind the NMVS" in w for w in health.warnings)


async def _limit_pages(engine: Engine, extra: int | None) -> None:
    """Make the engine's own SQLite connection unable to grow the file (SQLITE_FULL, as a full
    filesystem gives), or lift the limit (``None``)."""

    def limit(conn: sqlite3.Connection) -> None:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + extra if extra is not None else 1 << 30}")

    await engine._read(limit)


async def test_a_full_state_directory_refuses_new_work_and_finishes_accepted_work(
    rig: Rig, clock: FakeClock
) -> None:
    """SQLite's own limit on the file's size gives the SQLITE_FULL a full filesystem gives."""
    packs = rig.packs[33:60]
    async with Engine.open(
        rig.state_dir, rig.client, settings(), clock=clock, monotonic=clock.monotonic
    ) as engine:
        await rig.faults({"latency_ms": 300})  # the accepted ones are still in flight
        await _limit_pages(engine, 0)
        accepted: list[str] = []
        refused = None
        for number, pack in enumerate(packs):  # the last free room in the file's pages fills
            try:
                accepted.append((await engine.submit(Request(D, pack, id=f"d{number}"))).view.id)
            except StorageFullError as full:
                refused = (number, pack, str(full))
                break
        assert refused is not None, "the limit never filled"
        number, pack, message = refused
        assert "is full: free space there; queued work goes on by itself" in message
        assert "new requests are refused (storage_full)" in (await engine.health()).warnings[0]
        await _limit_pages(engine, None)
        finals = [await wait_final(engine, trx_id) for trx_id in accepted]
        again = await run(engine, Request(D, pack, id=f"d{number}"))  # sent again, same id
        # small writes may fit while larger ones fail: the warning waits for room that lasts
        assert "new requests are refused" in (await engine.health()).warnings[0]
        clock.advance(engine_module.STORAGE_CLEAR_S)
        await run(engine, Request(V, packs[-1], id="room"))
        assert not (await engine.health()).warnings
    assert {f.outcome for f in finals} <= {Outcome.DONE} and again.outcome is Outcome.DONE
    sent = [c[0] for p in packs[: number + 1] for c in await sim_calls(rig, p)]
    assert sent == ["G120"] * (number + 1)  # each accepted one and the retried one: once
    assert await rig.alerts() == []


async def test_a_precheck_cut_short_by_a_stop_is_checked_again_never_reconciled(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The precheck verify sent nothing that changes the pack: after a stop (or a crash) the
    dispense is decided afresh, not reconciled as if it had been sent."""
    monkeypatch.setattr("gateway.engine.engine.SHUTDOWN_GRACE", 0.2)
    pack = rig.packs[60]
    site = settings(verify_before_decommission=30.0)
    await rig.faults({"latency_ms": 3000})
    async with Engine.open(rig.state_dir, rig.client, site) as engine:
        await engine.submit(Request(D, pack, id="cut"))
        while not await engine._read(  # noqa: ASYNC110 - the precheck is in flight
            lambda c: c.execute("SELECT count(*) FROM attempts").fetchone()[0]
        ):
            await asyncio.sleep(0.01)
    await rig.faults({"latency_ms": 0})
    async with Engine.open(rig.state_dir, rig.client, site) as engine:
        final = await wait_final(engine, "cut")
    assert final.outcome is Outcome.DONE
    assert [c[0] for c in await sim_calls(rig, pack)][-2:] == ["G110", "G120"]
    assert await rig.alerts() == []


async def test_a_precheck_does_not_use_up_the_first_send(rig: Rig, clock: FakeClock) -> None:
    """A week passing while the precheck is out (an outage, a clock jump) must not give up a
    dispense that was never sent: the retry horizon counts sends."""
    pack = rig.packs[61]
    site = settings(verify_before_decommission=30.0)
    await rig.faults({"latency_ms": 500})
    async with Engine.open(
        rig.state_dir, rig.client, site, clock=clock, monotonic=clock.monotonic
    ) as engine:
        queued = (await engine.submit(Request(D, pack, id="late"))).view
        while not await engine._read(  # noqa: ASYNC110 - the precheck is in flight
            lambda c: c.execute("SELECT count(*) FROM attempts").fetchone()[0]
        ):
            await asyncio.sleep(0.01)
        clock.advance(8 * 86_400)
        await rig.faults({"latency_ms": 0})
        final = await wait_final(engine, queued.id)
    assert final.outcome is Outcome.DONE
    assert [c[0] for c in await sim_calls(rig, pack)] == ["G110", "G120"]


async def dispense_unclearly(rig: Rig, engine: Engine, pack: PackIdentifier) -> TransactionView:
    """A dispense of a pack seen ACTIVE whose answer is lost after processing: it waits for
    its reconcile verify when this returns."""
    await run(engine, Request(V, pack, id="seen"))
    await rig.faults({"next": {"count": 1, "fault": "reset_after"}})
    unclear = (await engine.submit(Request(D, pack, id="unclear"))).view
    while (await engine.health()).reconciling != 1:  # noqa: ASYNC110 - the engine's state
        await asyncio.sleep(0.01)
    return unclear


async def test_a_wall_clock_stepped_back_delays_neither_a_reconcile_nor_a_held_request(
    rig: Rig, clock: FakeClock
) -> None:
    """NTP moves the wall clock 2 h back while a reconcile is due in 30 s and requests wait
    out a 429: both go on when 30 s have really passed, not 2 h later."""
    unclear, held = rig.packs[42], rig.packs[43]
    tuned = settings(reconcile_delay=30.0, reconcile_horizon=30.0, retry_initial=15.0)
    async with Engine.open(
        rig.state_dir, rig.client, tuned, clock=clock, monotonic=clock.monotonic
    ) as engine:
        first = await dispense_unclearly(rig, engine, unclear)
        await rig.faults({"next": {"count": 1, "fault": "rate_limit"}})
        second = (await engine.submit(Request(D, held, id="held"))).view
        while not await sim_calls(rig, held):  # noqa: ASYNC110 - the 429 was answered
            await asyncio.sleep(0.01)
        clock.step(-2 * 3600)
        clock.advance(32)  # past the reconcile (30 s), the hold and the retry (≤ 31 s)
        engine._wake.set()  # the dispatcher sleeps on a real timer; the fake clock moved
        reconciled = await wait_final(engine, first.id)
        sent = await wait_final(engine, second.id)
    assert reconciled.outcome is Outcome.RECONCILED
    assert sent.outcome is Outcome.DONE
    assert await rig.alerts() == []


async def test_a_bulk_cut_short_while_polling_is_finished_from_its_result_after_a_restart(
    market: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine stops after the NMVS acknowledged a bulk and before its result (the database
    as a SIGKILL then leaves it too: the bulk submitted, its packs sending with open attempts):
    at the next start the result is asked for with the stored NMVS id, and every pack ends
    ``done`` — not one verify each ending ``done_unconfirmed``."""
    monkeypatch.setattr("gateway.engine.engine.SHUTDOWN_GRACE", 0.1)
    data, packs = market
    big = max(by_batch(packs).values(), key=len)[:8]
    core = Market(data, rules=MarketRules(bulk_delay=timedelta(seconds=60)))
    tuned = settings(bulk_min_backlog=8, bulk_min_group=8, bulk_poll_interval=0.05)
    async with running_simulator(core, plain_http=True) as sim:
        port = int(sim.url.rsplit(":", 1)[1])
    client = ArvatoClient(arvato_config(sim.single_url))
    try:
        async with contextlib.AsyncExitStack() as outlives_the_engine:
            async with Engine.open(tmp_path, client, tuned) as engine:  # offline: a backlog
                views = [
                    (await engine.submit(Request(D, p, id=f"b{i}"))).view for i, p in enumerate(big)
                ]
                await outlives_the_engine.enter_async_context(
                    running_simulator(core, plain_http=True, port=port)
                )
                while not any(t.use_case == "G188" for t in core.state.transactions):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            assert {(await _stored(tmp_path, v.id))["status"] for v in views} == {"sending"}
            core.advance(60)  # the NMVS has processed the bulk meanwhile
            restarted_at = time.time()
            async with Engine.open(tmp_path, client, tuned) as engine:
                finals = [await wait_final(engine, v.id) for v in views]
    finally:
        await client.aclose()
    assert {v.outcome for v in finals} == {Outcome.DONE}
    # the change's time is the send's, before the stop: the undo window is never taken as longer
    conn = sqlite3.connect(tmp_path / FILENAME)
    try:
        change_times = [row[0] for row in conn.execute("SELECT change_at FROM ledger")]
    finally:
        conn.close()
    assert len(change_times) == len(big) and max(change_times) < restarted_at
    calls = [(t.use_case, t.serial) for t in core.state.transactions]
    assert calls.count(("G125", None)) == 1  # one submission, never repeated
    assert sorted(serial for case, serial in calls if case == "G125" and serial) == sorted(
        p.serial for p in big
    )
    assert not {case for case, _ in calls} & {"G110", "G120"}  # no verify, no single resend
    assert core.state.alerts == []


async def _stored(state_dir: Any, trx_id: str) -> sqlite3.Row:
    conn = sqlite3.connect(f"file:{state_dir / FILENAME}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM transactions WHERE id = ?", (trx_id,)).fetchone()
    finally:
        conn.close()


async def test_the_nmvs_clock_offset_outlives_a_restart(rig: Rig, clock: FakeClock) -> None:
    """The same 8 h, and the undo is the first request after a restart: no dated answer yet,
    the offset stored before the stop decides (PCK_20 otherwise)."""
    pack = rig.packs[33]
    clock.advance(-8 * 3600)
    async with Engine.open(
        rig.state_dir, rig.client, settings(), clock=clock, monotonic=clock.monotonic
    ) as engine:
        assert (await run(engine, Request(D, pack, id="sale"))).outcome is Outcome.DONE
    later = 10 * 86_400 + 3600
    assert (await rig.admin.post("/_sim/clock", json={"advance_seconds": later})).is_success
    clock.advance(later)
    async with Engine.open(
        rig.state_dir, rig.client, settings(), clock=clock, monotonic=clock.monotonic
    ) as engine:
        undo = await run(engine, Request(U, pack, id="undo"))
    assert undo.outcome is Outcome.UNDO_NOT_ALLOWED
    assert "G121" not in [c[0] for c in await sim_calls(rig, pack)]
    assert await rig.alerts() == []


async def test_a_wall_clock_stepped_during_a_run_moves_no_reconcile_at_the_next_start(
    rig: Rig, clock: FakeClock
) -> None:
    """NTP moves the wall clock 2 h forward while a reconcile waits 30 s; the gateway restarts.
    The stored due time came from the last run's monotonic scheduling time: taken as wall time
    it would be 2 h past, and the verify sent at once (a verify the horizon counts as a wait)."""
    pack = rig.packs[44]
    tuned = settings(reconcile_delay=30.0, reconcile_horizon=30.0)
    async with Engine.open(
        rig.state_dir, rig.client, tuned, clock=clock, monotonic=clock.monotonic
    ) as engine:
        unclear = await dispense_unclearly(rig, engine, pack)
        clock.step(2 * 3600)
    async with Engine.open(
        rig.state_dir, rig.client, tuned, clock=clock, monotonic=clock.monotonic
    ) as engine:
        await asyncio.sleep(0.3)
        assert [c[0] for c in await sim_calls(rig, pack)] == ["G110", "G120"]  # not yet
        clock.advance(31)
        engine._wake.set()  # the dispatcher sleeps on a real timer; the fake clock moved
        final = await wait_final(engine, unclear.id)
    assert final.outcome is Outcome.RECONCILED
    assert [c[0] for c in await sim_calls(rig, pack)] == ["G110", "G120", "G110"]
