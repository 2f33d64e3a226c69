"""A missing or damaged write-ahead log after an unclean stop, on real SQLite files."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from gateway.engine import store as db
from gateway.engine.marker import read_marker
from gateway.engine.model import StoreError
from gateway.engine.reset import run as reset_state
from gateway.engine.wal import wal_damage
from tests.engine.test_store import queued

PAGE = 4096


def crashed_copy(tmp_path: Path, transactions: int = 20) -> Path:
    """A state directory as a SIGKILL leaves it: the database open, its WAL not checkpointed,
    the marker saying ``running`` (the files are copied while the store is still open)."""
    live, copy = tmp_path / "live", tmp_path / "copy"
    store = db.open_store(live)
    try:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the schema is in the file
        for i in range(transactions):
            store.write(lambda conn, i=i: queued(conn, f"t{i}", f"p{i}", 0.0))
        shutil.copytree(live, copy)
    finally:
        store.close()
    return copy


def wal_of(state_dir: Path) -> Path:
    return state_dir / (db.FILENAME + "-wal")


def frames(wal: Path) -> int:
    return (wal.stat().st_size - 32) // (24 + PAGE)


def flip_byte_of_frame(wal: Path, frame: int) -> None:
    data = bytearray(wal.read_bytes())
    data[32 + frame * (24 + PAGE) + 24 + 200] ^= 0xFF
    wal.write_bytes(data)


def count(state_dir: Path) -> int:
    store = db.open_store(state_dir)
    try:
        return int(
            store.read(lambda c: c.execute("SELECT count(*) FROM transactions").fetchone()[0])
        )
    finally:
        store.close()


def test_a_whole_log_after_a_crash_is_replayed(tmp_path: Path) -> None:
    copy = crashed_copy(tmp_path)
    assert read_marker(copy / db.FILENAME)["running"] is True
    assert wal_damage(wal_of(copy)) is None
    assert count(copy) == 20


def test_a_clean_close_empties_the_log_and_clears_running(tmp_path: Path) -> None:
    store = db.open_store(tmp_path)
    store.write(lambda conn: queued(conn, "t", "p", 0.0))
    store.close()
    assert read_marker(tmp_path / db.FILENAME)["running"] is False
    assert not wal_of(tmp_path).exists() or wal_of(tmp_path).stat().st_size == 0
    assert count(tmp_path) == 1


def test_a_log_deleted_after_a_crash_is_refused(tmp_path: Path) -> None:
    copy = crashed_copy(tmp_path)
    wal_of(copy).unlink()
    with pytest.raises(StoreError, match="missing after an unclean stop") as caught:
        db.open_store(copy)
    assert "\n" not in str(caught.value)
    assert "restore-backup" in str(caught.value) and "--accept-log-loss" in str(caught.value)


def test_a_clean_close_that_could_not_clear_running_is_not_taken_for_a_lost_log(
    tmp_path: Path,
) -> None:
    """SQLite's clean close deletes the log and its -shm; a full disk may keep the marker from
    being updated. Nothing was lost: the start goes on."""
    copy = crashed_copy(tmp_path)
    store = db.open_store(copy)  # replays, then closes cleanly: the log is in the file
    store.conn.close()  # as if the marker update failed: it still says running
    assert read_marker(copy / db.FILENAME)["running"] is True
    assert not wal_of(copy).exists()
    assert count(copy) == 20


def test_a_log_damaged_mid_way_is_refused_until_the_loss_is_accepted(tmp_path: Path) -> None:
    copy = crashed_copy(tmp_path)
    flip_byte_of_frame(wal_of(copy), 3)
    with pytest.raises(
        StoreError, match=r"is damaged: frame 4 of \d+ is damaged and \d+ committed"
    ):
        db.open_store(copy)
    assert reset_state(argparse.Namespace(state_dir=str(copy), accept_log_loss=True)) == 0
    assert list(copy.glob(db.FILENAME + "-wal.kept-*"))  # the damaged log is kept for a look
    assert count(copy) < 20  # SQLite replays the frames before the damage only


def test_a_torn_last_frame_is_what_a_power_cut_leaves_and_is_not_refused(tmp_path: Path) -> None:
    """With synchronous=FULL no caller was told the last transaction was committed."""
    copy = crashed_copy(tmp_path)
    wal = wal_of(copy)
    flip_byte_of_frame(wal, frames(wal) - 1)
    assert count(copy) == 19


def test_the_checksums_match_those_sqlite_writes_in_both_byte_orders(tmp_path: Path) -> None:
    """Every frame of a real log verifies; the big-endian variant is checked by rewriting the
    header magic and all checksums (what a big-endian host writes)."""
    copy = crashed_copy(tmp_path, transactions=5)
    wal = wal_of(copy)
    data = bytearray(wal.read_bytes())
    flip = bytearray(data)
    flip[0:4] = (0x377F0683).to_bytes(4, "big")
    _rechecksum(flip)
    for log in (data, flip):
        path = tmp_path / "log"
        path.write_bytes(log)
        assert wal_damage(path) is None
        broken = bytearray(log)
        broken[32 + 24 + 10] ^= 1
        path.write_bytes(broken)
        assert wal_damage(path) is not None


def _rechecksum(data: bytearray) -> None:
    import struct

    from gateway.engine.wal import _checksum

    big = data[3] & 1 == 1
    sums = _checksum(bytes(data[:24]), big, (0, 0))
    data[24:32] = struct.pack(">2I", *sums)
    for start in range(32, len(data) - 24 - PAGE + 1, 24 + PAGE):
        sums = _checksum(bytes(data[start : start + 8]), big, sums)
        sums = _checksum(bytes(data[start + 24 : start + 24 + PAGE]), big, sums)
        data[start + 16 : start + 24] = struct.pack(">2I", *sums)


def test_status_and_report_still_read_what_a_refused_start_would_not_open(
    tmp_path: Path,
) -> None:
    """Readers (status, report, self-test) open read-only beside a running daemon, whose log is
    live: they never judge it, and they leave the marker alone."""
    copy = crashed_copy(tmp_path)
    wal_of(copy).unlink()
    reader = db.open_existing(copy)
    try:
        assert (
            reader.read(lambda c: c.execute("SELECT count(*) FROM transactions").fetchone()[0]) == 0
        )
    finally:
        reader.close()
    assert read_marker(copy / db.FILENAME)["running"] is True


def test_a_start_after_the_loss_was_accepted_is_not_refused_at_the_next_crash(
    tmp_path: Path,
) -> None:
    """The frames after the damage keep the log's salts; the start empties the log so that the
    next crash does not count them as lost transactions."""
    copy = crashed_copy(tmp_path)
    flip_byte_of_frame(wal_of(copy), 3)
    assert reset_state(argparse.Namespace(state_dir=str(copy), accept_log_loss=True)) == 0
    store = db.open_store(copy)
    try:
        store.write(lambda conn: queued(conn, "after", "p-after", 0.0))
        crashed = tmp_path / "crashed-again"
        shutil.copytree(copy, crashed)
    finally:
        store.close()
    reopened = db.open_store(crashed)
    reopened.close()


def test_a_reader_keeping_the_log_from_emptying_leaves_the_marker_running(
    tmp_path: Path,
) -> None:
    store = db.open_store(tmp_path)
    store.write(lambda conn: queued(conn, "t", "p", 0.0))
    reader = db.open_existing(tmp_path)
    try:
        reader.conn.execute("BEGIN")
        reader.conn.execute("SELECT count(*) FROM transactions").fetchone()  # a read snapshot
        store.close()
    finally:
        reader.close()
    assert read_marker(tmp_path / db.FILENAME)["running"] is True
    db.open_store(tmp_path).close()  # the log is whole: the next start checks it and goes on
    assert read_marker(tmp_path / db.FILENAME)["running"] is False
