"""The alert firewall and the send/retry/reconcile decisions, as pure functions.

No I/O and no clock of their own: each function takes the pack's ledger entry, the request or
the NMVS answer, and ``now``, and returns a decision the worker carries out. They run in
microseconds and are tested exhaustively (``tests/engine/test_rules.py``).

- :func:`decide` — before any send (at acceptance and again when the transaction reaches the
  head of its pack's queue): firewall rules 3, 4 and 5 (rules 1, 2 and 6 need the scan or the
  recent history and live in the engine).
- :func:`judge_answer` — what an NMVS answer to a send means.
- :func:`judge_reconcile` — what the verify made after an unclear answer means.
- :func:`ledger_after` — the pack ledger after an applied answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tenacity import RetryCallState, wait_exponential_jitter

from gateway.codes.pack import PackIdentifier
from gateway.engine.model import UNDO_WINDOW, FirewallRule, Outcome, Settings
from gateway.engine.notices import Notice, NoticeCode
from gateway.nmvs.backend import NmvsResult
from gateway.vocabulary import UNDO_OF, AnswerClass, Operation

Proof = str  # "response" (we hold the success answer) | "reconciled" | "unconfirmed"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What this gateway last knew and did for one pack."""

    observed_state: str | None = None  # from the last NMVS answer carrying a pack state
    observed_reasons: tuple[str, ...] = ()
    observed_at: float | None = None
    change_op: Operation | None = None  # decommission made here and not undone
    change_user: str | None = None
    change_client_trx_id: str | None = None  # RefClientTrxId for the undo; None if reconciled
    change_nmvs_trx_id: str | None = None
    change_at: float | None = None
    change_proof: Proof | None = None


EMPTY_LEDGER = LedgerEntry()


@dataclass(frozen=True, slots=True)
class Send:
    ref_client_trx_id: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """The engine answers without sending (a firewall rule) or finishes the transaction."""

    outcome: Outcome
    notice: Notice | None = None
    rule: FirewallRule | None = None


@dataclass(frozen=True, slots=True)
class Reconcile:
    """The state change may have been applied: verify before anything else, ``after`` seconds
    from now (``None``: the first verify, ``Settings.reconcile_delay``)."""

    after: float | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """Not applied; send again later. ``after`` is the server's requested delay, if any."""

    after: float | None = None
    rate_limited: bool = False


@dataclass(frozen=True, slots=True)
class Pause:
    """Nothing can succeed until an operator acts (credentials, certificate, T&C, config)."""

    reason: str
    reconcile: bool


@dataclass(frozen=True, slots=True)
class Resend:
    """A reconcile verify proved the change was not applied: send it again (new ClientTrxId)."""


Decision = Send | Answer
Verdict = Answer | Reconcile | Retry | Pause | Resend


def derive_key(op: Operation, pack_key: tuple[str, str, str], scope: str) -> str:
    """The idempotency key of a request that has no id of its own.

    ``scope`` is the scan id for a scan-driven request. For an LGO request without id it is the
    engine's "run" of the pack: the sequence number of the last accepted state change of
    another operation on that pack (``0`` if none). So a dispense sent twice is one
    transaction, while dispense → undo → dispense are three.
    """
    scheme, product_code, serial = pack_key
    return f"{op.value}|{scheme}|{product_code}|{serial}|{scope}"


def _when(at: float | None) -> str:
    if at is None:
        return "time unknown"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def decide(
    op: Operation,
    ledger: LedgerEntry,
    now: float,
    settings: Settings,
    nmvs_now: float | None = None,
) -> Decision:
    """Firewall rules 3–5 for a pack whose earlier transactions are all final.

    ``nmvs_now``: the NMVS's time now, as far as its answers tell (``now`` when unknown). The
    10-day undo window is the NMVS's, counted from its time of the change: judged on the
    gateway's own clock, a clock 8 hours behind would send undos the NMVS refuses (PCK_20)."""
    if not op.changes_state:
        return Send()  # rule 6: verify is never blocked by the ledger
    if op.is_undo:
        return _decide_undo(op, ledger, now if nmvs_now is None else nmvs_now, settings)
    if ledger.change_op is not None:
        detail = f"{ledger.change_op.value} at {_when(ledger.change_at)}"
        fr = f"{ledger.change_op.value} le {_when(ledger.change_at)}"
        return Answer(
            Outcome.ALREADY_DONE_HERE,
            Notice(NoticeCode.ALREADY_DONE_HERE, detail, fr, severity="warning"),
            "3_already_done_here",
        )
    if (
        ledger.observed_state == "INACTIVE"
        and ledger.observed_at is not None
        and now - ledger.observed_at <= settings.fresh_verify_age
    ):
        reasons = ", ".join(ledger.observed_reasons) or "no reason given"
        return Answer(
            Outcome.NOT_ACTIVE,
            Notice(NoticeCode.PACK_NOT_ACTIVE, f"INACTIVE: {reasons}"),
            "4_not_active",
        )
    return Send()


