"""The simulated national market: pack store, accounts and the single-pack state machine.

This is the pure core of ``nmvs-sim``: no I/O, no wall clock, no randomness of its own. Time
comes from an injected time source (plus an offset the admin API can advance), NMVSTrxIds from
an injected id factory, and persistence from an injected :class:`MarketStore` (a no-op unless
the server wires in SQLite). The SOAP face turns XML into the request types below and the
:class:`Answer` back into XML; the REST face does the same with JSON.

The rules are the NMVS's return codes, pack state machine, undo and bulk rules, and what
France MVO tells its pharmacies; where the NMVS's behaviour is only inferred, not documented,
the choice is a field of :class:`MarketRules`.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol
from uuid import uuid4

from gateway.nmvs.arvato.returncodes import ReturnCodeInfo, lookup

SUCCESS = "NMVS_SUCCESS"

# use case → the pack reason it sets
SET_REASON: dict[str, str] = {
    "G120": "SUPPLIED",
    "G122": "SUPPLIED",
    "G130": "DESTROYED",
    "G140": "EXPORTED",
    "G150": "SAMPLE",
    "G160": "FREESAMPLE",
    "G170": "LOCKED",
    "G180": "STOLEN",
    "G182": "STOLEN",
}
# undo use case → the pack reason it clears (STOLEN cannot be undone: no G181 in v5)
UNDO_REASON: dict[str, str] = {
    "G121": "SUPPLIED",
    "G131": "DESTROYED",
    "G141": "EXPORTED",
    "G151": "SAMPLE",
    "G161": "FREESAMPLE",
    "G171": "LOCKED",
}
MANUAL_ENTRY = frozenset({"G122", "G182"})
SINGLE_USE_CASES = frozenset({"G110", *SET_REASON, *UNDO_REASON})
# bulk use case → the single-pack use case applied to each of its packs
BULK_USE_CASES: dict[str, str] = {
    "G115": "G110",
    "G125": "G120",
    "G127": "G121",
    "G135": "G130",
    "G137": "G131",
    "G145": "G140",
    "G147": "G141",
    "G155": "G150",
    "G157": "G151",
    "G165": "G160",
    "G167": "G161",
    "G175": "G170",
    "G177": "G171",
    "G185": "G180",
}

PackState = Literal["ACTIVE", "INACTIVE", "UNKNOWN"]


@dataclass(frozen=True, slots=True)
class MarketRules:
    """Market settings where NMVOs differ or the NMVS's behaviour is only inferred."""

    undo_window: timedelta = timedelta(days=10)
    max_failed_logins: int = 5
    # French PCK_23 counter: a user re-deactivating their own pack with the same reason gets
    # NMVS_NC_PCK_23 (no alert) this many times, then NMVS_NC_PCK_19 (alert). None = the
    # market has no counter and answers like any other repeated deactivation (PCK_22).
    own_repeat_info_limit: int | None = 3
    # A set operation on a pack already inactive for another pack-level reason. France MVO's
    # table for pharmacies says PCK_27; the general state rules say PCK_22. Both raise A24.
    other_reason_code: str = "NMVS_NC_PCK_27"
    # A set operation on a pack of an expired/recalled batch or withdrawn product (which code
    # the NMVS returns is not documented):
    # "specific" answers PCK_02 / FE_LOT_01 / FE_LOT_08, "twin" answers the v5 no-alert
    # twin of PCK_22 (NMVS_NC_PCK_30).
    batch_inactive_set: Literal["specific", "twin"] = "specific"
    # An undo of an ACTIVE pack or of one inactive for batch/product reasons raises no alert
    # (REKS); v5 answers the no-alert twin of PCK_06.
    undo_without_alert_code: str = "NMVS_NC_PCK_29"
    bulk_delay: timedelta = timedelta(seconds=2)


# ---------------------------------------------------------------------------- market data


