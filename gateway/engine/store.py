"""The engine's SQLite file: schema, migrations, integrity check and every query.

One file (``engine.sqlite3`` in the state directory), WAL journal, ``synchronous=FULL`` set on
every connection. Writes go through :meth:`Store.write` (``BEGIN IMMEDIATE`` … ``COMMIT``).
Functions here are synchronous and run on the engine's single database thread; the report,
status and self-test commands open their own read-only connection with :func:`open_existing`.

Tables
- ``scans``: every physical scan (repeat scans point at the first with ``collapsed_into``).
- ``transactions``: the durable queue and the record of every request, keyed by its
  idempotency key ``id``; ``seq`` is the acceptance order.
- ``attempts``: every NMVS call, written *before* it is sent (write-ahead: its ClientTrxId),
  completed with the answer (return code, alert, Hub code, state) or the error.
- ``ledger``: per pack, what this gateway last saw and the decommission it made.
- ``firewall``: one row per request the firewall answered instead of the NMVS.
- ``events``: the ordered outbox the MQTT relay publishes and acknowledges.
- ``meta``: ``store_id``, the random id the state directory's marker names.
- ``layout_beliefs``: per ``layout = "auto"`` scanner, what its scans showed about its keyboard
  country (:class:`gateway.codes.layout_belief.LayoutBelief`), written with the scan that changed it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from gateway.engine.backup import RESTORED_AT, take_backup
from gateway.engine.marker import (
    check_store_id,
    read_marker,
    refuse_damaged_log,
    refuse_lost_database,
    write_marker,
)
from gateway.engine.model import FIREWALL_RULES, StorageFullError, StoreError
from gateway.engine.rules import LedgerEntry
from gateway.vocabulary import Operation

T = TypeVar("T")
log = logging.getLogger(__name__)

FILENAME = "engine.sqlite3"
BUSY_TIMEOUT_S = 30
CHECKPOINT_WAIT_MS = 1000
NO_ROOM_BYTES = 1 << 20  # less free than this beside a failing open: the disk is full

# Each entry migrates from version i to i + 1; never edit a released entry, append one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE scans(
        id TEXT PRIMARY KEY,
        scanner_id TEXT NOT NULL,
        counter TEXT,
        at REAL NOT NULL,
        ok INTEGER NOT NULL,
        text TEXT NOT NULL,
        pack_key TEXT,
        pack TEXT,
        problems TEXT NOT NULL,
        collapsed_into TEXT,
        trx_id TEXT
    );
    CREATE INDEX scans_repeat ON scans(scanner_id, pack_key, at);
    CREATE TABLE transactions(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        op TEXT NOT NULL,
        pack_key TEXT,
        pack TEXT,
        scan_id TEXT,
        scanner_id TEXT,
        counter TEXT,
        user TEXT,
        status TEXT NOT NULL,          -- queued | sending | done | rejected | failed
        reconcile INTEGER NOT NULL DEFAULT 0,
        outcome TEXT,
        problems TEXT NOT NULL DEFAULT '[]',
        collapsed_into INTEGER,        -- seq of the transaction that answers this one
        client_trx_id TEXT,
        resend_same_id INTEGER NOT NULL DEFAULT 0,  -- last attempt certainly not sent
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        nmvs TEXT,
        accepted_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX trx_pack ON transactions(pack_key, seq);
    CREATE INDEX trx_queue ON transactions(seq, next_attempt_at)
        WHERE status = 'queued' AND collapsed_into IS NULL;
    CREATE INDEX trx_due ON transactions(next_attempt_at)
        WHERE status = 'queued' AND collapsed_into IS NULL;
    CREATE INDEX trx_open ON transactions(accepted_at)
        WHERE status IN ('queued', 'sending') AND collapsed_into IS NULL;
    CREATE INDEX trx_followers ON transactions(collapsed_into) WHERE collapsed_into IS NOT NULL;
    CREATE TABLE attempts(
        id INTEGER PRIMARY KEY,
        trx_seq INTEGER NOT NULL,
        client_trx_id TEXT NOT NULL,
        op TEXT NOT NULL,
        purpose TEXT NOT NULL,         -- send | reconcile
        scanner_id TEXT,
        started_at REAL NOT NULL,
        finished_at REAL,
        return_code TEXT,
        alert INTEGER,
        hub_code TEXT,
        state TEXT,
        reasons TEXT,
        nmvs_trx_id TEXT,
        error TEXT,
        latency_ms REAL
    );
    CREATE INDEX attempts_trx ON attempts(trx_seq);
    CREATE INDEX attempts_started ON attempts(started_at);
    CREATE TABLE ledger(
        pack_key TEXT PRIMARY KEY,
        observed_state TEXT,
        observed_reasons TEXT NOT NULL DEFAULT '[]',
        observed_at REAL,
        change_op TEXT,
        change_user TEXT,
        change_client_trx_id TEXT,
        change_nmvs_trx_id TEXT,
        change_at REAL,
        change_proof TEXT,
        updated_at REAL NOT NULL
    );
    CREATE TABLE firewall(
        id INTEGER PRIMARY KEY,
        rule TEXT NOT NULL,
        at REAL NOT NULL,
        trx_id TEXT,
        scan_id TEXT,
        scanner_id TEXT
    );
    CREATE INDEX firewall_at ON firewall(at);
    CREATE TABLE events(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        acked_at REAL
    );
    CREATE INDEX events_pending ON events(id) WHERE acked_at IS NULL;
    """,
    """
    ALTER TABLE transactions ADD COLUMN bulk_id INTEGER;
    ALTER TABLE transactions ADD COLUMN bulk_exempt INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE bulks(
        id INTEGER PRIMARY KEY,
        op TEXT NOT NULL,
        client_trx_id TEXT NOT NULL,
        nmvs_trx_id TEXT,
        state TEXT NOT NULL,           -- submitting | submitted | done | failed
        packs INTEGER NOT NULL,
        created_at REAL NOT NULL,
        finished_at REAL
    );
    """,
    """
    CREATE TABLE layout_beliefs(
        scanner_id TEXT PRIMARY KEY,
        belief TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta(key, value) VALUES ('store_id', lower(hex(randomblob(16))));
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def _connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    # mode=ro: never writes (nor migrates, nor sets the journal mode); WAL lets it read beside
    # the running gateway
    target = f"{path.absolute().as_uri()}?mode=ro" if read_only else str(path)
    try:
        conn = sqlite3.connect(
            target,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_S,
            uri=read_only,
        )
        conn.row_factory = sqlite3.Row
        if not read_only:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.OperationalError as exc:
        if is_storage_full(exc) or _no_room(path.parent):  # SQLite says "disk I/O error" when
            # it cannot create its -wal or -shm file on a full filesystem
            raise StorageFullError(
                f"the state directory {path.parent} is full: cannot open {path} ({exc})"
            ) from exc
        raise StoreError(
            f"cannot open the engine database {path} ({exc}): check the state directory's permissions and free space"
        ) from exc
    except sqlite3.DatabaseError as exc:
        raise StoreError(_corrupt(path, exc)) from exc
    return conn


def _corrupt(path: Path, detail: object) -> str:
    one_line = " ".join(str(detail).split())  # integrity-check output may span lines
    return (
        f"the engine database {path} is corrupt or not a database ({one_line}); move it aside "
        "and restore a backup"
    )


def open_store(state_dir: Path | str, read_only: bool = False) -> Store:
    """Open (creating and migrating if needed, unless ``read_only``) the engine database in
    ``state_dir``; a database the marker says existed and is gone, empty or another one is
    refused (:mod:`gateway.engine.marker`)."""
    directory = Path(state_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the state directory {directory}: {exc}") from exc
    path = directory / FILENAME
    found = read_marker(path)
    refuse_lost_database(path, found)
    if not read_only:  # a reader beside the running daemon sees its live log
        refuse_damaged_log(path, found)
    conn = _connect(path, read_only)
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
        if [tuple(r) for r in rows] != [("ok",)]:
            detail = "; ".join(str(r[0]) for r in rows[:3])
            raise StoreError(_corrupt(path, detail))
        _migrate(conn, path, read_only)
        if read_only:
            return Store(conn, path, None)
        store_id = str(conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()[0])
        check_store_id(path, found, store_id)
        # The log replayed, empty it: frames left after a damaged or torn one keep the
        # generation's salts and would be taken for lost transactions after the next crash.
        checkpoint(conn)
        created_at = None if found is None else found.get("created_at")
        write_marker(path, store_id, running=True, created_at=created_at)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_storage_full(exc):  # a migration, or the WAL replayed on a full filesystem
            raise StorageFullError(f"the state directory {directory} is full ({exc})") from exc
        raise StoreError(_corrupt(path, exc)) from exc
    except (StoreError, StorageFullError):
        conn.close()
        raise
    return Store(conn, path, (store_id, created_at))


def open_existing(state_dir: Path | str) -> Store:
    """Open the database of a gateway that has run, read-only (report, status, self-test): run
    as root, they must leave nothing the service's user cannot open."""
    path = Path(state_dir) / FILENAME
    if not path.is_file():
        raise StoreError(
            f"no engine database at {path}: give the gateway's state directory with --state-dir"
        )
    return open_store(state_dir, read_only=True)


