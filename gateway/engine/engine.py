"""The transaction engine: accepts requests and scans, sends them once, answers the rest.

``async with Engine.open(state_dir, backend, settings) as engine:`` opens (and recovers) the
SQLite store, starts the dispatcher task, and on exit lets sends in flight finish for a short
grace period. All database work runs on one dedicated thread (one connection, short
``BEGIN IMMEDIATE`` transactions with ``synchronous=FULL``; writes arriving together share a
commit) so the event loop never blocks on an fsync. The decisions themselves are the pure
functions of :mod:`gateway.engine.rules`.

Life of a transaction: accepted (row + ``queued`` result event committed together) →
claimed when it is the oldest open one of its pack and due (in the acceptance commit itself
when a worker is free) → rules checked again against the ledger → attempt row with its
ClientTrxId committed → sent → answer applied (ledger, result event) in one commit. A crash
between "attempt committed" and "answer applied" leaves the attempt unfinished: at the next
start the transaction is reconciled by a verify. A large backlog is also replayed through
bulk transactions (``_claim_bulks`` / ``_run_bulk``), each pack settled like a single answer.

Outbox hand-off: right after each commit, still on the database thread, the events it made
durable are read back and handed to the event loop in memory, so the relay publishes them
without another trip to the database (at most ``OUTBOX_MEMORY`` are held; beyond that, and at
start, the relay reads them from SQLite). Acknowledgements (after the broker's PUBACK) take
effect in memory at once and are written to SQLite with the next commit, or after
``ACK_DELAY`` seconds if none comes: a crash before that only republishes a few events, which
the MQTT contract allows (at-least-once).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import math
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

from gateway.codes import validate_pack
from gateway.codes.pack import PackIdentifier
from gateway.codes.problems import Problem, has_error
from gateway.engine import store as db
from gateway.engine.backup import hourly_backup
from gateway.engine.model import (
    STATUS_OF,
    UNDO_WINDOW,
    Event,
    Health,
    NmvsSummary,
    Outcome,
    Request,
    RequestConflictError,
    ScanOutcome,
    ScanRecord,
    ScanView,
    Settings,
    Status,
    StorageFullError,
    StoreError,
    Submitted,
    TransactionView,
    iso,
)
from gateway.engine.notices import Notice, NoticeCode
from gateway.engine.rules import (
    Answer,
    LedgerEntry,
    Pause,
    Reconcile,
    Resend,
    Retry,
    Send,
    Verdict,
    bulk_groups,
    decide,
    derive_key,
    judge_answer,
    judge_reconcile,
    ledger_after,
    observe,
    retry_delay,
    undo_deadline,
)
from gateway.nmvs.backend import (
    BulkResult,
    BulkTicket,
    NmvsAmbiguousError,
    NmvsBackend,
    NmvsInvalidRequestError,
    NmvsNotSentError,
    NmvsPermanentError,
    NmvsRateLimitedError,
    NmvsResult,
)
from gateway.vocabulary import UNDO_OF, Operation

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], float]
SHUTDOWN_GRACE = 5.0
IDLE_POLL = 1.0
BULK_RESCAN = 2.0  # seconds between bulk scans that found no group
OUTBOX_MEMORY = 1000  # committed, unacknowledged events held in memory for the relay
ACK_DELAY = 0.5  # seconds an acknowledgement may wait for a commit to ride along with
STORAGE_RETRY_S = 1.0  # how often a full state directory is tried again
OFFSET_SAVE_S = 1.0  # the NMVS clock offset is stored again when it moved by more than this
STORAGE_CLEAR_S = 10.0  # a full state directory has room again once no write failed for this
DISK_LOW_BYTES = 200 * 1024 * 1024  # health warns below this much free space for the state
CLOCK_WARNING_S = 300.0  # an NMVS clock this far from ours (or moving this much) is logged


@dataclass(frozen=True, slots=True)
class _Job:
    seq: int
    op: Operation  # what is sent: the transaction's operation, or verify when reconciling
    pack: PackIdentifier
    purpose: Literal["send", "reconcile", "precheck"]
    attempt_id: int
    client_trx_id: str
    ref_client_trx_id: str | None


@dataclass(frozen=True, slots=True)
class _BulkJob:
    """One bulk transaction: its members are ordinary send jobs sharing the ClientTrxId."""

    bulk_id: int
    op: Operation
    client_trx_id: str
    members: tuple[_Job, ...]
    nmvs_trx_id: str | None = None  # set: acknowledged before a restart, only its result is due


@dataclass(frozen=True, slots=True)
class _Failure:
    kind: Literal["not_sent", "rate_limited", "ambiguous", "permanent", "invalid"]
    message: str
    retry_after: float | None = None


def _summary(result: NmvsResult) -> NmvsSummary:
    return NmvsSummary(
        answer_class=result.answer_class.value,
        return_code=result.return_code,
        description=result.description,
        message=result.message,
        message_fr=result.message_fr,
        alert=result.alert,
        hub_code=result.hub_code,
        alert_id=result.alert_id,
        state=result.state,
        reasons=result.reasons,
        nmvs_trx_id=result.nmvs_trx_id,
        client_trx_id=result.client_trx_id,
    )


def _failure_of(exc: Exception) -> _Failure:
    """Classify a backend exception: may the request have reached the NMVS?"""
    if isinstance(exc, NmvsRateLimitedError):
        return _Failure("rate_limited", str(exc), exc.retry_after)
    if isinstance(exc, NmvsNotSentError):
        return _Failure("not_sent", str(exc))
    if isinstance(exc, NmvsInvalidRequestError):
        return _Failure("invalid", str(exc))
    if isinstance(exc, NmvsPermanentError):
        return _Failure("permanent", str(exc))
    if not isinstance(exc, NmvsAmbiguousError):  # a client bug: the request may have gone out
        log.error("unexpected error from the NMVS backend", exc_info=exc)
    return _Failure("ambiguous", str(exc) or type(exc).__name__)


def _resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def view_of(row: sqlite3.Row) -> TransactionView:
    status = Status.QUEUED if row["status"] == "sending" else Status(row["status"])
    return TransactionView(
        id=row["id"],
        op=Operation(row["op"]),
        status=status,
        outcome=None if row["outcome"] is None else Outcome(row["outcome"]),
        pack=None if row["pack"] is None else PackIdentifier.from_json(json.loads(row["pack"])),
        nmvs=None if row["nmvs"] is None else NmvsSummary.from_json(json.loads(row["nmvs"])),
        problems=tuple(json.loads(row["problems"])),
        at=row["updated_at"],
        accepted_at=row["accepted_at"],
        scan_id=row["scan_id"],
        scanner_id=row["scanner_id"],
    )


def scan_view_of(row: sqlite3.Row) -> ScanView:
    return ScanView(
        id=row["id"],
        scanner_id=row["scanner_id"],
        counter=row["counter"],
        at=row["at"],
        ok=bool(row["ok"]),
        pack=None if row["pack"] is None else PackIdentifier.from_json(json.loads(row["pack"])),
        problems=tuple(json.loads(row["problems"])),
        text=row["text"],
        collapsed_into=row["collapsed_into"],
        transaction_id=row["trx_id"],
    )


def week_start(now: float) -> float:
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day - timedelta(days=day.weekday())).timestamp()


class Engine:
    """See the module docstring. Create with :meth:`open`."""

    def __init__(
        self,
        store: db.Store,
        executor: ThreadPoolExecutor,
        backend: NmvsBackend,
        settings: Settings,
        clock: Clock,
        monotonic: Clock,
    ) -> None:
        self._store = store
        self._executor = executor
        self._backend = backend
        self.settings = settings
        self._clock = clock
        self._monotonic = monotonic
        self._due_base = clock() - monotonic()  # see _due_clock
        self._wake = asyncio.Event()
        self._events_flag = asyncio.Event()
        self._stopping = False
        self._online: bool | None = None
        self._last_contact: float | None = None
        self._last_latency_ms: float | None = None
        self._paused: str | None = None
        self._hold_until = 0.0  # rate limit: no send before this (_due_clock time)
        self._nmvs_offset = 0.0  # NMVS time − _due_clock, from the last dated answer
        self._saved_offset = 0.0  # NMVS time − wall clock, as stored in meta
        self._saved_shift = 0.0  # _due_clock − wall clock, as stored in meta
        self._storage_full: float | None = None  # since when writes fail for lack of space
        self._storage_failed_at = 0.0  # monotonic time of the last write that failed so
        self._batch: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._batch_lock = threading.Lock()
        self._flush_queued = False
        self._running: set[asyncio.Task[None]] = set()
        self._ready: list[_Job] = []  # prepared at acceptance, not started yet
        self._resumed: list[_BulkJob] = []  # acknowledged bulks found at open, to poll again
        self._restored_at: float | None = None  # restore-backup ran then: precheck for 10 days
        self._backup_failure: str | None = None
        self._start_job: Callable[[_Job], None] | None = None  # set while the dispatcher runs
        # the outbox in memory: loop side (see the module docstring)
        self._outbox: collections.deque[Event] = collections.deque()
        self._outbox_trusted = False  # False: the relay must read SQLite (start, overflow)
        self._acks: list[int] = []  # acknowledged in memory, not written yet (under _batch_lock)
        self._ack_timer: asyncio.TimerHandle | None = None
        self._db_seen = 0  # database thread only: the last event id handed to the loop

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        state_dir: Path | str,
        backend: NmvsBackend,
        settings: Settings,
        *,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> AsyncIterator[Engine]:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-db")
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(executor, db.open_store, state_dir)
        except BaseException:
            executor.shutdown()
            raise
        engine = cls(store, executor, backend, settings, clock, monotonic)
        try:
            await engine._read(engine._start_outbox)
            shift = await engine._write(db.rebase_schedule)
            if abs(shift) > OFFSET_SAVE_S:
                log.warning(
                    "the wall clock moved %+.0f s during the last run: schedule kept", -shift
                )
            now = clock()
            recovered = await engine._write(
                partial(
                    db.recover,
                    now=now,
                    reconcile_delay=settings.reconcile_delay,
                    bulk_delay=settings.bulk_result_horizon,
                    longest_delay=settings.longest_delay,
                )
            )
            if recovered:
                log.warning("recovered %d transaction(s) left in flight; reconciling", recovered)
            engine._restored_at = await engine._read(db.restored_at)
            stored = await engine._read(partial(db.meta_number, key=db.NMVS_OFFSET))
            if stored is not None:  # until the first dated answer: the last offset seen
                engine._nmvs_offset = engine._saved_offset = stored
            engine._resumed = await engine._read(engine._resumable_bulks)
            if engine._resumed:
                log.warning(
                    "asking again for the result of %d bulk(s) acknowledged before the stop",
                    len(engine._resumed),
                )
            await engine._write(partial(db.prune_events, before=now - settings.event_retention))
            async with asyncio.TaskGroup() as group:
                dispatcher = group.create_task(engine._dispatch(), name="engine-dispatcher")
                backups = group.create_task(engine._backups(), name="engine-backups")
                try:
                    yield engine
                finally:
                    engine._stopping = True
                    engine._wake.set()
                    backups.cancel()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(dispatcher), SHUTDOWN_GRACE)
                    dispatcher.cancel()
                    with contextlib.suppress(Exception):  # unstored acks only mean republishing
                        await engine._write_acks()
                    with contextlib.suppress(Exception):  # a crash stores it with answers too
                        await engine._write(engine._save_schedule_shift)
        finally:
            await loop.run_in_executor(executor, store.close)
            executor.shutdown()

    # --- database thread ----------------------------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a committed write transaction on the database thread.

        Group commit: writes that arrive while the thread is busy share one transaction (each
        in its own savepoint, so one failure does not undo the others) and one fsync.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._batch_lock:
            self._batch.append((fn, future))
            start = not self._flush_queued
            self._flush_queued = True
        if start:
            self._executor.submit(self._flush, loop)
        try:
            result: T = await future
        except sqlite3.OperationalError as exc:
            if not db.is_storage_full(exc):
                raise
            self._storage_failed_at = self._monotonic()
            if self._storage_full is None:
                self._storage_full = self._clock()
                log.error("the state directory is full (%s): new requests are refused", exc)
            raise StorageFullError(
                f"the state directory {self._store.path.parent} is full: free space there; "
                "queued work goes on by itself once there is room"
            ) from None
        # small writes may fit while larger ones fail: "room again" once none failed for a while
        if (
            self._storage_full is not None
            and self._monotonic() - self._storage_failed_at >= STORAGE_CLEAR_S
        ):
            log.warning("the state directory has room again: accepting requests")
            self._storage_full = None
        return result

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Database thread: commit every queued write together, then resolve their futures."""
        with self._batch_lock:
            batch, self._batch = self._batch, []
            acks, self._acks = self._acks, []
            self._flush_queued = False
        # acknowledgements first: a read of pending events in this batch must not see them
        fns: list[Callable[[sqlite3.Connection], Any]] = []
        if acks:
            fns.append(partial(db.ack_events, ids=acks, now=self._clock()))
        fns += [fn for fn, _ in batch]
        try:
            outcomes = self._store.write_batch(fns)
        except BaseException as exc:  # the commit itself failed: every write in it failed
            outcomes = [(False, exc)] * len(fns)
        else:
            try:
                self._hand_over(loop)
            except Exception:  # committed all the same: the relay reads the outbox from SQLite
                log.exception("outbox hand-over failed after a commit")
                loop.call_soon_threadsafe(self._take_events, None)
        outcomes = outcomes[len(fns) - len(batch) :]
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            loop.call_soon_threadsafe(_resolve, future, ok, value)

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """Database thread, after a commit: pass the events it made durable to the loop."""
        rows = self._store.conn.execute(
            "SELECT id, kind, payload FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (self._db_seen, OUTBOX_MEMORY + 1),
        ).fetchall()
        if not rows:
            return
        if len(rows) > OUTBOX_MEMORY:
            self._db_seen = self._store.conn.execute("SELECT max(id) FROM events").fetchone()[0]
            loop.call_soon_threadsafe(self._take_events, None)
            return
        self._db_seen = rows[-1]["id"]
        events = [Event(r["id"], r["kind"], json.loads(r["payload"])) for r in rows]
        loop.call_soon_threadsafe(self._take_events, events)

    def _start_outbox(self, conn: sqlite3.Connection) -> None:
        """Database thread, at open: events already stored are read from SQLite, not handed."""
        self._db_seen = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]

    def _take_events(self, events: list[Event] | None) -> None:
        """Loop side of :meth:`_hand_over`; ``None`` (too many) sends the relay to SQLite."""
        if events is None or len(self._outbox) + len(events) > OUTBOX_MEMORY:
            self._outbox.clear()
            self._outbox_trusted = False
        elif self._outbox_trusted:
            self._outbox.extend(events)
        self._events_flag.set()

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._store.read, fn)

    def _notify(self) -> None:
        self._events_flag.set()
        self._wake.set()

    # --- accepting ----------------------------------------------------------------------------

    async def submit(self, request: Request) -> Submitted:
        """Accept one request (idempotent on its key); returns once it is durably stored."""
        problems = validate_pack(request.pack)
        now = self._clock()
        ready: list[_Job] = []
        submitted = await self._write(partial(self._accept, request, problems, now, ready))
        self._launch(ready)
        return submitted

    async def submit_scan(self, scan: ScanRecord) -> ScanOutcome:
        """Store one scan, collapse repeats (rule 2), and apply the ``on_scan`` policy."""
        now = self._clock()
        ready: list[_Job] = []
        outcome = await self._write(partial(self._accept_scan, scan, now, ready))
        self._launch(ready)
        return outcome

    async def layout_beliefs(self) -> dict[str, Any]:
        """Scanner id → its stored layout belief (JSON data), for the capture stage to resume."""
        return await self._read(db.layout_beliefs)

    async def get(self, trx_id: str) -> TransactionView | None:
        row = await self._read(partial(db.trx_by_id, trx_id=trx_id))
        return None if row is None else view_of(row)

    async def scan(self, scan_id: str) -> ScanView | None:
        """A stored scan (kept as long as the database), e.g. for a request's ``scan_id``."""
        row = await self._read(partial(db.scan_by_id, scan_id=scan_id))
        return None if row is None else scan_view_of(row)

    def _launch(self, ready: list[_Job]) -> None:
        """Start jobs prepared at acceptance (already committed as sending) at once."""
        if self._start_job is not None:
            for job in ready:
                self._start_job(job)
        else:
            self._ready.extend(ready)
        self._notify()

    def _accept(
        self,
        request: Request,
        problems: tuple[Problem, ...],
        now: float,
        ready: list[_Job],
        conn: sqlite3.Connection,
    ) -> Submitted:
        pack_key = db.pack_key_text(request.pack.key)
        if request.id is not None:
            key = request.id
        elif request.op is Operation.VERIFY and request.scope is None:
            recent = db.recent_verify(conn, pack_key, now - self.settings.repeat_window)
            if recent is not None:
                db.firewall_hit(
                    conn, "6_repeat_verify", now, trx_id=recent["id"], scanner_id=request.scanner_id
                )
                return Submitted(view_of(recent), new=False)
            key = derive_key(request.op, request.pack.key, f"v{uuid.uuid4().hex}")
        else:
            scope = request.scope or db.run_scope(conn, pack_key, request.op)
            key = derive_key(request.op, request.pack.key, scope)
        existing = db.trx_by_id(conn, key)
        if existing is not None:
            if existing["op"] != request.op.value or existing["pack_key"] != pack_key:
                raise RequestConflictError(
                    f"request id {key!r} was already used for {existing['op']} of another "
                    "pack or operation; use a new id for a new request"
                )
            return Submitted(view_of(existing), new=False)
        fields = {
            "id": key,
            "op": request.op.value,
            "pack_key": pack_key,
            "pack": db.dumps(request.pack.to_json()),
            "scanner_id": request.scanner_id,
            "counter": request.counter,
            "user": request.user,
        }
        return Submitted(self._create(conn, fields, request.op, problems, now, ready), new=True)

    def _accept_scan(
        self, scan: ScanRecord, now: float, ready: list[_Job], conn: sqlite3.Connection
    ) -> ScanOutcome:
        """Store the scan and its event, then start its transaction (the event comes first)."""
        known = db.scan_by_id(conn, scan.id)
        if known is not None:
            return self._scan_outcome(conn, known)
        decoded = scan.decoded
        pack = decoded.pack
        pack_key = None if pack is None else db.pack_key_text(pack.key)
        row: dict[str, Any] = {
            "id": scan.id,
            "scanner_id": scan.scanner_id,
            "counter": scan.counter,
            "at": scan.at,
            "ok": int(decoded.ok),
            "text": decoded.text,
            "pack_key": pack_key,
            "pack": None if pack is None else db.dumps(pack.to_json()),
            "problems": db.dumps([p.to_json() for p in decoded.problems]),
        }
        first = None
        if pack_key is not None and decoded.ok:
            first = conn.execute(
                """SELECT * FROM scans WHERE scanner_id = ? AND pack_key = ? AND ok = 1
                   AND collapsed_into IS NULL AND at BETWEEN ? AND ? ORDER BY at DESC LIMIT 1""",
                (scan.scanner_id, pack_key, scan.at - self.settings.repeat_window, scan.at),
            ).fetchone()
        on_scan = self.settings.on_scan
        op: Operation | None = None
        if first is not None:
            row |= {"collapsed_into": first["id"], "trx_id": first["trx_id"]}
            db.firewall_hit(conn, "2_repeat_scan", now, scan_id=scan.id, scanner_id=scan.scanner_id)
        elif pack is not None and on_scan != "none":
            op = Operation.VERIFY if on_scan == "verify" else Operation.DISPENSE
            row["trx_id"] = derive_key(op, pack.key, scan.id)
        elif pack is None and not decoded.ok and on_scan != "none":
            db.firewall_hit(
                conn, "1_decode_error", now, scan_id=scan.id, scanner_id=scan.scanner_id
            )
        self._insert_scan(conn, row)
        if scan.layout_belief is not None:
            db.save_layout_belief(conn, scan.scanner_id, scan.layout_belief, now)
        stored = db.scan_by_id(conn, scan.id)
        assert stored is not None
        db.append_event(conn, "scan", scan_view_of(stored).to_json(), now)
        if op is not None:
            self._create(
                conn,
                {
                    "id": row["trx_id"],
                    "op": op.value,
                    "pack_key": pack_key,
                    "pack": row["pack"],
                    "scan_id": scan.id,
                    "scanner_id": scan.scanner_id,
                    "counter": scan.counter,
                },
                op,
                decoded.problems,
                now,
                ready,
            )
        return self._scan_outcome(conn, stored)

    @staticmethod
    def _insert_scan(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        conn.execute(f"INSERT INTO scans({names}) VALUES ({marks})", tuple(row.values()))  # noqa: S608

    @staticmethod
    def _scan_outcome(conn: sqlite3.Connection, scan: sqlite3.Row) -> ScanOutcome:
        trx = None if scan["trx_id"] is None else db.trx_by_id(conn, scan["trx_id"])
        return ScanOutcome(
            scan["id"], scan["collapsed_into"], None if trx is None else view_of(trx)
        )

    def _create(
        self,
        conn: sqlite3.Connection,
        fields: dict[str, Any],
        op: Operation,
        problems: tuple[Problem, ...],
        now: float,
        ready: list[_Job],
    ) -> TransactionView:
        """Insert a new transaction; answer it at once when a rule allows, else queue it.

        Fast path: when it could be sent right away (no earlier open transaction of the pack,
        link usable, a worker free) it is claimed and its attempt written in this same commit,
        and the prepared job is appended to ``ready`` — one fsync less before sending.
        """
        pack_key: str = fields["pack_key"]
        fields |= {
            "status": "queued",
            "problems": db.dumps([p.to_json() for p in problems]),
            "next_attempt_at": self._due_clock(),
            "accepted_at": now,
            "updated_at": now,
        }
        answer: Answer | None = None
        target: sqlite3.Row | None = None
        open_before = db.has_open_before(conn, pack_key)
        if has_error(problems):
            answer = Answer(Outcome.REJECTED_LOCALLY, rule="1_decode_error")
        elif op is Operation.VERIFY and (self._online is False or self._paused is not None):
            why = self._paused or "link down"
            answer = Answer(
                Outcome.OFFLINE, Notice(NoticeCode.NMVS_OFFLINE, why, severity="warning")
            )
        elif op is Operation.VERIFY:
            target = db.recent_verify(conn, pack_key, now - self.settings.repeat_window)
        elif not open_before:
            decision = decide(
                op, db.load_ledger(conn, pack_key), now, self.settings, self.nmvs_time(now)
            )
            if isinstance(decision, Answer):
                answer = decision
        if target is not None:
            fields["collapsed_into"] = target["seq"]
        seq = db.insert_trx(conn, fields)
        row = db.trx_by_seq(conn, seq)
        if answer is not None:
            self._finish(conn, row, answer, None, now)
        elif target is not None:
            db.firewall_hit(
                conn, "6_repeat_verify", now, trx_id=row["id"], scanner_id=row["scanner_id"]
            )
            if target["status"] == "done":
                self._finish_follower(conn, row, target, now)
            else:
                db.append_event(conn, "result", view_of(row).to_json(), now)
        else:
            db.append_event(conn, "result", view_of(row).to_json(), now)
            if not open_before and self._may_send_now():
                db.update_trx(conn, seq, status="sending")
                job = self._prepare(conn, db.trx_by_seq(conn, seq), now)
                if job is not None:
                    ready.append(job)
        return view_of(db.trx_by_seq(conn, seq))

    def _may_send_now(self) -> bool:
        # read from the database thread: a stale value at worst lets one extra job through
        busy = len(self._running) + len(self._ready)
        return (
            self._online is not False
            and self._paused is None
            and self._due_clock() >= self._hold_until
            and busy < self.settings.concurrency
        )

    def _finish(
        self,
        conn: sqlite3.Connection,
        row: sqlite3.Row,
        answer: Answer,
        nmvs: NmvsSummary | None,
        now: float,
    ) -> None:
        problems = json.loads(row["problems"])
        if answer.notice is not None:
            problems.append(answer.notice.to_json())
        db.update_trx(
            conn,
            row["seq"],
            status=STATUS_OF[answer.outcome].value,
            outcome=answer.outcome.value,
            nmvs=None if nmvs is None else db.dumps(nmvs.to_json()),
            problems=db.dumps(problems),
            updated_at=now,
        )
        if answer.rule is not None:
            db.firewall_hit(conn, answer.rule, now, trx_id=row["id"], scanner_id=row["scanner_id"])
        final = db.trx_by_seq(conn, row["seq"])
        db.append_event(conn, "result", view_of(final).to_json(), now)
        for follower in db.followers(conn, row["seq"]):
            self._finish_follower(conn, follower, final, now)

    @staticmethod
    def _finish_follower(
        conn: sqlite3.Connection, follower: sqlite3.Row, target: sqlite3.Row, now: float
    ) -> None:
        """A collapsed request gets its target's answer (``duplicate_collapsed`` if done)."""
        outcome = Outcome(target["outcome"])
        if STATUS_OF[outcome] is Status.DONE:
            outcome = Outcome.DUPLICATE_COLLAPSED
        db.update_trx(
            conn,
            follower["seq"],
            status=STATUS_OF[outcome].value,
            outcome=outcome.value,
            nmvs=target["nmvs"],
            updated_at=now,
        )
        db.append_event(
            conn, "result", view_of(db.trx_by_seq(conn, follower["seq"])).to_json(), now
        )

    # --- sending ------------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        """Claim due transactions and run them, at most ``concurrency`` at a time."""
        running = self._running
        bulks: set[asyncio.Task[None]] = set()
        next_bulk_scan = 0.0
        probe_failures = 0
        async with asyncio.TaskGroup() as group:

            def start(job: _Job) -> None:
                task = group.create_task(self._run(job))
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _t: self._wake.set())

            self._start_job = start

            def start_bulk(bulk: _BulkJob) -> None:
                task = group.create_task(self._run_bulk(bulk))
                bulks.add(task)
                task.add_done_callback(bulks.discard)
                task.add_done_callback(lambda _t: self._wake.set())

            for bulk in self._resumed:
                start_bulk(bulk)
            self._resumed = []
            while not self._stopping:
                self._wake.clear()
                ready, self._ready = self._ready, []
                for job in ready:
                    start(job)
                due = self._due_clock()
                if self._online is False and not running and not bulks:
                    probe_failures = await self._probe(probe_failures)
                    continue
                free = self.settings.concurrency - len(running)
                jobs: list[_Job] = []
                blocked = (
                    self._paused is not None or due < self._hold_until or self._online is False
                )
                slots = self.settings.bulk_in_flight - len(bulks)
                try:
                    if self.settings.bulk and slots > 0 and not blocked and due >= next_bulk_scan:
                        claimed = await self._write(
                            partial(self._claim_bulks, self._clock(), slots)
                        )
                        for bulk in claimed or ():
                            start_bulk(bulk)
                        if claimed == []:  # a full scan found no group: it is not free, wait
                            next_bulk_scan = due + BULK_RESCAN
                    if free > 0 and not blocked:
                        jobs = await self._write(partial(self._claim, self._clock(), free))
                except StorageFullError:  # nothing can be claimed (written ahead): wait for room
                    await asyncio.sleep(STORAGE_RETRY_S)
                    continue
                for job in jobs:
                    start(job)
                if jobs and len(jobs) == free:
                    continue  # there may be more due work
                await self._idle(blocked or free <= 0)  # all busy: a finishing send wakes us
            self._start_job = None
            for job in self._ready:  # committed as sending: send rather than leave to reconcile
                start(job)
            self._ready = []
            if running or bulks:
                await asyncio.wait(running | bulks)

    async def _idle(self, blocked: bool) -> None:
        timeout = IDLE_POLL
        now = self._due_clock()
        if self._paused is None and now < self._hold_until:
            timeout = min(timeout, self._hold_until - now)
        elif not blocked:
            due = await self._read(db.next_due_at)
            if due is not None:
                timeout = min(timeout, max(0.0, due - now))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _probe(self, failures: int) -> int:
        """Offline: ping with backoff; on success release the transactions held back."""
        delay = min(
            self.settings.probe_interval_max,
            retry_delay(failures, self.settings) if failures else 0.0,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wait_stop(), delay)
        if self._stopping:
            return failures
        try:
            ping = await self._backend.ping()
        except Exception as exc:  # NmvsError, or a client bug: both mean "not reachable yet"
            log.info("NMVS still unreachable: %s", exc)
            return failures + 1
        self._link_up(ping.latency_ms)
        try:
            await self._write(partial(db.release_not_sent, now=self._due_clock()))
        except StorageFullError:  # the queue waits for room like any claim
            await asyncio.sleep(STORAGE_RETRY_S)
        return 0

    async def _backups(self) -> None:
        """A rolling backup every ``backup_interval`` (on its own connection and thread)."""
        interval = self.settings.backup_interval
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                made = await asyncio.to_thread(
                    hourly_backup, self._store.path, self.settings.backup_keep
                )
            except (StoreError, StorageFullError) as exc:
                if self._backup_failure is None:
                    log.warning("%s", exc)
                self._backup_failure = str(exc)
            else:
                log.info("backup written: %s", made)
                self._backup_failure = None

    async def _wait_stop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            await self._wake.wait()

    def _link_up(self, latency_ms: float) -> None:
        if self._online is False:
            log.warning("NMVS reachable again")
        self._online = True
        self._last_contact = self._clock()
        self._last_latency_ms = latency_ms

    def _claim(self, now: float, limit: int, conn: sqlite3.Connection) -> list[_Job]:
        jobs: list[_Job] = []
        for row in db.claim_due(conn, self._due_clock(), limit):
            job = self._prepare(conn, row, now)
            if job is not None:
                jobs.append(job)
        return jobs

    def _prepare(self, conn: sqlite3.Connection, row: sqlite3.Row, now: float) -> _Job | None:
        """Check the rules again and write the attempt (with its ClientTrxId) before sending."""
        op = Operation(row["op"])
        pack = PackIdentifier.from_json(json.loads(row["pack"]))
        # An unclear change is reconciled first, whatever the clock says: giving up on it would
        # leave the pack's state unknown, and the next decommission of it could be an alert.
        if (
            not row["reconcile"]
            and row["attempts"] > 0
            and now - row["accepted_at"] > self.settings.retry_horizon
        ):
            age = f"{(now - row['accepted_at']) / 3600:.0f} h"
            self._finish(
                conn, row, Answer(Outcome.GAVE_UP, Notice(NoticeCode.GAVE_UP, age)), None, now
            )
            return None
        if row["reconcile"]:
            client_trx_id = uuid.uuid4().hex
            attempt = db.start_attempt(conn, row, Operation.VERIFY, "reconcile", client_trx_id, now)
            return _Job(
                row["seq"], Operation.VERIFY, pack, "reconcile", attempt, client_trx_id, None
            )
        ledger = db.load_ledger(conn, row["pack_key"])
        decision = decide(op, ledger, now, self.settings, self.nmvs_time(now))
        if isinstance(decision, Answer):
            self._finish(conn, row, decision, None, now)
            return None
        assert isinstance(decision, Send)
        if self._needs_precheck(op, ledger, now):
            client_trx_id = uuid.uuid4().hex
            attempt = db.start_attempt(conn, row, Operation.VERIFY, "precheck", client_trx_id, now)
            return _Job(
                row["seq"], Operation.VERIFY, pack, "precheck", attempt, client_trx_id, None
            )
        reuse = row["resend_same_id"] and row["client_trx_id"]
        client_trx_id = row["client_trx_id"] if reuse else uuid.uuid4().hex
        attempt = db.start_attempt(conn, row, op, "send", client_trx_id, now)
        db.update_trx(conn, row["seq"], client_trx_id=client_trx_id)
        return _Job(
            row["seq"], op, pack, "send", attempt, client_trx_id, decision.ref_client_trx_id
        )

    def _save_schedule_shift(self, conn: sqlite3.Connection) -> None:
        """Store how far the scheduling time is from the wall clock when that changed (a wall
        step), for :func:`db.rebase_schedule` at the next open."""
        shift = self._due_clock() - self._clock()
        if abs(shift - self._saved_shift) > OFFSET_SAVE_S:
            db.save_meta_number(conn, db.SCHEDULE_SHIFT, shift)
            self._saved_shift = shift

    def _due_clock(self) -> float:
        """Scheduling time: the wall clock at open, moved on by the monotonic clock since.

        Every ``next_attempt_at`` and hold is in this time, so a step of the wall clock (NTP
        correcting a wrong clock, an operator) neither delays nor hastens what is due. Stored
        values outlive the process: at the next open this time starts again from the wall
        clock, and ``db.recover`` bounds what a step made while stopped could leave waiting."""
        return self._monotonic() + self._due_base

    def nmvs_time(self, local: float) -> float:
        """The NMVS's time for a wall-clock time of this gateway (``local``), from the offset
        its last dated answer showed (none: ours). The offset is kept against the monotonic
        scheduling time, so a step of the wall clock between answers does not move it."""
        return local + self._nmvs_offset_from_wall()

    def _nmvs_offset_from_wall(self) -> float:
        return self._nmvs_offset + self._due_clock() - self._clock()

    def _note_server_time(self, answer: NmvsResult | _Failure) -> None:
        if isinstance(answer, NmvsResult) and answer.server_time is not None:
            offset = answer.server_time.timestamp() - self._due_clock()
            if abs(offset - self._nmvs_offset) > CLOCK_WARNING_S:
                log.warning(
                    "the NMVS's clock is %+.0f s from this gateway's",
                    offset + self._due_clock() - self._clock(),
                )
            self._nmvs_offset = offset

    def _needs_precheck(self, op: Operation, ledger: LedgerEntry, now: float) -> bool:
        """Whether a decommission waits for a verify first: no ACTIVE seen recently enough.

        With ``verify_before_decommission`` another gateway of the site may have decommissioned
        the pack. For 10 days after ``restore-backup`` every pack needs an ACTIVE seen since
        the restore: those decommissioned after the backup are unknown to the restored ledger.
        """
        if not op.changes_state or op.is_undo:
            return False
        age = self.settings.verify_before_decommission
        since = 0.0
        restored = self._restored_at
        if restored is not None and now < restored + UNDO_WINDOW:
            age, since = min(age or math.inf, self.settings.fresh_verify_age), restored
        if age is None:
            return False
        seen = ledger.observed_at
        return not (
            ledger.observed_state == "ACTIVE"
            and seen is not None
            and seen >= since
            and now - seen <= age
        )

    async def _run(self, job: _Job) -> None:
        started = time.perf_counter()
        answer: NmvsResult | _Failure
        try:
            answer = await self._backend.execute(
                job.op,
                job.pack,
                client_trx_id=job.client_trx_id,
                ref_client_trx_id=job.ref_client_trx_id,
            )
        except Exception as exc:
            answer = _failure_of(exc)
        latency_ms = (time.perf_counter() - started) * 1000
        self._note_link(answer, latency_ms)
        self._note_server_time(answer)
        pause = await self._write_through_full(partial(self._complete, job, answer, latency_ms))
        self._pause(pause)

    async def _write_through_full(self, fn: Callable[[float, sqlite3.Connection], T]) -> T:
        """Store what the NMVS answered (``fn(now, conn)``), waiting out a full disk: the
        answer is known and only kept in memory until it is written (``now`` is the wall
        time of the attempt that succeeds)."""
        while True:
            try:
                return await self._write(partial(fn, self._clock()))
            except StorageFullError:
                await asyncio.sleep(STORAGE_RETRY_S)

    def _pause(self, reason: str | None) -> None:
        if reason is not None and self._paused is None:
            log.error("sending paused until an operator acts: %s", reason)
            self._paused = reason
        self._notify()

    def _note_link(self, answer: NmvsResult | _Failure | None, latency_ms: float) -> None:
        """Link state from an exchange: ``None`` means an answer that is not an NmvsResult."""
        if answer is None or isinstance(answer, NmvsResult):
            self._link_up(latency_ms)
        elif answer.kind == "not_sent":
            if self._online is not False:
                log.warning("NMVS unreachable, queueing decommissions: %s", answer.message)
            self._online = False
        elif answer.kind == "rate_limited":
            self._hold_until = self._due_clock() + retry_delay(1, self.settings, answer.retry_after)

    # --- bulk replay of a backlog -----------------------------------------------------------

    def _claim_bulks(
        self, now: float, slots: int, conn: sqlite3.Connection
    ) -> list[_BulkJob] | None:
        """Group due decommissions of one product and batch; write every member's attempt.

        ``None``: the backlog is too small for bulk (a cheap count said so)."""
        settings = self.settings
        due = self._due_clock()
        if db.due_count(conn, due) < settings.bulk_min_backlog:
            return None
        rows = {r["seq"]: r for r in db.bulk_candidates(conn, due, limit=5000)}
        packs = {seq: PackIdentifier.from_json(json.loads(r["pack"])) for seq, r in rows.items()}
        candidates = [(seq, Operation(rows[seq]["op"]), pack) for seq, pack in packs.items()]
        jobs: list[_BulkJob] = []
        for group in bulk_groups(candidates, settings.bulk_min_group, settings.bulk_max_group):
            if len(jobs) == slots:
                break
            members = []
            for seq in group:
                row = rows[seq]
                op, ledger = Operation(row["op"]), db.load_ledger(conn, row["pack_key"])
                decision = decide(op, ledger, now, settings, self.nmvs_time(now))
                if isinstance(decision, Answer):
                    self._finish(conn, row, decision, None, now)
                elif not self._needs_precheck(op, ledger, now):  # else: the single path verifies
                    members.append(row)
            if len(members) < settings.bulk_min_group:
                continue  # the single path takes them
            op = Operation(members[0]["op"])
            client_trx_id = uuid.uuid4().hex
            bulk_id = db.insert_bulk(conn, op.value, client_trx_id, len(members), now)
            sends = []
            for row in members:
                db.update_trx(
                    conn,
                    row["seq"],
                    status="sending",
                    bulk_id=bulk_id,
                    client_trx_id=client_trx_id,
                    updated_at=now,
                )
                attempt = db.start_attempt(conn, row, op, "send", client_trx_id, now)
                sends.append(
                    _Job(row["seq"], op, packs[row["seq"]], "send", attempt, client_trx_id, None)
                )
            jobs.append(_BulkJob(bulk_id, op, client_trx_id, tuple(sends)))
        return jobs

    def _resumable_bulks(self, conn: sqlite3.Connection) -> list[_BulkJob]:
        jobs = []
        for bulk, members in db.resumable_bulks(conn):
            op = Operation(bulk["op"])
            sends = tuple(
                _Job(
                    row["seq"],
                    op,
                    PackIdentifier.from_json(json.loads(row["pack"])),
                    "send",
                    row["attempt_id"],
                    bulk["client_trx_id"],
                    None,
                )
                for row in members
            )
            jobs.append(_BulkJob(bulk["id"], op, bulk["client_trx_id"], sends, bulk["nmvs_trx_id"]))
        return jobs

    async def _run_bulk(self, bulk: _BulkJob) -> None:
        """Submit one bulk, poll its result, then settle each pack like a single answer.

        A bulk acknowledged before a restart (``nmvs_trx_id`` set) is only polled."""
        started = time.perf_counter()
        if bulk.nmvs_trx_id is not None:
            ticket = BulkTicket(bulk.nmvs_trx_id, bulk.client_trx_id, "", "resumed after a stop")
        else:
            try:
                ticket = await self._backend.submit_bulk(
                    bulk.op, [job.pack for job in bulk.members], client_trx_id=bulk.client_trx_id
                )
            except Exception as exc:
                failure = _failure_of(exc)
                self._note_link(failure, 0.0)
                if failure.kind == "invalid":  # one field of one pack: let each go single
                    await self._write_through_full(partial(self._unbulk, bulk, failure.message))
                    return
                pause = await self._write_through_full(
                    partial(self._settle_bulk, bulk, failure, 0.0)
                )
                self._pause(pause)
                return
            self._note_link(None, (time.perf_counter() - started) * 1000)
            await self._write_through_full(
                lambda _now, conn: db.bulk_submitted(conn, bulk.bulk_id, ticket.nmvs_trx_id)
            )
        polling_since = self._due_clock()
        result: BulkResult | _Failure | None = None
        while result is None:
            await asyncio.sleep(self.settings.bulk_poll_interval)
            try:
                answer = await self._backend.bulk_result(ticket, client_trx_id=uuid.uuid4().hex)
            except Exception as exc:  # G188 is read-only: just ask again
                log.info("bulk result not fetched: %s", exc)
            else:
                if answer.ready:
                    result = answer
            waited = self._due_clock() - polling_since
            if result is None and waited > self.settings.bulk_result_horizon:
                result = _Failure("ambiguous", f"bulk {ticket.nmvs_trx_id}: no result in time")
        latency_ms = (time.perf_counter() - started) * 1000
        pause = await self._write_through_full(partial(self._settle_bulk, bulk, result, latency_ms))
        self._pause(pause)

    def _settle_bulk(
        self,
        bulk: _BulkJob,
        result: BulkResult | _Failure,
        latency_ms: float,
        now: float,
        conn: sqlite3.Connection,
    ) -> str | None:
        """Apply a bulk's outcome to each member, exactly as a single answer would be."""
        packs = {} if isinstance(result, _Failure) else {p.serial: p for p in result.packs}
        pause: str | None = None
        for job in bulk.members:
            answer: NmvsResult | _Failure
            outcome = packs.get(job.pack.serial)
            if isinstance(result, _Failure):
                answer = result
            elif outcome is None:
                answer = _Failure("ambiguous", "pack missing from the bulk result")
            elif outcome.send_alone:
                reason = f"{outcome.result.return_code} in bulk: retried single"
                self._unbulk_one(conn, job, reason, now)
                continue
            else:
                answer = outcome.result
            pause = self._complete(job, answer, latency_ms, now, conn) or pause
            if isinstance(result, _Failure):  # the bulk may still be processed: verify later
                due = self._due_clock() + self.settings.bulk_result_horizon
                db.delay_reconcile(conn, job.seq, due)
        db.bulk_finished(
            conn, bulk.bulk_id, "failed" if isinstance(result, _Failure) else "done", now
        )
        return pause

    def _unbulk(self, bulk: _BulkJob, reason: str, now: float, conn: sqlite3.Connection) -> None:
        for job in bulk.members:
            self._unbulk_one(conn, job, reason, now)
        db.bulk_finished(conn, bulk.bulk_id, "failed", now)

    def _unbulk_one(self, conn: sqlite3.Connection, job: _Job, reason: str, now: float) -> None:
        """Nothing was applied for this pack: send it again on its own."""
        db.finish_attempt(conn, job.attempt_id, finished_at=now, error=f"bulk: {reason}")
        db.update_trx(
            conn,
            job.seq,
            status="queued",
            bulk_exempt=1,
            next_attempt_at=self._due_clock(),
            updated_at=now,
        )

    def _complete(
        self,
        job: _Job,
        answer: NmvsResult | _Failure,
        latency_ms: float,
        now: float,
        conn: sqlite3.Connection,
    ) -> str | None:
        """Apply one NMVS answer (or failure) in a single commit; returns a pause reason."""
        offset = self._nmvs_offset_from_wall()
        if abs(offset - self._saved_offset) > OFFSET_SAVE_S:  # kept for the next start
            db.save_meta_number(conn, db.NMVS_OFFSET, offset)
            self._saved_offset = offset
        self._save_schedule_shift(conn)
        row = db.trx_by_seq(conn, job.seq)
        op = Operation(row["op"])
        before = db.load_ledger(conn, row["pack_key"])
        ledger = before
        verdict: Verdict
        nmvs: NmvsSummary | None = None
        if isinstance(answer, NmvsResult):
            db.finish_attempt(
                conn,
                job.attempt_id,
                finished_at=now,
                return_code=answer.return_code,
                alert=int(answer.alert),
                hub_code=answer.hub_code,
                state=answer.state,
                reasons=db.dumps(list(answer.reasons)),
                nmvs_trx_id=answer.nmvs_trx_id,
                latency_ms=latency_ms,
            )
            ledger = observe(before, answer, now)
            nmvs = _summary(answer)
            if job.purpose == "send":
                verdict = judge_answer(op, answer)
            elif job.purpose == "precheck":
                # the verify's answer is in the ledger now: decide again at once (rule 4 if
                # INACTIVE); an alert or refusal of the verify ends the decommission unsent
                verdict = judge_answer(Operation.VERIFY, answer)
                if isinstance(verdict, Answer) and verdict.outcome is Outcome.DONE:
                    verdict = Resend()
            else:
                started = db.attempt_started_at(conn, job.seq)
                verifies = db.reconcile_verifies(conn, job.seq)
                verdict = judge_reconcile(
                    op,
                    answer,
                    before,
                    started,
                    now,
                    self.settings,
                    verifies,
                    self.nmvs_time(now),
                )
        else:
            db.finish_attempt(
                conn,
                job.attempt_id,
                finished_at=now,
                error=f"{answer.kind}: {answer.message}",
                latency_ms=latency_ms,
            )
            verdict = self._judge_failure(op, job, answer)
        pause: str | None = None
        if isinstance(answer, _Failure) and answer.kind == "permanent":
            pause = answer.message
        if isinstance(verdict, Pause) and op is Operation.VERIFY:
            pause = verdict.reason  # the verify is answered now; later sends wait
            verdict = Answer(
                Outcome.OFFLINE, Notice(NoticeCode.NMVS_OFFLINE, verdict.reason, severity="warning")
            )
        if isinstance(verdict, Answer):
            # The change's time in NMVS time, as rule 5 judges it: the answer's own time, else
            # (a reconcile, a bulk settled maybe after a restart) the send's start, converted —
            # never later than the change, so the undo window is never taken as longer.
            server_time = None if not isinstance(answer, NmvsResult) else answer.server_time
            if job.purpose == "send" and server_time is not None:
                changed_at = server_time.timestamp()
            else:
                changed_at = self.nmvs_time(db.attempt_started_at(conn, job.seq))
            ledger = ledger_after(
                ledger,
                op,
                verdict.outcome,
                user=self.settings.nmvs_user,
                client_trx_id=job.client_trx_id,
                nmvs_trx_id=None if nmvs is None else nmvs.nmvs_trx_id,
                changed_at=changed_at,
            )
            self._finish(conn, row, verdict, nmvs, now)
        else:
            requeue: dict[str, Any] = {
                "status": "queued",
                # attempts counts sends: a precheck verify does not use up the first one
                "attempts": row["attempts"] + (job.purpose != "precheck"),
                "resend_same_id": 0,
                "updated_at": now,
            }
            if isinstance(answer, _Failure):
                requeue["last_error"] = f"{answer.kind}: {answer.message}"
            elif nmvs is not None:
                requeue["last_error"] = f"{nmvs.return_code}: {nmvs.description}"
            due = self._due_clock()
            if isinstance(verdict, Reconcile):
                after = self.settings.reconcile_delay if verdict.after is None else verdict.after
                requeue |= {"reconcile": 1, "next_attempt_at": due + after}
            elif isinstance(verdict, Resend):
                requeue |= {"reconcile": 0, "next_attempt_at": due}
            elif isinstance(verdict, Retry):
                delay = retry_delay(row["attempts"] + 1, self.settings, verdict.after)
                # a rate-limited request reached the NMVS: its retry gets a new ClientTrxId
                not_sent = isinstance(answer, _Failure) and answer.kind == "not_sent"
                requeue |= {
                    "next_attempt_at": due + delay,
                    "resend_same_id": int(not_sent and job.purpose == "send"),
                }
            else:
                assert isinstance(verdict, Pause)
                pause = verdict.reason
                requeue |= {
                    "next_attempt_at": due,
                    "reconcile": int(verdict.reconcile or job.purpose == "reconcile"),
                }
            db.update_trx(conn, job.seq, **requeue)
        if ledger != before:
            db.save_ledger(conn, row["pack_key"], ledger, now)
        return pause

    def _judge_failure(self, op: Operation, job: _Job, failure: _Failure) -> Verdict:
        """What a failure to get an answer means for this transaction."""
        if failure.kind == "invalid":
            return Answer(
                Outcome.REJECTED_LOCALLY,
                Notice(NoticeCode.NMVS_ANSWER, failure.message),
                "1_decode_error",
            )
        if op is Operation.VERIFY and failure.kind != "rate_limited":
            return Answer(
                Outcome.OFFLINE,
                Notice(NoticeCode.NMVS_OFFLINE, failure.message, severity="warning"),
            )
        if failure.kind == "permanent":
            return Pause(failure.message, reconcile=job.purpose == "reconcile")
        if failure.kind == "ambiguous" and job.purpose == "send":
            return Reconcile()
        return Retry(after=failure.retry_after, rate_limited=failure.kind == "rate_limited")

    def resume(self) -> None:
        """Clear an operator pause (after the configuration was fixed)."""
        self._paused = None
        self._wake.set()

    # --- outbox ---------------------------------------------------------------------------------

    async def pending_events(self, limit: int = 100) -> list[Event]:
        """The oldest committed events not acknowledged yet, in order (from memory if it can)."""
        if self._outbox_trusted:
            return list(itertools.islice(self._outbox, limit))
        loop = asyncio.get_running_loop()
        # a write, so that acknowledgements held in memory are stored before reading
        return await self._write(partial(self._pending_from_db, limit, loop))

    def _pending_from_db(
        self, limit: int, loop: asyncio.AbstractEventLoop, conn: sqlite3.Connection
    ) -> list[Event]:
        rows = db.pending_events(conn, limit=limit)
        events = [Event(r["id"], r["kind"], json.loads(r["payload"])) for r in rows]
        if len(events) < limit:  # every unacknowledged event is here: memory can take over
            self._start_outbox(conn)
            loop.call_soon_threadsafe(self._trust_outbox, events)
        return events

    def _trust_outbox(self, events: list[Event]) -> None:
        self._outbox = collections.deque(events)
        self._outbox_trusted = True

    async def ack_events(self, ids: list[int]) -> None:
        """Mark events published (call after the broker's PUBACK); stored with the next commit."""
        done = set(ids)
        while self._outbox and self._outbox[0].id in done:  # the usual case: oldest first
            self._outbox.popleft()
        if any(e.id in done for e in self._outbox):
            self._outbox = collections.deque(e for e in self._outbox if e.id not in done)
        with self._batch_lock:
            self._acks.extend(ids)
        if self._ack_timer is None:
            loop = asyncio.get_running_loop()
            self._ack_timer = loop.call_later(ACK_DELAY, self._ack_due, loop)

    def _ack_due(self, loop: asyncio.AbstractEventLoop) -> None:
        """No commit came within ``ACK_DELAY``: start one for the acknowledgements alone."""
        self._ack_timer = None
        with self._batch_lock:
            start = bool(self._acks) and not self._flush_queued
            self._flush_queued = self._flush_queued or start
        if start:
            self._executor.submit(self._flush, loop)

    async def _write_acks(self) -> None:
        """Store the acknowledgements held in memory now (an empty write carries them)."""
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        with self._batch_lock:
            waiting = bool(self._acks)
        if waiting:
            await self._write(lambda _conn: None)

    async def wait_events(self) -> None:
        """Return once events may be pending (after any write that appended some)."""
        await self._events_flag.wait()
        self._events_flag.clear()

    # --- health ---------------------------------------------------------------------------------

    async def health(self) -> Health:
        now = self._clock()
        return await self._read(partial(self._health, now))

    def _health(self, now: float, conn: sqlite3.Connection) -> Health:
        return health_snapshot(
            conn,
            now,
            self.settings,
            online=self._online,
            last_contact=self._last_contact,
            last_latency_ms=self._last_latency_ms,
            paused=self._paused,
            nmvs_offset=self._nmvs_offset_from_wall(),
            storage_full=self._storage_full,
            free_bytes=_free_bytes(self._store.path.parent),
            backup_failure=self._backup_failure,
        )


