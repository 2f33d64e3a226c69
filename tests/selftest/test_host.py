"""Host checks on real files: the engine's SQLite database (healthy, with a queue, corrupt) and
free disk."""

from __future__ import annotations

from pathlib import Path

from gateway.engine.store import FILENAME, insert_trx, open_store
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