def undo_deadline(ledger: LedgerEntry, settings: Settings) -> float | None:
    """Last moment this gateway will send an undo of the ledger's change (10 days − margin)."""
    if ledger.change_at is None:
        return None
    return ledger.change_at + UNDO_WINDOW - settings.undo_safety_margin


def _decide_undo(op: Operation, ledger: LedgerEntry, now: float, settings: Settings) -> Decision:
    undone = UNDO_OF[op]
    refusal: tuple[str, str] | None = None
    deadline = undo_deadline(ledger, settings)
    if ledger.change_op is None:
        refusal = (
            "this gateway holds no decommission of this pack that is not undone",
            "cette passerelle n'a pas de désactivation non annulée de cette boîte",
        )
    elif ledger.change_op is not undone:
        refusal = (
            f"the pack was set to {ledger.change_op.value} here, not {undone.value}",
            f"la boîte a été passée en {ledger.change_op.value} ici, pas en {undone.value}",
        )
    elif ledger.change_user != settings.nmvs_user:
        refusal = (
            f"the change was made by NMVS user {ledger.change_user}, the undo would be sent as {settings.nmvs_user}",
            f"le changement a été fait par l'utilisateur NMVS {ledger.change_user}, l'annulation partirait sous {settings.nmvs_user}",
        )
    elif ledger.change_proof == "unconfirmed":
        refusal = (
            "nothing proves this gateway made the change (its answer was lost)",
            "rien ne prouve que cette passerelle a fait le changement (sa réponse a été perdue)",
        )
    elif deadline is None or now > deadline:
        refusal = (
            f"{undone.value} at {_when(ledger.change_at)}: the 10-day undo window (less a safety margin) has passed",
            f"{undone.value} le {_when(ledger.change_at)} : le délai d'annulation de 10 jours (moins une marge) est dépassé",
        )
    if refusal is not None:
        return Answer(
            Outcome.UNDO_NOT_ALLOWED,
            Notice(NoticeCode.UNDO_NOT_ALLOWED, refusal[0], refusal[1]),
            "5_undo_not_allowed",
        )
    return Send(ref_client_trx_id=ledger.change_client_trx_id)


def _nmvs_notice(result: NmvsResult) -> Notice:
    return Notice(
        NoticeCode.NMVS_ANSWER,
        f"{result.return_code}: {result.message}",
        f"{result.return_code} : {result.message_fr}",
    )


def judge_answer(op: Operation, result: NmvsResult) -> Verdict:
    """What an NMVS answer to a sent operation means (from its class and flags alone)."""
    if result.success:
        return Answer(Outcome.DONE)
    if result.alert:
        return Answer(Outcome.ALERT, _nmvs_notice(result))
    if result.needs_operator:
        return Pause(
            f"{result.return_code}: {result.message}",
            reconcile=op.changes_state and result.may_have_applied,
        )
    if result.retryable:
        if op.changes_state and result.may_have_applied:
            return Reconcile()
        return Retry(rate_limited=result.answer_class is AnswerClass.RATE_LIMITED)
    return Answer(Outcome.REFUSED, _nmvs_notice(result))


def judge_reconcile(
    op: Operation,
    verify: NmvsResult,
    ledger: LedgerEntry,
    attempt_started_at: float,
    now: float,
    settings: Settings,
    verifies: int = 1,
    nmvs_now: float | None = None,
) -> Verdict:
    """Decide from a verify whether an unclear state change was applied.

    ``verifies`` counts the reconcile verifies since the unclear send that showed a state,
    this one included. A pack still in its old state is not proof that the send was lost (an
    NMVS may apply it later): it is verified again until ``reconcile_horizon``, and only then
    sent again (see :func:`reconcile_after`).
    """
    if not verify.success:
        return judge_answer(Operation.VERIFY, verify)
    undone = UNDO_OF.get(op)
    state, reasons = verify.state, verify.reasons
    again = reconcile_after(verifies, settings)
    if undone is None:  # a set operation
        if state == "ACTIVE":
            return Resend() if again is None else Reconcile(again)
        if state == "INACTIVE" and op.reason in reasons:
            seen_active = (
                ledger.observed_state == "ACTIVE"
                and ledger.observed_at is not None
                and ledger.observed_at >= attempt_started_at - settings.fresh_verify_age
            )
            if seen_active:
                return Answer(Outcome.RECONCILED)
            shown = f"INACTIVE ({', '.join(reasons)})"
            return Answer(
                Outcome.DONE_UNCONFIRMED,
                Notice(NoticeCode.CHANGE_UNCONFIRMED, shown, severity="warning"),
            )
    else:
        if state == "ACTIVE":
            return Answer(Outcome.RECONCILED)
        if state == "INACTIVE" and undone.reason in reasons:
            decision = decide(op, ledger, now, settings, nmvs_now)
            if not isinstance(decision, Send):
                return decision
            return Resend() if again is None else Reconcile(again)
    shown = f"{state}: {', '.join(reasons) or 'no reason given'}"
    return Answer(Outcome.NOT_ACTIVE, Notice(NoticeCode.PACK_NOT_ACTIVE, shown))


