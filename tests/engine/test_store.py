"""Queries of the engine database on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from gateway.engine import store as db


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


def test_a_multi_line_integrity_report_stays_one_line(tmp_path: Path) -> None:
    from gateway.engine.store import _corrupt

    message = _corrupt(
        tmp_path / "engine.sqlite3", "*** in database main ***\nPage 7: never used\n"
    )
    assert "\n" not in message
    assert "(*** in database main *** Page 7: never used)" in message
