"""The simulator's optional SQLite state (``--state FILE``): a restart keeps packs, accounts,
transactions, alerts, bulk jobs and the clock offset.

Write-through: the market calls :meth:`SqliteStore.commit` at the end of every request, which
writes that request's changes in one transaction (WAL, ``synchronous=FULL``). The market data
the file was created with is stored too, so ``/_sim/reset`` after a restart still knows it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.simulator.market import (
    Account,
    AlertRecord,
    BulkJob,
    BulkPackOutcome,
    BulkRequest,
    HistoryEntry,
    MarketData,
    MarketState,
    MixedBulkRequest,
    MixedItem,
    Pack,
    PackRequest,
    TransactionRecord,
)
from gateway.simulator.marketfile import market_from_json, market_to_json

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    client_login_id TEXT, user_id TEXT, failed_logins INTEGER, locked INTEGER,
    PRIMARY KEY (client_login_id, user_id));
CREATE TABLE IF NOT EXISTS packs (
    product_code TEXT, serial TEXT, record TEXT NOT NULL, PRIMARY KEY (product_code, serial));
CREATE TABLE IF NOT EXISTS transactions (seq INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (seq INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bulk_jobs (nmvs_trx_id TEXT PRIMARY KEY, record TEXT NOT NULL);
"""


class StateFileError(RuntimeError):
    """The state file cannot be opened or read; the message names it."""


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _record_json(record: TransactionRecord | AlertRecord) -> str:
    data = asdict(record)
    data["at"] = _time(record.at)
    return json.dumps(data)


def _pack_json(pack: Pack) -> str:
    return json.dumps(
        {
            "batch_id": pack.batch_id,
            "reason": pack.reason,
            "set_by": list(pack.set_by) if pack.set_by else None,
            "set_trx": pack.set_trx,
            "set_at": _time(pack.set_at),
            "own_repeats": pack.own_repeats,
            "history": [
                {**asdict(h), "at": _time(h.at), "reasons": list(h.reasons)} for h in pack.history
            ],
        }
    )


def _pack_from_json(product_code: str, serial: str, text: str) -> Pack:
    data = json.loads(text)
    return Pack(
        product_code=product_code,
        serial=serial,
        batch_id=data["batch_id"],
        reason=data["reason"],
        set_by=(data["set_by"][0], data["set_by"][1]) if data["set_by"] else None,
        set_trx=data["set_trx"],
        set_at=_parse_time(data["set_at"]),
        own_repeats=data["own_repeats"],
        history=[
            HistoryEntry(**{**h, "at": _parse_time(h["at"]), "reasons": tuple(h["reasons"])})
            for h in data["history"]
        ],
    )


def _request_json(request: BulkRequest | MixedBulkRequest) -> dict[str, Any]:
    if isinstance(request, MixedBulkRequest):
        items = [
            {"request": asdict(i.request), "client_trx_id": i.client_trx_id, "language": i.language}
            for i in request.items
        ]
        return {"kind": "mixed", "items": items}
    return {"kind": "bulk", **asdict(request), "serials": list(request.serials)}


def _request_from_json(data: dict[str, Any]) -> BulkRequest | MixedBulkRequest:
    if data["kind"] == "mixed":
        return MixedBulkRequest(
            tuple(
                MixedItem(PackRequest(**i["request"]), i["client_trx_id"], i["language"])
                for i in data["items"]
            )
        )
    fields = {k: v for k, v in data.items() if k != "kind"}
    return BulkRequest(**{**fields, "serials": tuple(fields["serials"])})


def _job_json(job: BulkJob) -> str:
    return json.dumps(
        {
            "use_case": job.use_case,
            "submitted_by": list(job.submitted_by),
            "client_trx_id": job.client_trx_id,
            "request": _request_json(job.request),
            "ready_at": _time(job.ready_at),
            "return_code": job.return_code,
            "outcomes": None
            if job.outcomes is None
            else [{**asdict(o), "reasons": list(o.reasons)} for o in job.outcomes],
        }
    )


def _job_from_json(nmvs_trx_id: str, text: str) -> BulkJob:
    data = json.loads(text)
    request = data["request"]
    ready_at = _parse_time(data["ready_at"])
    assert ready_at is not None
    return BulkJob(
        nmvs_trx_id=nmvs_trx_id,
        use_case=data["use_case"],
        submitted_by=(data["submitted_by"][0], data["submitted_by"][1]),
        client_trx_id=data["client_trx_id"],
        request=_request_from_json(request),
        ready_at=ready_at,
        return_code=data["return_code"],
        outcomes=None
        if data["outcomes"] is None
        else tuple(
            BulkPackOutcome(**{**o, "reasons": tuple(o["reasons"])}) for o in data["outcomes"]
        ),
    )


