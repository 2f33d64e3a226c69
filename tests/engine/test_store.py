"""Queries of the engine database on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gateway.engine import store as db
from gateway.engine.model import StoreError
from gateway.engine.store import open_store


def queued(conn: object, key: str, pack: str, due: float) -> None:
    db.insert_trx(
        conn,  # type: ignore[arg-type]
        {
            "id": key,
            "op": "dispense",
            "pack_key": pack,
            "pack": "{}",
            "status": "queued",
            "next_attempt_at": due,
            "accepted_at": 0.0,
            "updated_at": 0.0,
        },
    )


def test_next_due_time_is_that_of_a_pack_head_not_of_a_transaction_waiting_behind_it(
    tmp_path: Path,
) -> None:
    # a due undo behind a dispense that backs off must not make the dispatcher spin
    store = db.open_store(tmp_path)
    try:
        store.write(lambda conn: queued(conn, "head", "p1", 1000.0))
        store.write(lambda conn: queued(conn, "behind", "p1", 10.0))
        assert store.read(db.next_due_at) == 1000.0
        assert store.write(lambda conn: db.claim_due(conn, 500.0, 4)) == []
        store.write(lambda conn: queued(conn, "other", "p2", 700.0))
        assert store.read(db.next_due_at) == 700.0
        claimed = store.write(lambda conn: db.claim_due(conn, 1000.0, 4))
        assert [r["id"] for r in claimed] == ["head", "other"]
    finally:
        store.close()


def test_a_start_bounds_what_a_wall_clock_stepped_back_while_stopped_left_waiting(
    tmp_path: Path,
) -> None:
    """Scheduled times restart from the wall clock: one 2 h back leaves them 2 h ahead."""
    store = db.open_store(tmp_path)
    try:
        store.write(lambda conn: queued(conn, "soon", "p1", 1030.0))
        store.write(lambda conn: queued(conn, "stranded", "p2", 1000.0 + 7200 + 30))
        store.write(
            lambda conn: db.recover(
                conn, now=1000.0, reconcile_delay=30.0, bulk_delay=600.0, longest_delay=600.0
            )
        )
        due = store.read(
            lambda conn: dict(conn.execute("SELECT id, next_attempt_at FROM transactions"))
        )
        assert due == {"soon": 1030.0, "stranded": 1600.0}
    finally:
        store.close()


def test_a_multi_line_integrity_report_stays_one_line(tmp_path: Path) -> None:
    from gateway.engine.store import _corrupt

    message = _corrupt(
        tmp_path / "engine.sqlite3", "*** in database main ***\nPage 7: never used\n"
    )
    assert "\n" not in message
    assert "(*** in database main *** Page 7: never used)" in message


def test_a_first_start_writes_the_marker_and_a_lost_database_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    marker = json.loads((tmp_path / "engine.sqlite3.marker").read_text())
    database = tmp_path / "engine.sqlite3"
    database.unlink()
    with pytest.raises(StoreError, match=r"is missing, but this state directory had one \(store "):
        open_store(tmp_path)
    database.write_bytes(b"")
    with pytest.raises(StoreError, match=marker["store_id"]):
        open_store(tmp_path)


def test_another_database_in_the_state_directory_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path / "a").close()
    open_store(tmp_path / "b").close()
    (tmp_path / "b" / "engine.sqlite3").replace(tmp_path / "a" / "engine.sqlite3")
    with pytest.raises(StoreError, match="is not this state directory's"):
        open_store(tmp_path / "a")


def test_a_database_from_before_the_marker_gets_one(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    (tmp_path / "engine.sqlite3.marker").unlink()
    open_store(tmp_path).close()
    assert (tmp_path / "engine.sqlite3.marker").is_file()
    (tmp_path / "engine.sqlite3.marker").write_text("{not json")
    with pytest.raises(StoreError, match="cannot be read"):
        open_store(tmp_path)


def test_damage_found_while_running_is_a_one_line_store_error(tmp_path: Path) -> None:
    store = open_store(tmp_path)

    def damaged(conn: object) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    def constraint(conn: object) -> None:
        raise sqlite3.IntegrityError("UNIQUE constraint failed")

    try:
        for run in (store.write, store.read):
            with pytest.raises(StoreError, match=r"is corrupt or not a database \(database disk"):
                run(damaged)
        with pytest.raises(StoreError):
            store.write_batch([damaged])
        with pytest.raises(sqlite3.IntegrityError):  # not damage: the caller's to handle
            store.write(constraint)
        assert store.write_batch([constraint])[0][0] is False
    finally:
        store.close()