def reconcile_after(verifies: int, settings: Settings) -> float | None:
    """Seconds until the next reconcile verify once ``verifies`` showed the old state, or
    ``None`` when they span ``reconcile_horizon`` and the change may be sent again.

    The delays double from ``reconcile_delay`` (30, 60, 120, … s by default; from 1 s when it
    is shorter), the last one cut so the verifies end at the horizon. Counting verifies rather than reading a clock keeps a
    step of the wall clock from ending the wait early.
    """
    delay = max(settings.reconcile_delay, 1.0)  # a tiny delay would mean many verifies
    spent = settings.reconcile_delay
    for _ in range(1, verifies):
        delay *= 2
        spent += delay
    left = settings.reconcile_horizon - spent
    return None if left <= 0 else min(delay * 2, left)


def observe(ledger: LedgerEntry, result: NmvsResult, now: float) -> LedgerEntry:
    """Record the pack state an NMVS answer reports (any operation, any return code)."""
    if result.state is None:
        return ledger
    return replace(
        ledger, observed_state=result.state, observed_reasons=result.reasons, observed_at=now
    )


def ledger_after(
    ledger: LedgerEntry,
    op: Operation,
    outcome: Outcome,
    *,
    user: str,
    client_trx_id: str | None,
    nmvs_trx_id: str | None,
    changed_at: float,
) -> LedgerEntry:
    """The ledger once ``op`` finished with ``outcome`` (only applied changes matter)."""
    if not op.changes_state or outcome not in (
        Outcome.DONE,
        Outcome.RECONCILED,
        Outcome.DONE_UNCONFIRMED,
    ):
        return ledger
    if op.is_undo:
        return replace(
            ledger,
            observed_state="ACTIVE",
            observed_reasons=(),
            observed_at=changed_at,
            change_op=None,
            change_user=None,
            change_client_trx_id=None,
            change_nmvs_trx_id=None,
            change_at=None,
            change_proof=None,
        )
    proof = {
        Outcome.DONE: "response",
        Outcome.RECONCILED: "reconciled",
        Outcome.DONE_UNCONFIRMED: "unconfirmed",
    }[outcome]
    return replace(
        ledger,
        observed_state="INACTIVE",
        observed_reasons=(op.reason,) if op.reason else (),
        observed_at=changed_at,
        change_op=op,
        change_user=user,
        change_client_trx_id=client_trx_id if proof == "response" else None,
        change_nmvs_trx_id=nmvs_trx_id,
        change_at=changed_at,
        change_proof=proof,
    )


_WAIT = wait_exponential_jitter  # tenacity's full-jitter exponential backoff


def retry_delay(attempt: int, settings: Settings, server_asked: float | None = None) -> float:
    """Delay before attempt ``attempt + 1`` (tenacity's exponential backoff with jitter)."""
    wait = _WAIT(multiplier=settings.retry_initial, max=settings.retry_max_delay, jitter=1.0)
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = max(1, attempt)
    delay = float(wait(state))
    return max(delay, server_asked or 0.0)


def bulk_groups(
    candidates: list[tuple[int, Operation, PackIdentifier]], min_group: int, max_group: int
) -> list[list[int]]:
    """Split due decommissions into bulk transactions: one operation, one product and batch
    (a bulk carries one ``Product``), at least ``min_group`` packs, at most ``max_group``.
    Packs with an NHRN stay single. Returns the sequence numbers of each group, oldest first."""
    groups: dict[tuple[object, ...], list[int]] = {}
    for seq, op, pack in candidates:
        if pack.nhrn is not None:
            continue
        key = (op, pack.scheme, pack.product_code, pack.batch, pack.expiry)
        groups.setdefault(key, []).append(seq)
    chunks = [
        members[i : i + max_group]
        for members in groups.values()
        for i in range(0, len(members), max_group)
    ]
    return sorted((c for c in chunks if len(c) >= min_group), key=lambda c: c[0])