def _migrate(conn: sqlite3.Connection, path: Path, read_only: bool = False) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the engine database {path} has schema version {version}, newer than this gateway "
            f"understands ({SCHEMA_VERSION}); upgrade the gateway"
        )
    if read_only and version < SCHEMA_VERSION:
        raise StoreError(
            f"the engine database {path} has schema version {version}, older than this gateway "
            f"reads ({SCHEMA_VERSION}); start the gateway once to upgrade it"
        )
    if 0 < version < SCHEMA_VERSION:  # an upgrade: keep the database as it was first
        take_backup(conn, path, f"v{version}")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[target - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _no_room(directory: Path) -> bool:
    try:
        return shutil.disk_usage(directory).free < NO_ROOM_BYTES
    except OSError:
        return False


def checkpoint(conn: sqlite3.Connection) -> bool:
    """Copy the WAL into the database and empty it; False when a reader kept it from
    finishing (or the disk is full) within a second."""
    conn.execute(f"PRAGMA busy_timeout = {CHECKPOINT_WAIT_MS}")
    try:
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    except sqlite3.OperationalError:
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
    return int(busy) == 0


def is_storage_full(exc: BaseException) -> bool:
    """SQLite's "database or disk is full" (SQLITE_FULL), whatever the cause: the filesystem,
    a quota, or ``max_page_count``."""
    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "is full" in str(exc)
    )


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def pack_key_text(key: tuple[str, str, str]) -> str:
    # the GS1/IFA serial charset excludes control characters, so \x1f cannot collide
    return "\x1f".join(key)


