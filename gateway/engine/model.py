"""The engine's public vocabulary: settings, requests, scans, transaction views, outcomes, health.

Everything here is a frozen value; the engine (``engine.py``) produces them, the daemon and the
MQTT relay consume them. Times are Unix epoch seconds (``float``) taken from the engine's
injected clock; JSON payloads carry them as ISO 8601 UTC strings.

Outcome vocabulary (the ``outcome`` field of a result; the MQTT contract refers to this table):

======================  =========  ============================================================
outcome                 status     meaning
======================  =========  ============================================================
(null)                  queued     accepted and stored; not answered yet (sending, waiting for
                                   the NMVS, or being reconciled after an unclear answer)
``done``                done       the NMVS answered success (verify: look at ``nmvs.state``)
``reconciled``          done       an unclear answer was followed by a verify showing the
                                   requested state, and this gateway had seen the pack in the
                                   prior state: applied by this request (undo stays possible)
``done_unconfirmed``    done       as ``reconciled``, but nothing proves the change was ours (the
                                   pack was never seen ACTIVE here): not re-sent; an automatic
                                   undo is refused because it could raise PCK_21
``duplicate_collapsed`` done/...   the same request (verify within the repeat window) was
                                   answered once; this request carries the first one's answer
``rejected_locally``    rejected   firewall rule 1: the code has a decode/validation error; not sent
``already_done_here``   rejected   firewall rule 3: this gateway already decommissioned the pack
                                   (and did not undo it); not sent
``not_active``          rejected   firewall rule 4 (a fresh verify said INACTIVE), or a reconcile
                                   verify found the pack inactive for another reason; not sent
``undo_not_allowed``    rejected   firewall rule 5: undo not provably allowed (other user, other
                                   reason, window closed, not ours); not sent
``alert``               rejected   the NMVS raised a Level-5 alert (do not supply the pack)
``refused``             rejected   the NMVS refused without alert (see ``nmvs.return_code``)
``offline``             failed     a verify could not reach the NMVS (DR Art. 29: the pharmacist
                                   decides; decommissions are queued instead)
``gave_up``             failed     the retry horizon passed without an answer
======================  =========  ============================================================

Rule 2 (repeat scans) and rule 6 (identical verifies without an id) do not create a new
transaction: the caller gets the first transaction back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Protocol, get_args

from gateway.codes.pack import PackIdentifier
from gateway.codes.problems import Problem
from gateway.vocabulary import Operation


class Status(StrEnum):
    QUEUED = "queued"
    DONE = "done"
    REJECTED = "rejected"
    FAILED = "failed"


class Outcome(StrEnum):
    """See the module docstring for the table; values are a public contract."""

    DONE = "done"
    RECONCILED = "reconciled"
    DONE_UNCONFIRMED = "done_unconfirmed"
    DUPLICATE_COLLAPSED = "duplicate_collapsed"
    REJECTED_LOCALLY = "rejected_locally"
    ALREADY_DONE_HERE = "already_done_here"
    NOT_ACTIVE = "not_active"
    UNDO_NOT_ALLOWED = "undo_not_allowed"
    ALERT = "alert"
    REFUSED = "refused"
    OFFLINE = "offline"
    GAVE_UP = "gave_up"


STATUS_OF: dict[Outcome, Status] = {
    Outcome.DONE: Status.DONE,
    Outcome.RECONCILED: Status.DONE,
    Outcome.DONE_UNCONFIRMED: Status.DONE,
    Outcome.DUPLICATE_COLLAPSED: Status.DONE,
    Outcome.REJECTED_LOCALLY: Status.REJECTED,
    Outcome.ALREADY_DONE_HERE: Status.REJECTED,
    Outcome.NOT_ACTIVE: Status.REJECTED,
    Outcome.UNDO_NOT_ALLOWED: Status.REJECTED,
    Outcome.ALERT: Status.REJECTED,
    Outcome.REFUSED: Status.REJECTED,
    Outcome.OFFLINE: Status.FAILED,
    Outcome.GAVE_UP: Status.FAILED,
}

# Firewall rules, as counted by ``health()`` and ``nmvs-gateway report``.
FirewallRule = Literal[
    "1_decode_error",
    "2_repeat_scan",
    "3_already_done_here",
    "4_not_active",
    "5_undo_not_allowed",
    "6_repeat_verify",
]
FIREWALL_RULES: tuple[FirewallRule, ...] = get_args(FirewallRule)

OnScan = Literal["verify", "dispense", "none"]
DAY = 86_400.0
UNDO_WINDOW = 10 * DAY  # DR 2016/161 Art. 13 and NMVS PCK_20


@dataclass(frozen=True, slots=True)
class Settings:
    """Engine tunables. The daemon maps its TOML section onto these fields."""

    nmvs_user: str  # the NMVS UserId the backend sends: undo needs the same user (rule 5)
    on_scan: OnScan = "verify"
    repeat_window: float = 3.0  # rules 2 and 6
    fresh_verify_age: float = 600.0  # rule 4
    # Several gateways on one NMVS account (a site with many tills): before a decommission, the
    # pack must have been seen ACTIVE by a verify at most this many seconds old, else a verify
    # goes first and decides (rule 4 if INACTIVE). None: off (one gateway per account).
    verify_before_decommission: float | None = None
    undo_safety_margin: float = 6 * 3600.0  # rule 5: undo only before 10 days minus this
    concurrency: int = 4
    retry_initial: float = 1.0
    retry_max_delay: float = 300.0
    retry_horizon: float = 7 * DAY  # then the transaction fails with ``gave_up``
    reconcile_delay: float = 30.0  # let an in-flight NMVS transaction finish before verifying
    # An unclear change the verify shows not applied yet is verified again (doubling delays)
    # until this long after it was sent, and only then sent again: an NMVS may apply it late.
    reconcile_horizon: float = 300.0
    probe_interval_max: float = 30.0  # offline: ping with backoff up to this
    alarm_queued_age: float = 3600.0  # health warning: decommission queued longer than this
    alarm_undo_closing: float = DAY  # health warning: queued undo whose window closes within this
    event_retention: float = 30 * DAY  # acknowledged events are pruned after this
    # Backlog replay through bulk transactions (G125…/G188): used only when at least
    # ``bulk_min_backlog`` decommissions are due, for groups of one product and batch of at
    # least ``bulk_min_group`` packs. Bulk never routes intermarket: PC_01 packs go single.
    bulk: bool = True
    bulk_min_backlog: int = 100
    bulk_min_group: int = 3
    bulk_max_group: int = 1000
    bulk_in_flight: int = 16
    bulk_poll_interval: float = 1.0
    # How long an accepted bulk may take to be processed. A verify before then could see a
    # pack still ACTIVE that the bulk is about to decommission, so the packs of a bulk whose
    # result is unknown (unclear submission, crash, no result) are verified only after this.
    bulk_result_horizon: float = 600.0
    # Rolling backups of the database (gateway.engine.backup): one every this many seconds
    # (0: none), the newest ``backup_keep`` kept.
    backup_interval: float = 3600.0
    backup_keep: int = 24

    def __post_init__(self) -> None:
        """Refuse values that would make the engine unsafe or stuck; the message names the field."""
        if not isinstance(self.nmvs_user, str) or not self.nmvs_user:
            raise SettingsError("nmvs_user", "must be the NMVS UserId the backend sends")
        if self.on_scan not in ("verify", "dispense", "none"):
            raise SettingsError(
                "on_scan", f"must be verify, dispense or none, not {self.on_scan!r}"
            )
        for name in (
            "concurrency",
            "bulk_min_backlog",
            "bulk_min_group",
            "bulk_max_group",
            "bulk_in_flight",
            "backup_keep",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(name, f"must be a whole number of at least 1, not {value!r}")
        age = self.verify_before_decommission
        if age is not None and (
            isinstance(age, bool) or not isinstance(age, int | float) or age <= 0
        ):
            raise SettingsError(
                "verify_before_decommission",
                f"must be a number of seconds above 0 (or left out), not {age!r}",
            )
        if self.bulk_min_group > self.bulk_max_group:
            raise SettingsError("bulk_min_group", "must not exceed bulk_max_group")
        for name, value in (
            (f.name, getattr(self, f.name)) for f in fields(self) if f.type in ("float", float)
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise SettingsError(name, f"must be a number of seconds ≥ 0, not {value!r}")
        if self.undo_safety_margin >= UNDO_WINDOW:
            raise SettingsError("undo_safety_margin", "must be shorter than the 10-day undo window")
        if self.reconcile_horizon < self.reconcile_delay:
            raise SettingsError("reconcile_horizon", "must not be shorter than reconcile_delay")

    @property
    def longest_delay(self) -> float:
        """The longest wait the engine schedules on its own (a server's Retry-After aside)."""
        return max(
            self.retry_max_delay,
            self.reconcile_delay,
            self.reconcile_horizon,
            self.bulk_result_horizon,
        )


class SettingsError(ValueError):
    """An engine setting is wrong; ``field`` names it."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"engine.{field_name}: {problem}")
        self.field = field_name


class DecodedScanLike(Protocol):
    """What the engine reads from ``gateway.codes.DecodedScan``."""

    @property
    def ok(self) -> bool: ...
    @property
    def text(self) -> str: ...
    @property
    def pack(self) -> PackIdentifier | None: ...
    @property
    def problems(self) -> tuple[Problem, ...]: ...


@dataclass(frozen=True, slots=True)
class ScanRecord:
    """One physical scan: ``id`` is unique per scan (the capture layer makes it).

    ``layout_belief``: the scanner's layout belief after this scan when the scan changed it
    (:meth:`gateway.codes.layout_belief.LayoutBelief.stored`), stored in the same commit."""

    id: str
    scanner_id: str
    counter: str | None
    at: float
    decoded: DecodedScanLike
    layout_belief: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """An operation asked by the LGO (or made from a scan).

    ``id`` is the caller's idempotency key. Without one the key is derived from
    (operation, pack identity, scope); see :func:`gateway.engine.rules.derive_key`.
    """

    op: Operation
    pack: PackIdentifier
    id: str | None = None
    scope: str | None = None
    scanner_id: str | None = None
    counter: str | None = None
    user: str | None = None  # the LGO's operator label, for the report


@dataclass(frozen=True, slots=True)
class NmvsSummary:
    """The part of an NMVS answer a result carries. ``description`` is the NMVS's own text (in
    the language of the NMVS account); the result adds the gateway's own wording of the return
    code in English and French (``message`` / ``message_fr``, as problems have)."""

    answer_class: str | None  # an AnswerClass; None in results stored by earlier versions
    return_code: str
    description: str
    message: str
    message_fr: str
    alert: bool
    hub_code: str | None
    alert_id: str | None
    state: str | None
    reasons: tuple[str, ...]
    nmvs_trx_id: str | None
    client_trx_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "answer_class": self.answer_class,
            "return_code": self.return_code,
            "description": self.description,
            "message": self.message,
            "message_fr": self.message_fr,
            "alert": self.alert,
            "hub_code": self.hub_code,
            "alert_id": self.alert_id,
            "state": self.state,
            "reasons": list(self.reasons),
            "nmvs_trx_id": self.nmvs_trx_id,
            "client_trx_id": self.client_trx_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NmvsSummary:
        """Also reads what earlier versions stored (no class, no alert id, no wording: the
        NMVS's own description stands in for it)."""
        return cls(
            answer_class=data.get("answer_class"),
            return_code=data["return_code"],
            description=data["description"],
            message=data.get("message", data["description"]),
            message_fr=data.get("message_fr", data["description"]),
            alert=data["alert"],
            hub_code=data["hub_code"],
            alert_id=data.get("alert_id"),
            state=data["state"],
            reasons=tuple(data["reasons"]),
            nmvs_trx_id=data["nmvs_trx_id"],
            client_trx_id=data["client_trx_id"],
        )


def iso(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class TransactionView:
    """A transaction as the outside sees it; ``to_json`` is the MQTT result payload."""

    id: str
    op: Operation
    status: Status
    outcome: Outcome | None
    pack: PackIdentifier | None
    nmvs: NmvsSummary | None
    problems: tuple[dict[str, Any], ...]
    at: float  # time of the current status
    accepted_at: float
    scan_id: str | None = None
    scanner_id: str | None = None

    @property
    def final(self) -> bool:
        return self.status is not Status.QUEUED

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "op": self.op.value,
            "status": self.status.value,
            "outcome": None if self.outcome is None else self.outcome.value,
            "pack": None if self.pack is None else self.pack.to_json(),
            "nmvs": None if self.nmvs is None else self.nmvs.to_json(),
            "problems": list(self.problems),
            "at": iso(self.at),
        }


@dataclass(frozen=True, slots=True)
class Submitted:
    """What ``submit`` did: the transaction, and whether this call created it (``new``).

    ``new`` is false when the idempotency key was already known (a repeated request id) or
    the request was collapsed into an earlier one (rule 6)."""

    view: TransactionView
    new: bool


@dataclass(frozen=True, slots=True)
class ScanView:
    """A stored scan as the outside sees it; ``to_json`` is the MQTT scan event payload.

    ``collapsed_into`` names the first scan when rule 2 collapsed this one;
    ``transaction_id`` is the transaction the scan started (``on_scan`` policy) or, when
    collapsed, the first scan's transaction; ``None`` when there is none.
    """

    id: str
    scanner_id: str
    counter: str | None
    at: float
    ok: bool
    pack: PackIdentifier | None
    problems: tuple[dict[str, Any], ...]
    text: str
    collapsed_into: str | None
    transaction_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scanner_id": self.scanner_id,
            "counter": self.counter,
            "at": iso(self.at),
            "ok": self.ok,
            "pack": None if self.pack is None else self.pack.to_json(),
            "problems": list(self.problems),
            "text": self.text,
            "collapsed_into": self.collapsed_into,
            "transaction_id": self.transaction_id,
        }


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    """What ``submit_scan`` did: ``collapsed_into`` names the first scan when rule 2 applied."""

    scan_id: str
    collapsed_into: str | None
    transaction: TransactionView | None


