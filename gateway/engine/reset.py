"""``nmvs-gateway reset-state``: start with an empty engine database on purpose, keeping the old.

The gateway refuses to start when its database is missing, empty or another one than the state
directory's marker names (:mod:`gateway.engine.marker`): starting afresh would make every pack
it ever dispensed look new. When the operator decides to start afresh anyway (the database is
lost and no backup exists), this command moves the database, its WAL and shared-memory files
and the marker aside under a ``.kept-<UTC time>`` suffix — nothing is deleted — so that the next
start creates a new database. Stop the gateway first.
"""

from __future__ import annotations

import argparse
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


def run(args: argparse.Namespace) -> int:
    from gateway.engine.marker import marker_path
    from gateway.engine.store import FILENAME

    database = Path(args.state_dir) / FILENAME
    suffix = datetime.now(UTC).strftime(".kept-%Y%m%dT%H%M%SZ")
    files = [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]
    files.append(marker_path(database))
    kept = []
    try:
        for path in files:
            if path.exists():
                target = path.with_name(path.name + suffix)
                path.rename(target)
                kept.append(target)
    except OSError as exc:
        print(f"nmvs-gateway reset-state: cannot move {path} aside: {exc}", file=sys.stderr)
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