class Store:
    """One connection. Not thread-safe: the engine uses it from one thread only."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, marker: tuple[str, str | None] | None
    ) -> None:
        self.conn = conn
        self.path = path
        self._marker = marker  # (store_id, created_at) of a writer, None for a reader

    def close(self) -> None:
        """Close; a writer empties the WAL into the database first and then clears the
        marker's ``running`` (a crash in between only means a WAL check at the next start)."""
        try:
            # a reader (status, a backup) may keep the log from emptying: then it stays
            # "running", and the next start checks a log that is whole
            if self._marker is not None and checkpoint(self.conn):
                store_id, created_at = self._marker
                try:
                    write_marker(self.path, store_id, running=False, created_at=created_at)
                except (StoreError, StorageFullError) as exc:  # see refuse_damaged_log
                    log.warning("%s: the next start may ask to accept the log's loss", exc)
        finally:
            self.conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._damage_stops():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                with contextlib.suppress(sqlite3.DatabaseError):  # the error says more
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def _damage_stops(self) -> Iterator[None]:
        """A damaged file found while running ("database disk image is malformed") is a
        StoreError: the daemon stops with one line (exit 78), it never runs on altered rows."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:  # constraint, full disk, busy: not damage
                raise
            raise StoreError(_corrupt(self.path, exc)) from exc

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one write transaction (committed and synced before returning)."""
        with self._transaction() as conn:
            return fn(conn)

    def write_batch(self, fns: list[Callable[[sqlite3.Connection], Any]]) -> list[tuple[bool, Any]]:
        """Run each ``fn`` in its own savepoint of one transaction; one commit for all.

        Returns ``(True, result)`` or ``(False, exception)`` per function, in order.
        """
        outcomes: list[tuple[bool, Any]] = []
        with self._transaction() as conn:
            for fn in fns:
                conn.execute("SAVEPOINT one")
                try:
                    outcomes.append((True, fn(conn)))
                except Exception as exc:
                    # damage, or SQLite rolled the whole transaction back itself (it does on a
                    # full disk): the whole batch fails
                    if type(exc) is sqlite3.DatabaseError or not conn.in_transaction:
                        raise
                    conn.execute("ROLLBACK TO one")
                    outcomes.append((False, exc))
                conn.execute("RELEASE one")
        return outcomes

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._damage_stops():
            return fn(self.conn)


