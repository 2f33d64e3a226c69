"""The state directory's marker: proof that an engine database existed here, so that a database
that vanished, was emptied or was replaced is never silently taken for a first start.

SQLite opens a missing or 0-byte file as an empty database. For the gateway that would be the
worst failure: every pack it ever dispensed would look new, and the next dispense of one would
be an alert. So when the engine creates its database it writes ``engine.sqlite3.marker`` beside
it (atomically: temporary file, fsync, rename, fsync of the directory) holding the database's
random ``store_id``, which the database also keeps in its ``meta`` table. At every start:

- no marker, no database (or an empty file): a first start;
- a marker, but no database, an empty file, or a database with another ``store_id``: refused
  (the daemon exits 78 with one line) until the operator restores a backup or starts afresh on
  purpose with ``nmvs-gateway reset-state``, which keeps the old file;
- a database without a marker (a gateway from before the marker): the marker is written.

The marker also says whether the engine is ``running``: set once the database is open, cleared
after a clean close (once a checkpoint emptied the WAL). A start that finds it set follows an
unclean stop (crash, power cut, SIGKILL), and then the WAL must be there and whole
(:mod:`gateway.engine.wal`): SQLite would drop a damaged or deleted log's transactions without
a word. (A log missing together with its ``-shm`` file is what SQLite's own clean close leaves,
e.g. when the marker could not be updated on a full disk: accepted. Deleting both by hand after
a crash is therefore not detected.) Refused likewise until the operator restores a backup or accepts the loss
(``nmvs-gateway reset-state --accept-log-loss``).
"""

from __future__ import annotations

import errno
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.engine.model import StorageFullError, StoreError
from gateway.engine.wal import wal_damage

SUFFIX = ".marker"


def marker_path(database: Path) -> Path:
    return database.with_name(database.name + SUFFIX)


def read_marker(database: Path) -> dict[str, Any] | None:
    """The marker's content, or None when there is none; StoreError when it is unreadable."""
    path = marker_path(database)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"the marker {path} cannot be read ({exc}); restore it with the database, or start "
            f"afresh with nmvs-gateway reset-state --state-dir {database.parent}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("store_id"), str):
        raise StoreError(
            f"the marker {path} does not hold a store_id; restore it with the database, or start "
            f"afresh with nmvs-gateway reset-state --state-dir {database.parent}"
        )
    return data


def refuse_lost_database(database: Path, marker: dict[str, Any] | None) -> None:
    """StoreError when the marker says a database existed here and it is gone or empty."""
    if marker is None:
        return
    try:
        size = database.stat().st_size
    except FileNotFoundError:
        size = None
    if size:
        return
    state = "missing" if size is None else "empty (0 bytes)"
    raise StoreError(
        f"the engine database {database} is {state}, but this state directory had one (store "
        f"{marker['store_id']}, created {marker.get('created_at', '?')}): restore it from a "
        f"backup; to start with an empty database on purpose, run nmvs-gateway reset-state "
        f"--state-dir {database.parent} (unsent transactions must then be checked in the NMVS "
        "portal)"
    )


def refuse_damaged_log(database: Path, marker: dict[str, Any] | None) -> None:
    """StoreError when, after an unclean stop, the WAL is missing or damaged mid-way."""
    if marker is None or not marker.get("running"):
        return
    wal = database.with_name(database.name + "-wal")
    if not wal.exists():
        # SQLite's last clean close deletes both; a close whose marker update failed (a full
        # disk) leaves neither, a log deleted by hand leaves the shared-memory file
        if not database.with_name(database.name + "-shm").exists():
            return
        problem = "is missing after an unclean stop"
    else:
        damage = wal_damage(wal)
        if damage is None:
            return
        problem = f"is damaged: {damage}"
    raise StoreError(
        f"the write-ahead log {wal} {problem}; the latest transactions would be lost without "
        f"a trace: restore a backup (nmvs-gateway restore-backup --state-dir {database.parent}), "
        "or keep what SQLite can still read with nmvs-gateway reset-state --accept-log-loss "
        f"--state-dir {database.parent} (then check the lost ones in the NMVS portal)"
    )


def check_store_id(database: Path, marker: dict[str, Any] | None, store_id: str) -> None:
    """StoreError when the database is not the one the marker names."""
    if marker is not None and marker["store_id"] != store_id:
        raise StoreError(
            f"the engine database {database} (store {store_id}) is not this state directory's "
            f"(store {marker['store_id']}): restore the right file, or start with it on purpose "
            f"by running nmvs-gateway reset-state --state-dir {database.parent} first"
        )


def write_marker(
    database: Path, store_id: str, *, running: bool, created_at: str | None = None
) -> None:
    """Write the marker atomically (``created_at``: kept from the previous one, else now)."""
    path = marker_path(database)
    body = json.dumps(
        {
            "store_id": store_id,
            "created_at": created_at or datetime.now(UTC).isoformat(timespec="seconds"),
            "running": running,
        }
    )
    temporary = path.with_name(path.name + ".tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(body + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFullError(f"the state directory is full: cannot write {path}") from exc
        raise StoreError(f"cannot write the marker {path}: {exc}") from exc