class SqliteStore:
    """A :class:`~gateway.simulator.market.MarketStore` writing to one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as error:
            raise StateFileError(f"{path}: cannot open the simulator state file: {error}") from None
        self._pending: list[tuple[str, tuple[Any, ...]]] = []

    # ------------------------------------------------------------------ MarketStore

    def save_pack(self, pack: Pack) -> None:
        self._pending.append(
            (
                "INSERT OR REPLACE INTO packs VALUES (?, ?, ?)",
                (pack.product_code, pack.serial, _pack_json(pack)),
            )
        )

    def save_account(self, account: Account) -> None:
        spec = account.spec
        self._pending.append(
            (
                "INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?)",
                (spec.client_login_id, spec.user_id, account.failed_logins, int(account.locked)),
            )
        )

    def add_transaction(self, record: TransactionRecord) -> None:
        self._pending.append(
            ("INSERT INTO transactions (record) VALUES (?)", (_record_json(record),))
        )

    def add_alert(self, record: AlertRecord) -> None:
        self._pending.append(("INSERT INTO alerts (record) VALUES (?)", (_record_json(record),)))

    def save_bulk_job(self, job: BulkJob) -> None:
        self._pending.append(
            ("INSERT OR REPLACE INTO bulk_jobs VALUES (?, ?)", (job.nmvs_trx_id, _job_json(job)))
        )

    def save_clock_offset(self, offset: timedelta) -> None:
        self._pending.append(
            (
                "INSERT OR REPLACE INTO meta VALUES ('clock_offset', ?)",
                (str(offset.total_seconds()),),
            )
        )

    def replace_all(self, state: MarketState) -> None:
        for table in ("accounts", "packs", "transactions", "alerts", "bulk_jobs"):
            self._pending.append((f"DELETE FROM {table}", ()))  # noqa: S608 - fixed names
        self.save_clock_offset(state.clock_offset)
        for pack in state.packs.values():
            if pack.history:
                self.save_pack(pack)

    def commit(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for sql, params in pending:
                self._db.execute(sql, params)

    # ------------------------------------------------------------------ loading

    def load(self, data_if_new: MarketData | None) -> tuple[MarketData, MarketState]:
        """The market kept in the file, or ``data_if_new`` as a fresh one (then saved)."""
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'market'").fetchone()
            if row is None:
                if data_if_new is None:
                    raise StateFileError(
                        f"{self.path}: the state file holds no market yet; give --packs or --generate"
                    )
                self._pending.append(
                    (
                        "INSERT INTO meta VALUES ('market', ?)",
                        (json.dumps(market_to_json(data_if_new)),),
                    )
                )
                state = MarketState.fresh(data_if_new)
                self.replace_all(state)
                self.commit()
                return data_if_new, state
            data = market_from_json(json.loads(row[0]))
            return data, self._load_state(data)
        except (sqlite3.Error, ValueError, KeyError, TypeError, OverflowError) as error:
            raise StateFileError(f"{self.path}: cannot read the simulator state: {error}") from None

    def _load_state(self, data: MarketData) -> MarketState:
        state = MarketState.fresh(data)
        for login, user, failed, locked in self._db.execute("SELECT * FROM accounts"):
            account = state.accounts.get((login, user))
            if account is not None:
                account.failed_logins, account.locked = failed, bool(locked)
        for product_code, serial, record in self._db.execute("SELECT * FROM packs"):
            state.packs[(product_code, serial)] = _pack_from_json(product_code, serial, record)
        for (record,) in self._db.execute("SELECT record FROM transactions ORDER BY seq"):
            raw = json.loads(record)
            state.transactions.append(TransactionRecord(**{**raw, "at": _parse_time(raw["at"])}))
        for (record,) in self._db.execute("SELECT record FROM alerts ORDER BY seq"):
            raw = json.loads(record)
            state.alerts.append(AlertRecord(**{**raw, "at": _parse_time(raw["at"])}))
        for nmvs_trx_id, record in self._db.execute("SELECT * FROM bulk_jobs"):
            state.bulk_jobs[nmvs_trx_id] = _job_from_json(nmvs_trx_id, record)
        row = self._db.execute("SELECT value FROM meta WHERE key = 'clock_offset'").fetchone()
        if row is not None:
            state.clock_offset = timedelta(seconds=float(row[0]))
        return state

    def close(self) -> None:
        self._db.close()