# --- layout beliefs ----------------------------------------------------------------------


def save_layout_belief(
    conn: sqlite3.Connection, scanner_id: str, belief: Mapping[str, Any], now: float
) -> None:
    conn.execute(
        """INSERT INTO layout_beliefs(scanner_id, belief, updated_at) VALUES (?, ?, ?)
           ON CONFLICT(scanner_id) DO UPDATE SET belief = excluded.belief,
           updated_at = excluded.updated_at""",
        (scanner_id, dumps(belief), now),
    )


def layout_beliefs(conn: sqlite3.Connection) -> dict[str, Any]:
    """Scanner id → the stored belief (as JSON data; unreadable rows are left out)."""
    found = {}
    for row in conn.execute("SELECT scanner_id, belief FROM layout_beliefs"):
        try:
            found[row["scanner_id"]] = json.loads(row["belief"])
        except ValueError:
            continue
    return found


def read_layout_beliefs(state_dir: Path | str) -> dict[str, Any]:
    """The stored beliefs of a gateway that has run (read-only; StoreError when there is no
    usable database), for ``scanners`` and ``selftest``."""
    store = open_existing(state_dir)
    try:
        return store.read(layout_beliefs)
    finally:
        store.close()


# --- ledger -------------------------------------------------------------------------------


def load_ledger(conn: sqlite3.Connection, pack_key: str) -> LedgerEntry:
    row = conn.execute("SELECT * FROM ledger WHERE pack_key = ?", (pack_key,)).fetchone()
    if row is None:
        return LedgerEntry()
    return LedgerEntry(
        observed_state=row["observed_state"],
        observed_reasons=tuple(json.loads(row["observed_reasons"])),
        observed_at=row["observed_at"],
        change_op=None if row["change_op"] is None else Operation(row["change_op"]),
        change_user=row["change_user"],
        change_client_trx_id=row["change_client_trx_id"],
        change_nmvs_trx_id=row["change_nmvs_trx_id"],
        change_at=row["change_at"],
        change_proof=row["change_proof"],
    )


def save_ledger(conn: sqlite3.Connection, pack_key: str, entry: LedgerEntry, now: float) -> None:
    conn.execute(
        """INSERT INTO ledger(pack_key, observed_state, observed_reasons, observed_at, change_op,
               change_user, change_client_trx_id, change_nmvs_trx_id, change_at, change_proof,
               updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(pack_key) DO UPDATE SET
               observed_state = excluded.observed_state,
               observed_reasons = excluded.observed_reasons,
               observed_at = excluded.observed_at,
               change_op = excluded.change_op,
               change_user = excluded.change_user,
               change_client_trx_id = excluded.change_client_trx_id,
               change_nmvs_trx_id = excluded.change_nmvs_trx_id,
               change_at = excluded.change_at,
               change_proof = excluded.change_proof,
               updated_at = excluded.updated_at""",
        (
            pack_key,
            entry.observed_state,
            dumps(list(entry.observed_reasons)),
            entry.observed_at,
            None if entry.change_op is None else entry.change_op.value,
            entry.change_user,
            entry.change_client_trx_id,
            entry.change_nmvs_trx_id,
            entry.change_at,
            entry.change_proof,
            now,
        ),
    )


# --- outbox and firewall --------------------------------------------------------------------


def append_event(conn: sqlite3.Connection, kind: str, payload: dict[str, Any], now: float) -> None:
    conn.execute(
        "INSERT INTO events(kind, payload, created_at) VALUES (?, ?, ?)",
        (kind, dumps(payload), now),
    )


