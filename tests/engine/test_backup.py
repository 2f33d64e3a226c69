"""Rolling backups, the backup before a migration, and restore-backup, on real files."""

from __future__ import annotations

import argparse
import sqlite3
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.engine import Engine, Outcome, Request
from gateway.engine import store as db
from gateway.engine.backup import backups, hourly_backup
from gateway.engine.backup import run as restore_backup
from gateway.engine.marker import marker_path, read_marker
from gateway.nmvs.arvato import ArvatoClient
from gateway.simulator.market import Market, MarketRules
from gateway.simulator.server import running_simulator
from gateway.vocabulary import Operation
from tests.engine.conftest import wait_final
from tests.engine.support import Rig, arvato_config, settings
from tests.engine.test_engine import by_batch, sim_calls
from tests.engine.test_store import queued


def restore(state_dir: Path, source: Path | None = None) -> int:
    return restore_backup(argparse.Namespace(state_dir=str(state_dir), source=source))


def test_rolling_backups_are_whole_copies_and_only_the_newest_are_kept(tmp_path: Path) -> None:
    store = db.open_store(tmp_path)
    try:
        made = []
        for i in range(3):
            store.write(lambda conn, i=i: queued(conn, f"t{i}", f"p{i}", 0.0))
            made.append(hourly_backup(store.path, keep=2))
    finally:
        store.close()
    assert backups(store.path) == made[1:]
    copy = sqlite3.connect(made[-1])
    try:
        assert copy.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert copy.execute("SELECT count(*) FROM transactions").fetchone()[0] == 3
    finally:
        copy.close()


def test_a_migration_keeps_the_database_as_it_was_first(tmp_path: Path) -> None:
    store = db.open_store(tmp_path)
    store.write(lambda conn: queued(conn, "before", "p", 0.0))
    store.conn.execute(f"PRAGMA user_version = {db.SCHEMA_VERSION - 1}")  # one schema back
    store.conn.execute("DROP TABLE meta")
    store.close()
    marker_path(store.path).unlink()  # the marker came with that last migration
    db.open_store(tmp_path).close()
    (kept,) = backups(store.path, f"v{db.SCHEMA_VERSION - 1}")
    copy = sqlite3.connect(kept)
    try:
        assert copy.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION - 1
        assert copy.execute("SELECT id FROM transactions").fetchall() == [("before",)]
    finally:
        copy.close()


def test_restore_refuses_a_damaged_file_or_another_gateways_backup(tmp_path: Path) -> None:
    db.open_store(tmp_path / "here").close()
    db.open_store(tmp_path / "there").close()
    other = hourly_backup(tmp_path / "there" / db.FILENAME, keep=1)
    assert restore(tmp_path / "here", other) == 1
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database" * 100)
    assert restore(tmp_path / "here", junk) == 1
    assert restore(tmp_path / "here") == 1  # no backup of its own yet


async def test_after_a_restore_every_pack_is_verified_before_it_is_decommissioned(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pack dispensed after the backup is unknown to the restored database: dispensing it
    again would be PCK_22. Verified first, it is answered not_active, without an alert."""
    sold, fresh = rig.packs[50], rig.packs[51]
    async with Engine.open(rig.state_dir, rig.client, settings()) as engine:
        await wait_final(
            engine, (await engine.submit(Request(Operation.VERIFY, sold, id="v"))).view.id
        )
    database = rig.state_dir / db.FILENAME
    hourly_backup(database, keep=1)
    async with Engine.open(rig.state_dir, rig.client, settings()) as engine:
        lost = (await engine.submit(Request(Operation.DISPENSE, sold, id="after-backup"))).view
        assert (await wait_final(engine, lost.id)).outcome is Outcome.DONE
    assert restore(rig.state_dir) == 0
    assert "kept" in capsys.readouterr().out
    assert read_marker(database)["running"] is False
    async with Engine.open(rig.state_dir, rig.client, settings()) as engine:
        assert await engine.get("after-backup") is None  # lost with the restore
        again = (await engine.submit(Request(Operation.DISPENSE, sold, id="again"))).view
        new = (await engine.submit(Request(Operation.DISPENSE, fresh, id="new"))).view
        assert (await wait_final(engine, again.id)).outcome is Outcome.NOT_ACTIVE
        assert (await wait_final(engine, new.id)).outcome is Outcome.DONE
    assert await rig.alerts() == []
    assert [c[0] for c in await sim_calls(rig, fresh)] == ["G110", "G120"]


async def test_after_a_restore_a_backlog_goes_single_with_its_verifies_not_by_bulk(
    market: Any, tmp_path: Path
) -> None:
    """The backup holds 8 dispenses queued; they were sent after it. Restored, they are queued
    again: a bulk would send them without a verify (PCK_22 on a market without the French
    counter); each is verified first and answered not_active."""
    data, packs = market
    big = max(by_batch(packs).values(), key=len)[:8]
    core = Market(
        data, rules=MarketRules(bulk_delay=timedelta(seconds=0.2), own_repeat_info_limit=None)
    )
    async with running_simulator(core, plain_http=True) as sim:
        port = int(sim.url.rsplit(":", 1)[1])
    client = ArvatoClient(arvato_config(sim.single_url))
    tuned = settings(bulk_min_backlog=8, bulk_min_group=8, bulk_poll_interval=0.1)
    try:
        async with Engine.open(tmp_path, client, tuned) as engine:  # offline: queued
            views = [
                (await engine.submit(Request(Operation.DISPENSE, p, id=f"b{i}"))).view
                for i, p in enumerate(big)
            ]
        hourly_backup(tmp_path / db.FILENAME, keep=5)
        async with running_simulator(core, plain_http=True, port=port):
            async with Engine.open(tmp_path, client, tuned) as engine:
                assert {(await wait_final(engine, v.id)).outcome for v in views} == {Outcome.DONE}
            assert restore(tmp_path) == 0
            async with Engine.open(tmp_path, client, tuned) as engine:
                again = {(await wait_final(engine, v.id)).outcome for v in views}
    finally:
        await client.aclose()
    assert again == {Outcome.NOT_ACTIVE}
    assert core.state.alerts == []
    changes = Counter(
        t.serial for t in core.state.transactions if t.use_case in ("G120", "G125") and t.serial
    )
    assert changes == Counter(p.serial for p in big)  # each decommissioned once, before the restore
