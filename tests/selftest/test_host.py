"""Host checks on real files: the engine's SQLite database (healthy, with a queue, corrupt) and
free disk."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from gateway.engine.store import FILENAME, SCHEMA_VERSION, insert_trx, open_store
from gateway.selftest.host import check_database, check_disk
from gateway.selftest.results import Status

NOW = 1_800_000_000.0


def queue(state_dir: Path, *accepted_at: float, status: str = "queued") -> None:
    store = open_store(state_dir)
    try:
        for at in accepted_at:
            store.write(
                lambda conn, at=at: insert_trx(
                    conn,
                    {
                        "id": f"t{at}-{status}",
                        "op": "dispense",
                        "status": status,
                        "next_attempt_at": at,
                        "accepted_at": at,
                        "updated_at": at,
                    },
                )
            )
    finally:
        store.close()


def test_no_database_yet_is_a_warning(tmp_path: Path) -> None:
    (only,) = check_database(tmp_path, NOW)
    assert only.status is Status.WARNING and "has not run yet" in only.detail
    assert not (tmp_path / FILENAME).exists()  # the self-test creates nothing


def test_a_healthy_empty_queue(tmp_path: Path) -> None:
    queue(tmp_path, NOW - 99999, status="done")
    database, waiting = check_database(tmp_path, NOW)
    assert database.status is Status.OK and "integrity check passed" in database.detail
    assert (waiting.status, waiting.detail) == (Status.OK, "no transaction waiting for the NMVS")


def test_queue_age(tmp_path: Path) -> None:
    queue(tmp_path, NOW - 600, NOW - 30)
    _, young = check_database(tmp_path, NOW)
    assert young.status is Status.OK
    assert young.detail == "2 transaction(s) waiting (0 being confirmed); the oldest for 10 min"
    queue(tmp_path, NOW - 3 * 86400)
    _, old = check_database(tmp_path, NOW)
    assert old.status is Status.WARNING and old.detail.endswith("the oldest for 3.0 days")


def test_the_database_is_opened_read_only(tmp_path: Path) -> None:
    """Run as root by hand, the self-test must not write the service's database: no migration,
    and the -wal/-shm files SQLite may leave keep the database's owner."""
    queue(tmp_path, NOW - 30)
    path = tmp_path / FILENAME
    with sqlite3.connect(path) as conn:  # an older schema: a writer would migrate it
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION - 1}")
    before = path.read_bytes()
    (only,) = check_database(tmp_path, NOW)
    assert only.status is Status.FAIL
    assert f"schema version {SCHEMA_VERSION - 1}, older than this gateway reads" in only.detail
    assert path.read_bytes() == before
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    if os.geteuid() == 0:
        for file in tmp_path.iterdir():
            os.chown(file, 65534, 65534)  # the service's user (nobody stands for it)
    before = path.read_bytes()
    database, _ = check_database(tmp_path, NOW)
    assert database.status is Status.OK
    assert path.read_bytes() == before
    if os.geteuid() == 0:
        assert {f.name: f.stat().st_uid for f in tmp_path.iterdir()} == dict.fromkeys(
            (f.name for f in tmp_path.iterdir()), 65534
        )


def test_the_read_only_connection_cannot_write(tmp_path: Path) -> None:
    from gateway.engine.store import open_existing

    queue(tmp_path, NOW)
    store = open_existing(tmp_path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly database"):
            store.write(lambda conn: conn.execute("DELETE FROM transactions"))
    finally:
        store.close()


def test_a_corrupt_database_fails_with_the_fix(tmp_path: Path) -> None:
    queue(tmp_path, NOW)
    path = tmp_path / FILENAME
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page
    path.write_bytes(bytes(data))
    (only,) = check_database(tmp_path, NOW)
    assert only.status is Status.FAIL and "corrupt" in only.detail
    assert "move" in only.fix and "restore it from a backup" in only.fix


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / FILENAME).write_text("hello")
    (only,) = check_database(tmp_path, NOW)
    assert only.status is Status.FAIL and "not a database" in only.detail


def test_disk(tmp_path: Path) -> None:
    found = check_disk(tmp_path / "not" / "created")
    assert found.status in (Status.OK, Status.WARNING, Status.FAIL)
    assert found.detail.endswith(f"GiB free for {tmp_path / 'not' / 'created'}")
    assert not (tmp_path / "not").exists()