def firewall_hit(
    conn: sqlite3.Connection,
    rule: str,
    now: float,
    *,
    trx_id: str | None = None,
    scan_id: str | None = None,
    scanner_id: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO firewall(rule, at, trx_id, scan_id, scanner_id) VALUES (?, ?, ?, ?, ?)",
        (rule, now, trx_id, scan_id, scanner_id),
    )


# --- transactions ----------------------------------------------------------------------------

# set operations that have a bulk form (G125, G135, …); stolen and undos go single
BULK_OPS = frozenset({"dispense", "destroy", "export", "sample", "free_sample", "lock"})


def scan_by_id(conn: sqlite3.Connection, scan_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM scans WHERE id = ?", (scan_id,)
    ).fetchone()
    return row


def trx_by_id(conn: sqlite3.Connection, trx_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM transactions WHERE id = ?", (trx_id,)
    ).fetchone()
    return row


def trx_by_seq(conn: sqlite3.Connection, seq: int) -> sqlite3.Row:
    row: sqlite3.Row = conn.execute("SELECT * FROM transactions WHERE seq = ?", (seq,)).fetchone()
    return row


def has_open_before(conn: sqlite3.Connection, pack_key: str, seq: int | None = None) -> bool:
    """Is an earlier transaction of this pack still unanswered (per-pack ordering)?"""
    row = conn.execute(
        """SELECT 1 FROM transactions WHERE pack_key = ? AND status IN ('queued', 'sending')
           AND collapsed_into IS NULL AND (? IS NULL OR seq < ?) LIMIT 1""",
        (pack_key, seq, seq),
    ).fetchone()
    return row is not None


def run_scope(conn: sqlite3.Connection, pack_key: str, op: Operation) -> str:
    """The pack's current run for ``op`` (see :func:`gateway.engine.rules.derive_key`)."""
    row = conn.execute(
        """SELECT max(seq) FROM transactions
           WHERE pack_key = ? AND op != ? AND op != 'verify'""",
        (pack_key, op.value),
    ).fetchone()
    return f"run{row[0] or 0}"


def recent_verify(conn: sqlite3.Connection, pack_key: str, since: float) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        """SELECT * FROM transactions
           WHERE pack_key = ? AND op = 'verify' AND accepted_at >= ? AND collapsed_into IS NULL
             AND status IN ('queued', 'sending', 'done')
           ORDER BY seq DESC LIMIT 1""",
        (pack_key, since),
    ).fetchone()
    return row