@dataclass(frozen=True, slots=True)
class UserSpec:
    client_login_id: str
    user_id: str
    password: str
    password_expires_in_days: int | None = None  # NMVS_NOTIFY_AU_02 on every answer
    password_expired: bool = False  # NMVS_FE_AU_11
    terms_to_accept_in_days: int | None = None  # NMVS_NOTIFY_PMS_01 on every answer
    terms_blocked: bool = False  # T&C not accepted in time: NMVS_FE_AU_23


@dataclass(frozen=True, slots=True)
class BatchSpec:
    id: str
    expiry: str
    serials: tuple[str, ...]
    recalled: bool = False


@dataclass(frozen=True, slots=True)
class ProductSpec:
    scheme: str
    product_code: str
    batches: tuple[BatchSpec, ...]
    withdrawn: bool = False
    intermarket: bool = False


@dataclass(frozen=True, slots=True)
class MarketData:
    """A market as loaded from ``--packs`` or generated: every pack starts ACTIVE."""

    users: tuple[UserSpec, ...]
    products: tuple[ProductSpec, ...]

    @property
    def pack_count(self) -> int:
        return sum(len(b.serials) for p in self.products for b in p.batches)


# ---------------------------------------------------------------------------- live state


@dataclass(slots=True)
class Account:
    spec: UserSpec
    failed_logins: int = 0
    locked: bool = False


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    use_case: str
    client_trx_id: str
    user_id: str
    return_code: str
    state: PackState
    reasons: tuple[str, ...]


