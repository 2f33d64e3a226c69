"""Rolling backups of the engine database, and ``nmvs-gateway restore-backup``.

A backup is a whole, consistent copy made with SQLite's online backup API from a connection of
its own (the engine keeps writing meanwhile: WAL readers do not block it), written to a
temporary file, synced and renamed into ``<state dir>/backups/`` so that a half-written copy
never looks like a backup. Names carry a sequence number before the UTC time, and order
follows it: a wall clock stepped back must not make the newest backup look the oldest. The engine makes one every ``backup_interval`` (an hour by default)
and keeps the newest ``backup_keep``; :func:`gateway.engine.store.open_store` makes one before
each schema migration, and those are kept until removed by hand.

Restoring loses what happened after the backup. The transactions are gone, and so is the
gateway's memory of the packs it decommissioned since: a dispense of one of them sent again
would be an alert (PCK_22). So ``restore-backup`` records when it ran, and for the 10-day undo
window after that the engine verifies every pack before decommissioning it (an INACTIVE pack is
then answered ``not_active`` without an alert, firewall rule 4).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import shutil
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from gateway.engine.model import StorageFullError, StoreError

DIRECTORY = "backups"
HOURLY = "hourly"
RESTORED_AT = "restored_at"  # meta key: when restore-backup put this database in place


def backup_dir(database: Path) -> Path:
    return database.parent / DIRECTORY


def take_backup(source: sqlite3.Connection, database: Path, kind: str) -> Path:
    """Copy the database ``source`` is connected to into a new backup file; returns it."""
    directory = backup_dir(database)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    temporary = directory / f"{database.stem}.backup.tmp"
    try:
        directory.mkdir(exist_ok=True)
        found = backups(database)
        number = int(found[-1].name.split("-")[1]) + 1 if found else 1
        target = directory / f"{database.stem}-{number:06d}-{stamp}-{kind}.sqlite3"
        copy = sqlite3.connect(temporary)
        try:
            source.backup(copy)
        finally:
            copy.close()
        _sync(temporary)
        os.replace(temporary, target)
        _sync(directory)
    except (OSError, sqlite3.Error) as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (
            getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        )
        error = StorageFullError if full else StoreError
        raise error(f"cannot write a backup in {directory}: {exc}") from exc
    return target


def hourly_backup(database: Path, keep: int) -> Path:
    """One rolling backup from a read-only connection of its own; the oldest beyond ``keep``
    are removed."""
    try:
        source = sqlite3.connect(f"{database.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read {database} for a backup: {exc}") from exc
    try:
        made = take_backup(source, database, HOURLY)
    finally:
        source.close()
    for old in backups(database, HOURLY)[:-keep]:
        with contextlib.suppress(OSError):
            old.unlink()
    return made


def backups(database: Path, kind: str | None = None) -> list[Path]:
    """The backups of ``database``, oldest first (by their sequence number)."""
    pattern = f"{database.stem}-[0-9][0-9][0-9][0-9][0-9][0-9]-*-{kind or '*'}.sqlite3"
    return sorted(backup_dir(database).glob(pattern))


def _sync(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


# --- nmvs-gateway restore-backup ------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Put a backup of the engine database in place (stop the gateway first). The current "
        "files are kept aside under a .kept-<time> suffix. For 10 days after, every pack is "
        "verified before it is decommissioned: those handled after the backup are unknown."
    )
    parser.add_argument(
        "--state-dir", metavar="DIR", required=True, help="the gateway's state directory"
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="FILE",
        type=Path,
        help="the backup to restore (default: the newest in DIR/backups)",
    )


def run(args: argparse.Namespace) -> int:
    from gateway.engine.marker import marker_path, read_marker, write_marker
    from gateway.engine.reset import keep_aside
    from gateway.engine.store import FILENAME

    database = Path(args.state_dir) / FILENAME
    temporary = database.with_name(database.name + ".restoring")
    try:
        source = args.source or _newest(database)
        store_id = _check_backup(source)
        marker = read_marker(database)
        if marker is not None and marker["store_id"] != store_id:
            raise StoreError(
                f"{source} is a backup of another gateway (store {store_id}, this state "
                f"directory's is {marker['store_id']})"
            )
        shutil.copyfile(source, temporary)  # before anything moves: a full disk stops here
        restored = sqlite3.connect(temporary, isolation_level=None)
        try:
            restored.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                (RESTORED_AT, datetime.now(UTC).isoformat()),
            )
        finally:
            restored.close()
        _sync(temporary)
        kept = keep_aside(database, include_marker=False)
        os.replace(temporary, database)
        _sync(database.parent)
        created = None if marker is None else marker.get("created_at")
        write_marker(database, store_id, running=False, created_at=created)
    except (StoreError, StorageFullError, OSError, sqlite3.Error) as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        print(f"nmvs-gateway restore-backup: {exc}", file=sys.stderr)
        return 1
    for path in kept:
        print(f"kept {path}")
    print(
        f"restored {source} as {database} ({marker_path(database).name} updated); for 10 days "
        "every pack is verified before it is decommissioned"
    )
    return 0


def _newest(database: Path) -> Path:
    found = backups(database)
    if not found:
        raise StoreError(f"no backup in {backup_dir(database)}")
    return found[-1]


def _check_backup(path: Path) -> str:
    """The backup's store_id, once SQLite found it whole; StoreError otherwise."""
    if not path.is_file():
        raise StoreError(f"no backup at {path}")
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreError(f"the backup {path} is damaged ({check})")
        row = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not an engine database backup ({exc})") from None
    finally:
        conn.close()
    if row is None:
        raise StoreError(f"{path} is not an engine database backup (no store_id)")
    return str(row[0])
