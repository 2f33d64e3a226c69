"""``nmvs-gateway reset-state``: start afresh on purpose, or accept a damaged log's loss.

The gateway refuses to start when its database is missing, empty or another one than the state
directory's marker names (:mod:`gateway.engine.marker`): starting afresh would make every pack
it ever dispensed look new. When the operator decides to start afresh anyway (the database is
lost and no backup exists), this command moves the database, its WAL and shared-memory files
and the marker aside under a ``.kept-<UTC time>`` suffix — nothing is deleted — so that the next
start creates a new database.

After an unclean stop with a WAL that is missing or damaged mid-way, the gateway refuses too.
``--accept-log-loss`` keeps a copy of the log aside and lets the next start go on with what
SQLite can still read (the transactions after the damage are lost). Stop the gateway first.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        required=True,
        help="the gateway's state directory (holds engine.sqlite3)",
    )
    parser.add_argument(
        "--accept-log-loss",
        action="store_true",
        help="keep the database; go on without the transactions a missing or damaged "
        "write-ahead log held (a copy of the log is kept aside)",
    )


def keep_aside(database: Path, *, include_marker: bool) -> list[Path]:
    """Move the database, its WAL and shared memory (and the marker) aside; returns where."""
    from gateway.engine.marker import marker_path

    suffix = datetime.now(UTC).strftime(".kept-%Y%m%dT%H%M%SZ")
    files = [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]
    if include_marker:
        files.append(marker_path(database))
    kept = []
    for path in files:
        if path.exists():
            target = path.with_name(path.name + suffix)
            path.rename(target)
            kept.append(target)
    return kept


def run(args: argparse.Namespace) -> int:
    from gateway.engine.store import FILENAME

    database = Path(args.state_dir) / FILENAME
    try:
        if args.accept_log_loss:
            return _accept_log_loss(database)
        kept = keep_aside(database, include_marker=True)
    except OSError as exc:
        print(f"nmvs-gateway reset-state: {exc}", file=sys.stderr)
        return 1
    if not kept:
        print(f"nothing to reset in {args.state_dir}: the next start creates the database")
        return 0
    for target in kept:
        print(f"kept {target}")
    print(
        "the next start creates an empty engine database: transactions in the kept file that "
        "were not sent must be checked in the NMVS portal"
    )
    return 0


def _accept_log_loss(database: Path) -> int:
    from gateway.engine.marker import read_marker, write_marker
    from gateway.engine.model import StorageFullError, StoreError

    try:
        marker = read_marker(database)
    except (StoreError, StorageFullError) as exc:
        print(f"nmvs-gateway reset-state: {exc}", file=sys.stderr)
        return 1
    if marker is None or not marker.get("running"):
        print(f"nothing to accept: the last stop of {database} was clean")
        return 0
    wal = database.with_name(database.name + "-wal")
    try:
        if wal.exists():
            copy = wal.with_name(wal.name + datetime.now(UTC).strftime(".kept-%Y%m%dT%H%M%SZ"))
            shutil.copyfile(wal, copy)
            print(f"kept a copy of the log as {copy}")
        write_marker(
            database, marker["store_id"], running=False, created_at=marker.get("created_at")
        )
    except (StoreError, StorageFullError, OSError) as exc:
        print(f"nmvs-gateway reset-state: {exc}", file=sys.stderr)
        return 1
    print(
        "the next start goes on with what the database and the readable part of its log hold: "
        "check the last transactions before the stop in the NMVS portal"
    )
    return 0