@dataclass(slots=True)
class Pack:
    product_code: str
    serial: str
    batch_id: str
    reason: str | None = None  # the pack-level reason, None while ACTIVE at pack level
    set_by: tuple[str, str] | None = None  # (ClientLoginId, UserId) of the set operation
    set_trx: str | None = None  # its ClientTrxId
    set_at: datetime | None = None
    own_repeats: int = 0
    history: list[HistoryEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    use_case: str | None
    client_trx_id: str | None
    nmvs_trx_id: str
    user_id: str | None
    product_code: str | None
    serial: str | None
    batch: str | None
    return_code: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AlertRecord:
    return_code: str
    hub_code: str | None
    client_trx_id: str | None
    user_id: str | None
    product_code: str | None
    serial: str | None
    batch: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class BulkPackOutcome:
    """One pack of a processed bulk job; ``nmvs_trx_id`` is the item's own id in a mixed bulk."""

    serial: str
    state: PackState
    reasons: tuple[str, ...]
    return_code: str
    nmvs_trx_id: str | None = None


@dataclass(slots=True)
class BulkJob:
    nmvs_trx_id: str
    use_case: str  # G115…G185, or G195 for a mixed bulk
    submitted_by: tuple[str, str]
    client_trx_id: str
    request: BulkRequest | MixedBulkRequest
    ready_at: datetime
    outcomes: tuple[BulkPackOutcome, ...] | None = None
    return_code: str | None = None


@dataclass(slots=True)
class MarketState:
    """Everything that changes; what the SQLite store saves and restores."""

    products: dict[str, ProductSpec]
    packs: dict[tuple[str, str], Pack]
    accounts: dict[tuple[str, str], Account]
    transactions: list[TransactionRecord] = field(default_factory=list)
    alerts: list[AlertRecord] = field(default_factory=list)
    bulk_jobs: dict[str, BulkJob] = field(default_factory=dict)
    clock_offset: timedelta = timedelta(0)

    @classmethod
    def fresh(cls, data: MarketData) -> MarketState:
        packs = {
            (p.product_code, serial): Pack(p.product_code, serial, b.id)
            for p in data.products
            for b in p.batches
            for serial in b.serials
        }
        return cls(
            products={p.product_code: p for p in data.products},
            packs=packs,
            accounts={(u.client_login_id, u.user_id): Account(u) for u in data.users},
        )


class MarketStore(Protocol):
    """Where the core writes every change; :meth:`commit` ends one request's changes."""

    def save_pack(self, pack: Pack) -> None: ...
    def save_account(self, account: Account) -> None: ...
    def add_transaction(self, record: TransactionRecord) -> None: ...
    def add_alert(self, record: AlertRecord) -> None: ...
    def save_bulk_job(self, job: BulkJob) -> None: ...
    def save_clock_offset(self, offset: timedelta) -> None: ...
    def replace_all(self, state: MarketState) -> None: ...
    def commit(self) -> None: ...


class NullStore:
    """Keeps nothing: the market lives in memory only."""

    def save_pack(self, pack: Pack) -> None:
        pass

    def save_account(self, account: Account) -> None:
        pass

    def add_transaction(self, record: TransactionRecord) -> None:
        pass

    def add_alert(self, record: AlertRecord) -> None:
        pass

    def save_bulk_job(self, job: BulkJob) -> None:
        pass

    def save_clock_offset(self, offset: timedelta) -> None:
        pass

    def replace_all(self, state: MarketState) -> None:
        pass

    def commit(self) -> None:
        pass


# ---------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class RequestHeader:
    client_login_id: str
    user_id: str
    password: str
    client_trx_id: str
    language: str = "eng"
    sub_user_id: str | None = None

    @property
    def user(self) -> tuple[str, str]:
        return (self.client_login_id, self.user_id)


@dataclass(frozen=True, slots=True)
class PackRequest:
    """One single-pack request; ``batch``/``expiry`` are None for manual entry (G122/G182)."""

    use_case: str
    scheme: str
    product_code: str
    serial: str
    batch: str | None = None
    expiry: str | None = None
    ref_client_trx_id: str | None = None


@dataclass(frozen=True, slots=True)
class BulkRequest:
    use_case: str
    scheme: str
    product_code: str
    batch: str
    expiry: str
    serials: tuple[str, ...]
    ref_client_trx_id: str | None = None


@dataclass(frozen=True, slots=True)
class MixedItem:
    """One item of a mixed bulk (G195): its own use case (``request.use_case``) and ClientTrxId."""

    request: PackRequest
    client_trx_id: str
    language: str = "eng"


@dataclass(frozen=True, slots=True)
class MixedBulkRequest:
    items: tuple[MixedItem, ...]
    use_case: str = "G195"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the NMVS answers to one request, before it becomes XML."""

    return_code: str
    description: str
    alert: bool
    hub_code: str | None
    nmvs_trx_id: str
    timestamp: datetime
    state: PackState | None = None
    reasons: tuple[str, ...] = ()
    notifications: tuple[tuple[str, str], ...] = ()
    intermarket: bool = False
    bulk: tuple[BulkPackOutcome, ...] | None = None


class _Refusal(Exception):
    """Internal: a check failed with this return code (the pack may be known for the echo)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def expiry_date(yymmdd: str) -> date:
    """The last valid day of a ``YYMMDD`` expiry; day 00 (and days past the month) mean its end."""
    year, month, day = 2000 + int(yymmdd[0:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    last = calendar.monthrange(year, month)[1]
    return date(year, month, last if day == 0 or day > last else day)


def _system_time() -> datetime:
    return datetime.now(UTC)


def _new_nmvs_trx_id() -> str:
    return uuid4().hex


class Market:
    """The simulated NMVS. Every public request method records a transaction and commits."""

    def __init__(
        self,
        data: MarketData,
        *,
        rules: MarketRules | None = None,
        time_source: Callable[[], datetime] = _system_time,
        new_id: Callable[[], str] = _new_nmvs_trx_id,
        store: MarketStore | None = None,
        state: MarketState | None = None,
    ) -> None:
        self.data = data
        self.rules = rules or MarketRules()
        self._time_source = time_source
        self._new_id = new_id
        self._store: MarketStore = store or NullStore()
        self.state = state if state is not None else MarketState.fresh(data)
        self._unsettled = [j for j in self.state.bulk_jobs.values() if j.outcomes is None]

    # ------------------------------------------------------------------ clock and admin

    def now(self) -> datetime:
        return self._time_source() + self.state.clock_offset

    def advance(self, seconds: float) -> datetime:
        self.state.clock_offset += timedelta(seconds=seconds)
        self._store.save_clock_offset(self.state.clock_offset)
        self._store.commit()
        return self.now()

    def reset(self) -> None:
        """Back to the market as loaded: packs ACTIVE, no transactions, alerts, jobs or offset."""
        self.state = MarketState.fresh(self.data)
        self._unsettled = []
        self._store.replace_all(self.state)
        self._store.commit()

    def pack(self, product_code: str, serial: str) -> Pack | None:
        return self.state.packs.get((product_code, serial))

    def pack_view(self, pack: Pack) -> tuple[PackState, tuple[str, ...]]:
        product = self.state.products[pack.product_code]
        return self._state_of(product, pack)

    # ------------------------------------------------------------------ requests

    def single(self, header: RequestHeader, request: PackRequest) -> Answer:
        """Verify, set (incl. manual entry) or undo one pack."""
        if request.use_case not in SINGLE_USE_CASES:
            raise ValueError(f"not a single-pack use case: {request.use_case}")
        self._settle_bulk()
        now = self.now()
        notifications, refusal = self._authenticate(header)
        if refusal is not None:
            return self._finish(header, request, refusal, now, notifications)
        code, state, reasons, intermarket = self._apply(header, request, now, bulk=False)
        return self._finish(
            header, request, code, now, notifications, state, reasons, intermarket=intermarket
        )

    def submit_bulk(self, header: RequestHeader, request: BulkRequest | MixedBulkRequest) -> Answer:
        """Accept a bulk (G115…G185) or mixed bulk (G195) transaction; its packs are processed
        once ``rules.bulk_delay`` has passed on the simulator clock."""
        if isinstance(request, BulkRequest) and request.use_case not in BULK_USE_CASES:
            raise ValueError(f"not a bulk use case: {request.use_case}")
        self._settle_bulk()
        now = self.now()
        notifications, refusal = self._authenticate(header)
        if isinstance(request, BulkRequest):
            echo = PackRequest(
                request.use_case,
                request.scheme,
                request.product_code,
                "",
                request.batch,
                request.expiry,
            )
        else:
            echo = PackRequest(request.use_case, "", "", "")
        answer = self._finish(header, echo, refusal or SUCCESS, now, notifications)
        if refusal is None:
            job = BulkJob(
                nmvs_trx_id=answer.nmvs_trx_id,
                use_case=request.use_case,
                submitted_by=header.user,
                client_trx_id=header.client_trx_id,
                request=request,
                ready_at=now + self.rules.bulk_delay,
            )
            self.state.bulk_jobs[job.nmvs_trx_id] = job
            self._unsettled.append(job)
            self._store.save_bulk_job(job)
            self._store.commit()
        return answer

    def bulk_result(
        self, header: RequestHeader, ref_nmvs_trx_id: str
    ) -> tuple[Answer, BulkJob | None]:
        """G188/G196: ``NMVS_FE_TX_02`` until the job is processed, then its per-pack outcomes."""
        self._settle_bulk()
        now = self.now()
        notifications, refusal = self._authenticate(header)
        job = self.state.bulk_jobs.get(ref_nmvs_trx_id)
        if refusal is None and (
            job is None or job.outcomes is None or job.submitted_by[0] != header.client_login_id
        ):
            refusal = "NMVS_FE_TX_02"
        echo = PackRequest("G188", "", "", "")
        if refusal is not None or job is None:
            return self._finish(header, echo, refusal or "NMVS_FE_TX_02", now, notifications), None
        answer = self._finish(header, echo, job.return_code or SUCCESS, now, notifications)
        return replace(answer, bulk=job.outcomes), job

    def record_rejection(
        self, header: RequestHeader | None, use_case: str | None, code: str, *, record: bool = True
    ) -> Answer:
        """An answer without running the rules: a request refused before them (XML or schema
        error, rate limit), recorded; or with ``record=False`` a substitute answer (injected
        ``NMVS_TI_TO_01``) for a request already recorded."""
        now = self.now()
        nmvs_trx_id = self._new_id()
        if record:
            self._record(header, use_case, None, None, None, code, nmvs_trx_id, now)
            self._store.commit()
        info = lookup(code)
        language = header.language if header else "eng"
        return Answer(code, info.message(language), info.alert, info.hub_code, nmvs_trx_id, now)

    def authenticate(self, header: RequestHeader) -> str | None:
        """Log ``header``'s account in outside a request (the REST face's token endpoint and
        API calls): the refusal code, or None. A wrong password counts towards the lockout
        exactly as in a request; nothing is recorded as a transaction."""
        _, refusal = self._authenticate(header)
        self._store.commit()
        return refusal

    # ------------------------------------------------------------------ rules

    def _authenticate(
        self, header: RequestHeader
    ) -> tuple[tuple[tuple[str, str], ...], str | None]:
        account = self.state.accounts.get(header.user)
        if account is None:
            return (), "NMVS_FE_AU_01"
        if account.locked:
            return (), "NMVS_FE_AU_05"
        if account.spec.password != header.password:
            account.failed_logins += 1
            account.locked = account.failed_logins >= self.rules.max_failed_logins
            self._store.save_account(account)
            return (), "NMVS_FE_AU_01"
        if account.failed_logins:
            account.failed_logins = 0
            self._store.save_account(account)
        spec = account.spec
        if spec.password_expired:
            return (), "NMVS_FE_AU_11"
        if spec.terms_blocked:
            return (), "NMVS_FE_AU_23"
        notifications: list[tuple[str, str]] = []
        if spec.password_expires_in_days is not None:
            days = spec.password_expires_in_days
            notifications.append(("NMVS_NOTIFY_AU_02", f"Your password expires in {days} days."))
        if spec.terms_to_accept_in_days is not None:
            days = spec.terms_to_accept_in_days
            notifications.append(
                (
                    "NMVS_NOTIFY_PMS_01",
                    f"New terms and conditions must be accepted within {days} days.",
                )
            )
        return tuple(notifications), None

    def _apply(
        self, header: RequestHeader, request: PackRequest, now: datetime, *, bulk: bool
    ) -> tuple[str, PackState | None, tuple[str, ...], bool]:
        product = self.state.products.get(request.product_code)
        # bulk transactions never go through the EU Hub
        if product is None or product.scheme != request.scheme or (bulk and product.intermarket):
            return "NMVS_NC_PC_01", None, (), False
        pack = self.state.packs.get((request.product_code, request.serial))
        try:
            pack = self._check_data(product, pack, request)
            code = self._change_state(header, product, pack, request, now)
        except _Refusal as refusal:
            if pack is None:
                return refusal.code, "UNKNOWN", (), product.intermarket
            code = refusal.code
        state, reasons = self._state_of(product, pack)
        pack.history.append(
            HistoryEntry(
                now, request.use_case, header.client_trx_id, header.user_id, code, state, reasons
            )
        )
        self._store.save_pack(pack)
        return code, state, reasons, product.intermarket

    @staticmethod
    def _check_data(product: ProductSpec, pack: Pack | None, request: PackRequest) -> Pack:
        manual = request.use_case in MANUAL_ENTRY
        if pack is None:
            if manual or any(b.id == request.batch for b in product.batches):
                raise _Refusal("NMVS_NC_PC_02")
            raise _Refusal("NMVS_FE_LOT_03")
        if manual:
            return pack
        if pack.batch_id != request.batch:
            raise _Refusal("NMVS_FE_LOT_13")
        if _batch(product, pack).expiry != request.expiry:
            raise _Refusal("NMVS_FE_LOT_12")
        return pack

    def _change_state(
        self,
        header: RequestHeader,
        product: ProductSpec,
        pack: Pack,
        request: PackRequest,
        now: datetime,
    ) -> str:
        use_case = request.use_case
        if use_case == "G110":
            return SUCCESS
        batch_reason = self._batch_reason(product, pack)
        if use_case in UNDO_REASON:
            return self._undo(header, pack, UNDO_REASON[use_case], batch_reason, request, now)
        wanted = SET_REASON[use_case]
        if batch_reason is not None:
            if self.rules.batch_inactive_set == "twin":
                return "NMVS_NC_PCK_30"
            return {
                "WITHDRAWN": "NMVS_FE_LOT_08",
                "RECALLED": "NMVS_FE_LOT_01",
                "EXPIRED": "NMVS_NC_PCK_02",
            }[batch_reason]
        if pack.reason is None:
            pack.reason, pack.set_by, pack.set_trx, pack.set_at = (
                wanted,
                header.user,
                header.client_trx_id,
                now,
            )
            pack.own_repeats = 0
            return SUCCESS
        if pack.reason != wanted:
            return self.rules.other_reason_code
        limit = self.rules.own_repeat_info_limit
        if pack.set_by == header.user and limit is not None and not product.intermarket:
            pack.own_repeats += 1
            return "NMVS_NC_PCK_23" if pack.own_repeats <= limit else "NMVS_NC_PCK_19"
        return "NMVS_NC_PCK_19" if product.intermarket else "NMVS_NC_PCK_22"

    def _undo(
        self,
        header: RequestHeader,
        pack: Pack,
        wanted: str,
        batch_reason: str | None,
        request: PackRequest,
        now: datetime,
    ) -> str:
        if pack.reason is None or batch_reason is not None:
            return self.rules.undo_without_alert_code
        if pack.reason != wanted:
            return "NMVS_NC_PCK_06"
        if pack.set_by != header.user:
            return "NMVS_NC_PCK_21"
        if pack.set_at is None or now - pack.set_at > self.rules.undo_window:
            return "NMVS_NC_PCK_20"
        if request.ref_client_trx_id is not None and request.ref_client_trx_id != pack.set_trx:
            return "NMVS_FE_TX_01"
        pack.reason, pack.set_by, pack.set_trx, pack.set_at = None, None, None, None
        pack.own_repeats = 0
        return SUCCESS

    def _batch_reason(self, product: ProductSpec, pack: Pack) -> str | None:
        """The first system-set reason (product withdrawn, batch recalled, batch expired)."""
        reasons = self._system_reasons(product, pack)
        return reasons[0] if reasons else None

    def _system_reasons(self, product: ProductSpec, pack: Pack) -> tuple[str, ...]:
        batch = _batch(product, pack)
        reasons: list[str] = []
        if product.withdrawn:
            reasons.append("WITHDRAWN")
        if batch.recalled:
            reasons.append("RECALLED")
        if expiry_date(batch.expiry) < self.now().date():
            reasons.append("EXPIRED")
        return tuple(reasons)

    def _state_of(self, product: ProductSpec, pack: Pack) -> tuple[PackState, tuple[str, ...]]:
        reasons = ((pack.reason,) if pack.reason else ()) + self._system_reasons(product, pack)
        return ("INACTIVE" if reasons else "ACTIVE"), reasons

    # ------------------------------------------------------------------ bulk processing

    def _settle_bulk(self) -> None:
        """Process every bulk job whose delay has passed (the NMVS's asynchronous worker)."""
        now = self.now()
        due = [job for job in self._unsettled if job.ready_at <= now]
        if not due:
            return
        self._unsettled = [job for job in self._unsettled if job.ready_at > now]
        for job in sorted(due, key=lambda job: job.ready_at):
            self._process_bulk(job, job.ready_at)
        self._store.commit()

    def _process_bulk(self, job: BulkJob, at: datetime) -> None:
        outcomes: list[BulkPackOutcome] = []
        for single, recorded_as, header, item_id in self._bulk_steps(job):
            code, state, reasons, _ = self._apply(header, single, at, bulk=True)
            self._record_outcome(header, recorded_as, code, item_id or job.nmvs_trx_id, at)
            outcomes.append(
                BulkPackOutcome(single.serial, state or "UNKNOWN", reasons, code, item_id)
            )
        succeeded = sum(o.return_code == SUCCESS for o in outcomes)
        job.outcomes = tuple(outcomes)
        job.return_code = (
            SUCCESS
            if succeeded == len(outcomes)
            else "NMVS_NC_PCK_17"
            if succeeded == 0
            else "NMVS_NC_PCK_24"
        )
        self._store.save_bulk_job(job)

    def _bulk_steps(
        self, job: BulkJob
    ) -> Iterable[tuple[PackRequest, PackRequest, RequestHeader, str | None]]:
        """Per pack: the single-pack request to apply, the request as recorded (bulk use case
        for a bulk, the item's own for a mixed bulk), the header and the item's NMVSTrxId."""
        login, user = job.submitted_by
        req = job.request
        if isinstance(req, MixedBulkRequest):
            for item in req.items:
                header = RequestHeader(login, user, "", item.client_trx_id, item.language)
                yield item.request, item.request, header, self._new_id()
            return
        header = RequestHeader(login, user, "", job.client_trx_id)
        for serial in req.serials:
            single = PackRequest(
                BULK_USE_CASES[job.use_case],
                req.scheme,
                req.product_code,
                serial,
                req.batch,
                req.expiry,
                req.ref_client_trx_id,
            )
            yield single, replace(single, use_case=job.use_case), header, None

    # ------------------------------------------------------------------ recording

    def _finish(
        self,
        header: RequestHeader,
        request: PackRequest,
        code: str,
        now: datetime,
        notifications: tuple[tuple[str, str], ...],
        state: PackState | None = None,
        reasons: tuple[str, ...] = (),
        *,
        intermarket: bool = False,
    ) -> Answer:
        nmvs_trx_id = self._new_id()
        info = self._record_outcome(header, request, code, nmvs_trx_id, now)
        self._store.commit()
        return Answer(
            return_code=code,
            description=info.message(header.language),
            alert=info.alert,
            hub_code=info.hub_code,
            nmvs_trx_id=nmvs_trx_id,
            timestamp=now,
            state=state,
            reasons=reasons,
            notifications=notifications,
            intermarket=intermarket,
        )

    def _record_outcome(
        self, header: RequestHeader, request: PackRequest, code: str, nmvs_trx_id: str, at: datetime
    ) -> ReturnCodeInfo:
        return self._record(
            header,
            request.use_case,
            request.product_code or None,
            request.serial or None,
            request.batch,
            code,
            nmvs_trx_id,
            at,
        )

    def _record(
        self,
        header: RequestHeader | None,
        use_case: str | None,
        product_code: str | None,
        serial: str | None,
        batch: str | None,
        code: str,
        nmvs_trx_id: str,
        at: datetime,
    ) -> ReturnCodeInfo:
        client_trx_id = header.client_trx_id if header else None
        user_id = header.user_id if header else None
        record = TransactionRecord(
            use_case, client_trx_id, nmvs_trx_id, user_id, product_code, serial, batch, code, at
        )
        self.state.transactions.append(record)
        self._store.add_transaction(record)
        info = lookup(code)
        if info.alert:
            alert = AlertRecord(
                code, info.hub_code, client_trx_id, user_id, product_code, serial, batch, at
            )
            self.state.alerts.append(alert)
            self._store.add_alert(alert)
        return info


def _batch(product: ProductSpec, pack: Pack) -> BatchSpec:
    return next(b for b in product.batches if b.id == pack.batch_id)