@dataclass(frozen=True, slots=True)
class Event:
    """One outbox row: ``kind`` is ``scan`` or ``result``; publish, then ``ack_events``."""

    id: int
    kind: Literal["scan", "result"]
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Health:
    queue_depth: int
    reconciling: int
    oldest_queued_age: float | None
    nmvs_online: bool | None  # None: no contact yet
    last_contact_at: float | None
    last_latency_ms: float | None
    paused: str | None  # why sending is paused (operator must act), else None
    week_alerts: int
    week_sent: int
    week_prevented: dict[str, int]
    warnings: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "queue_depth": self.queue_depth,
            "reconciling": self.reconciling,
            "oldest_queued_age_s": self.oldest_queued_age,
            "nmvs_online": self.nmvs_online,
            "last_contact_at": iso(self.last_contact_at),
            "last_latency_ms": self.last_latency_ms,
            "paused": self.paused,
            "week_alerts": self.week_alerts,
            "week_sent": self.week_sent,
            "week_prevented": self.week_prevented,
            "warnings": list(self.warnings),
        }


class EngineError(Exception):
    """Base of the engine's errors; messages name what to fix."""


class StoreError(EngineError):
    """The state database cannot be used (corrupt, wrong version, unwritable)."""


class StorageFullError(EngineError):
    """The state directory's filesystem is full: nothing new can be stored. Not fatal: work
    already accepted stays queued and goes on by itself once space is freed."""


class RequestConflictError(EngineError):
    """An idempotency key was reused for a different operation or pack."""