def insert_trx(conn: sqlite3.Connection, fields: dict[str, Any]) -> int:
    names = ", ".join(fields)
    marks = ", ".join("?" for _ in fields)
    cursor = conn.execute(
        f"INSERT INTO transactions({names}) VALUES ({marks})",  # noqa: S608 - names are ours
        tuple(fields.values()),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def update_trx(conn: sqlite3.Connection, seq: int, **fields: Any) -> None:
    sets = ", ".join(f"{name} = ?" for name in fields)
    conn.execute(
        f"UPDATE transactions SET {sets} WHERE seq = ?",  # noqa: S608 - names are ours
        (*fields.values(), seq),
    )


def followers(conn: sqlite3.Connection, seq: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM transactions WHERE collapsed_into = ? AND status IN ('queued', 'sending')",
        (seq,),
    ).fetchall()


def claim_due(conn: sqlite3.Connection, now: float, limit: int) -> list[sqlite3.Row]:
    """Claim up to ``limit`` due transactions, each the oldest open one of its pack."""
    rows: list[sqlite3.Row] = conn.execute(
        """UPDATE transactions SET status = 'sending', updated_at = ?
           WHERE seq IN (
               SELECT t.seq FROM transactions t
               WHERE t.status = 'queued' AND t.collapsed_into IS NULL AND t.next_attempt_at <= ?
                 AND NOT EXISTS (
                     SELECT 1 FROM transactions o
                     WHERE o.pack_key = t.pack_key AND o.seq < t.seq
                       AND o.status IN ('queued', 'sending') AND o.collapsed_into IS NULL)
               ORDER BY t.seq LIMIT ?)
           RETURNING *""",
        (now, now, limit),
    ).fetchall()
    rows.sort(key=lambda r: int(r["seq"]))
    return rows


def release_not_sent(conn: sqlite3.Connection, now: float) -> None:
    """The link is back: transactions held back because they could not be sent are due now."""
    conn.execute(
        """UPDATE transactions SET next_attempt_at = ?
           WHERE status = 'queued' AND last_error LIKE 'not_sent:%'""",
        (now,),
    )


def due_count(conn: sqlite3.Connection, now: float) -> int:
    row = conn.execute(
        """SELECT count(*) FROM transactions
           WHERE status = 'queued' AND collapsed_into IS NULL AND next_attempt_at <= ?""",
        (now,),
    ).fetchone()
    return int(row[0])


def bulk_candidates(conn: sqlite3.Connection, now: float, limit: int) -> list[sqlite3.Row]:
    """Due decommissions (not undos) that head their pack's queue and may go in a bulk."""
    rows: list[sqlite3.Row] = conn.execute(
        """SELECT * FROM transactions t
           WHERE t.status = 'queued' AND t.collapsed_into IS NULL AND t.next_attempt_at <= ?
             AND t.reconcile = 0 AND t.bulk_exempt = 0
             AND t.op IN (SELECT value FROM json_each(?))
             AND NOT EXISTS (
                 SELECT 1 FROM transactions o
                 WHERE o.pack_key = t.pack_key AND o.seq < t.seq
                   AND o.status IN ('queued', 'sending') AND o.collapsed_into IS NULL)
           ORDER BY t.seq LIMIT ?""",
        (now, dumps(sorted(BULK_OPS)), limit),
    ).fetchall()
    return rows


def next_due_at(conn: sqlite3.Connection) -> float | None:
    """When the next claimable transaction is due: the earliest among those heading their
    pack's queue (a later one that is due must still wait for its pack's head)."""
    row = conn.execute(
        """SELECT t.next_attempt_at FROM transactions t
           WHERE t.status = 'queued' AND t.collapsed_into IS NULL
             AND NOT EXISTS (
                 SELECT 1 FROM transactions o
                 WHERE o.pack_key = t.pack_key AND o.seq < t.seq
                   AND o.status IN ('queued', 'sending') AND o.collapsed_into IS NULL)
           ORDER BY t.next_attempt_at LIMIT 1"""
    ).fetchone()
    return None if row is None else float(row[0])


def start_attempt(
    conn: sqlite3.Connection,
    trx: sqlite3.Row,
    op: Operation,
    purpose: str,
    client_trx_id: str,
    now: float,
) -> int:
    cursor = conn.execute(
        """INSERT INTO attempts(trx_seq, client_trx_id, op, purpose, scanner_id, started_at)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (trx["seq"], client_trx_id, op.value, purpose, trx["scanner_id"], now),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def attempt_started_at(conn: sqlite3.Connection, trx_seq: int) -> float:
    """Start of the last *send* attempt of a transaction (the one being reconciled)."""
    row = conn.execute(
        "SELECT max(started_at) FROM attempts WHERE trx_seq = ? AND purpose = 'send'", (trx_seq,)
    ).fetchone()
    return float(row[0])


def finish_attempt(conn: sqlite3.Connection, attempt_id: int, **fields: Any) -> None:
    sets = ", ".join(f"{name} = ?" for name in fields)
    conn.execute(
        f"UPDATE attempts SET {sets} WHERE id = ?",  # noqa: S608 - names are ours
        (*fields.values(), attempt_id),
    )


def insert_bulk(
    conn: sqlite3.Connection, op: str, client_trx_id: str, packs: int, now: float
) -> int:
    cursor = conn.execute(
        """INSERT INTO bulks(op, client_trx_id, state, packs, created_at)
           VALUES (?, ?, 'submitting', ?, ?)""",
        (op, client_trx_id, packs, now),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def bulk_submitted(conn: sqlite3.Connection, bulk_id: int, nmvs_trx_id: str) -> None:
    conn.execute(
        "UPDATE bulks SET state = 'submitted', nmvs_trx_id = ? WHERE id = ?",
        (nmvs_trx_id, bulk_id),
    )


def bulk_finished(conn: sqlite3.Connection, bulk_id: int, state: str, now: float) -> None:
    conn.execute("UPDATE bulks SET state = ?, finished_at = ? WHERE id = ?", (state, now, bulk_id))


def delay_reconcile(conn: sqlite3.Connection, seq: int, at: float) -> None:
    conn.execute(
        """UPDATE transactions SET next_attempt_at = max(next_attempt_at, ?)
           WHERE seq = ? AND status = 'queued' AND reconcile = 1""",
        (at, seq),
    )


# a transaction ``t`` still sending as a member of an acknowledged bulk, its attempt open
_RESUMABLE_MEMBER = """SELECT 1 FROM bulks b JOIN attempts a ON a.trx_seq = t.seq
      AND a.finished_at IS NULL AND a.purpose = 'send' AND a.client_trx_id = b.client_trx_id
    WHERE b.id = t.bulk_id AND b.state = 'submitted'"""


def resumable_bulks(conn: sqlite3.Connection) -> list[tuple[sqlite3.Row, list[sqlite3.Row]]]:
    """Bulks the NMVS acknowledged whose result was never applied (a stop or crash while
    polling), each with its member transactions joined to their open attempt (``attempt_id``)."""
    bulks = conn.execute("SELECT * FROM bulks WHERE state = 'submitted' ORDER BY id").fetchall()
    return [
        (
            bulk,
            conn.execute(
                f"""SELECT t.*, a.id AS attempt_id FROM transactions t
                   JOIN attempts a ON a.trx_seq = t.seq AND a.finished_at IS NULL
                     AND a.purpose = 'send' AND a.client_trx_id = ?
                   WHERE t.bulk_id = ? AND t.status = 'sending'
                     AND EXISTS ({_RESUMABLE_MEMBER}) ORDER BY t.seq""",  # noqa: S608
                (bulk["client_trx_id"], bulk["id"]),
            ).fetchall(),
        )
        for bulk in bulks
    ]


NMVS_OFFSET = "nmvs_offset"  # NMVS time − this gateway's wall clock, from the last dated answer
SCHEDULE_SHIFT = "due_minus_wall"  # the engine's scheduling time − the wall clock, while running


def meta_number(conn: sqlite3.Connection, key: str) -> float | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else float(row[0])


def save_meta_number(conn: sqlite3.Connection, key: str, value: float) -> None:
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, repr(value)))


def rebase_schedule(conn: sqlite3.Connection) -> float:
    """At open: move stored scheduled times from the last run's scheduling time into the new
    one, which starts from the wall clock. A wall clock stepped while the last run went on made
    the two differ; without this a reconcile would fall due early (or late) by the step.
    Returns the shift applied."""
    shift = meta_number(conn, SCHEDULE_SHIFT) or 0.0
    if shift:
        conn.execute(
            "UPDATE transactions SET next_attempt_at = next_attempt_at - ? WHERE status = 'queued'",
            (shift,),
        )
        save_meta_number(conn, SCHEDULE_SHIFT, 0.0)
    return shift


def restored_at(conn: sqlite3.Connection) -> float | None:
    """When ``restore-backup`` put this database in place (None: never)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (RESTORED_AT,)).fetchone()
    return None if row is None else datetime.fromisoformat(row[0]).timestamp()


def reconcile_verifies(conn: sqlite3.Connection, trx_seq: int) -> int:
    """Reconcile verifies that showed a pack state since the transaction's last send."""
    row = conn.execute(
        """SELECT count(*) FROM attempts WHERE trx_seq = ? AND purpose = 'reconcile'
             AND state IS NOT NULL
             AND id > (SELECT coalesce(max(id), 0) FROM attempts
                       WHERE trx_seq = ? AND purpose = 'send')""",
        (trx_seq, trx_seq),
    ).fetchone()
    return int(row[0])


def recover(
    conn: sqlite3.Connection,
    now: float,
    reconcile_delay: float,
    bulk_delay: float,
    longest_delay: float,
) -> int:
    """At start: transactions a crash left ``sending`` go back to the queue.

    A state change whose last attempt started but never finished may have reached the NMVS:
    it is marked for reconcile (verify first), never re-sent blindly. Returns how many.

    Scheduled times are in the engine's monotonic scheduling time, which restarts from the wall
    clock at each open: a wall clock stepped back while the gateway was stopped would leave
    them far ahead, so none is left later than ``longest_delay`` from ``now``.
    """
    conn.execute(
        """UPDATE transactions SET next_attempt_at = ?
           WHERE status = 'queued' AND next_attempt_at > ?""",
        (now + longest_delay, now + longest_delay),
    )
    # A bulk cut short while submitting: its packs are reconciled one by one like any
    # interrupted send. One the NMVS acknowledged keeps its packs sending: its result is asked
    # for again with the stored NMVS id (resumable_bulks).
    conn.execute(
        "UPDATE bulks SET state = 'interrupted', finished_at = ? WHERE state = 'submitting'",
        (now,),
    )
    rows = conn.execute(
        f"""SELECT * FROM transactions t WHERE t.status = 'sending'
              AND NOT EXISTS ({_RESUMABLE_MEMBER})"""  # noqa: S608 - our own SQL
    ).fetchall()
    conn.execute(
        f"""UPDATE bulks SET state = 'interrupted', finished_at = ? WHERE state = 'submitted'
              AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.bulk_id = bulks.id
                              AND t.status = 'sending' AND EXISTS ({_RESUMABLE_MEMBER}))""",  # noqa: S608
        (now,),
    )
    for row in rows:
        unfinished = conn.execute(
            """SELECT purpose FROM attempts WHERE trx_seq = ? AND finished_at IS NULL
               ORDER BY id DESC LIMIT 1""",
            (row["seq"],),
        ).fetchone()
        conn.execute(
            "UPDATE attempts SET finished_at = ?, error = 'interrupted' WHERE trx_seq = ? AND finished_at IS NULL",
            (now, row["seq"]),
        )
        reconcile = bool(row["reconcile"])
        # a cut-short send may have reached the NMVS; a cut-short precheck verify changed nothing
        if (
            unfinished is not None
            and unfinished["purpose"] != "precheck"
            and Operation(row["op"]).changes_state
        ):
            reconcile = True
        delay = reconcile_delay if reconcile else 0.0
        if reconcile and row["bulk_id"] is not None and unfinished is not None:
            delay = bulk_delay  # a bulk may be processed later: verify once it must be done
        update_trx(
            conn,
            row["seq"],
            status="queued",
            reconcile=int(reconcile),
            resend_same_id=0,
            next_attempt_at=now + delay,
            updated_at=now,
        )
    return len(rows)


# --- events ----------------------------------------------------------------------------------


def pending_events(conn: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT id, kind, payload FROM events WHERE acked_at IS NULL ORDER BY id LIMIT ?",
        (limit,),
    ).fetchall()


def ack_events(conn: sqlite3.Connection, ids: list[int], now: float) -> None:
    conn.executemany(
        "UPDATE events SET acked_at = ? WHERE id = ? AND acked_at IS NULL",
        [(now, i) for i in ids],
    )


def prune_events(conn: sqlite3.Connection, before: float) -> None:
    conn.execute("DELETE FROM events WHERE acked_at IS NOT NULL AND acked_at < ?", (before,))


# --- figures shared by health, status and report -------------------------------------------


def queue_summary(conn: sqlite3.Connection) -> tuple[int, int, float | None]:
    """(open transactions, of which reconciling, acceptance time of the oldest)."""
    row = conn.execute(
        """SELECT count(*), min(accepted_at) FROM transactions
           WHERE status IN ('queued', 'sending') AND collapsed_into IS NULL"""
    ).fetchone()
    reconciling = conn.execute(
        """SELECT count(*) FROM transactions
           WHERE status IN ('queued', 'sending') AND collapsed_into IS NULL AND reconcile = 1"""
    ).fetchone()[0]
    return int(row[0]), int(reconciling), None if row[1] is None else float(row[1])


def prevented_since(conn: sqlite3.Connection, since: float) -> dict[str, int]:
    """Requests each firewall rule answered instead of the NMVS since ``since``."""
    prevented: dict[str, int] = dict.fromkeys(FIREWALL_RULES, 0)
    for rule, count in conn.execute(
        "SELECT rule, count(*) FROM firewall WHERE at >= ? GROUP BY rule", (since,)
    ):
        prevented[rule] = int(count)
    return prevented