def _free_bytes(directory: Path) -> int | None:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def health_snapshot(
    conn: sqlite3.Connection,
    now: float,
    settings: Settings,
    *,
    online: bool | None,
    last_contact: float | None,
    last_latency_ms: float | None,
    paused: str | None,
    nmvs_offset: float = 0.0,
    storage_full: float | None = None,
    free_bytes: int | None = None,
    backup_failure: str | None = None,
) -> Health:
    """The health numbers from the database plus the engine's live link state."""
    depth, reconciling, oldest = db.queue_summary(conn)
    since = week_start(now)
    sent = conn.execute(
        "SELECT count(*), coalesce(sum(alert), 0) FROM attempts WHERE started_at >= ?", (since,)
    ).fetchone()
    warnings: list[str] = []
    if storage_full is not None:
        warnings.append(
            f"the state directory is full since {iso(storage_full)}: new requests are refused "
            "(storage_full) and queued work waits; free space there and it goes on by itself"
        )
    elif free_bytes is not None and free_bytes < DISK_LOW_BYTES:
        warnings.append(
            f"only {free_bytes / 1024**2:.0f} MiB free for the state directory: free space "
            "before it fills (then new requests are refused)"
        )
    if backup_failure is not None:
        warnings.append(f"the last backup failed: {backup_failure}")
    if abs(nmvs_offset) > CLOCK_WARNING_S:
        side = "behind" if nmvs_offset > 0 else "ahead of"
        warnings.append(
            f"this gateway's clock is {abs(nmvs_offset) / 60:.0f} min {side} the NMVS's: "
            "undo windows are judged in NMVS time, but fix the clock (NTP)"
        )
    old = conn.execute(
        """SELECT count(*), min(accepted_at) FROM transactions
           WHERE status IN ('queued', 'sending') AND collapsed_into IS NULL AND op != 'verify'
             AND accepted_at < ?""",
        (now - settings.alarm_queued_age,),
    ).fetchone()
    if old[0]:
        hours = (now - old[1]) / 3600
        warnings.append(
            f"{old[0]} decommission(s) queued for more than {settings.alarm_queued_age / 3600:g} h "
            f"(oldest {hours:.1f} h): check the NMVS link"
        )
    undos = conn.execute(
        """SELECT id, pack_key FROM transactions
           WHERE status IN ('queued', 'sending') AND collapsed_into IS NULL
             AND op IN (SELECT value FROM json_each(?))""",
        (db.dumps([op.value for op in UNDO_OF]),),
    ).fetchall()
    for undo in undos:
        deadline = undo_deadline(db.load_ledger(conn, undo["pack_key"]), settings)
        if deadline is not None and deadline - (now + nmvs_offset) < settings.alarm_undo_closing:
            warnings.append(
                f"undo {undo['id']} is still queued and its 10-day window closes at {iso(deadline)}"
            )
    return Health(
        queue_depth=depth,
        reconciling=reconciling,
        oldest_queued_age=None if oldest is None else now - oldest,
        nmvs_online=online,
        last_contact_at=last_contact,
        last_latency_ms=last_latency_ms,
        paused=paused,
        week_alerts=int(sent[1]),
        week_sent=int(sent[0]),
        week_prevented=db.prevented_since(conn, since),
        warnings=tuple(warnings),
    )
