"""The pure firewall and reconcile rules, without I/O (microseconds per case)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.engine.model import UNDO_WINDOW, Outcome, Settings, SettingsError
from gateway.engine.rules import (
    Answer,
    LedgerEntry,
    Pause,
    Reconcile,
    Resend,
    Retry,
    Send,
    decide,
    derive_key,
    judge_answer,
    judge_reconcile,
    ledger_after,
    reconcile_after,
    retry_delay,
    undo_deadline,
)
from gateway.nmvs.arvato.client import classified
from gateway.nmvs.arvato.returncodes import lookup
from gateway.nmvs.backend import NmvsResult
from gateway.vocabulary import UNDO_OF, AnswerClass, Operation

EMPTY = LedgerEntry()
S = Settings(nmvs_user="SITE0001")
NOW = 1_800_000_000.0
DISPENSED = LedgerEntry(
    observed_state="INACTIVE",
    observed_reasons=("SUPPLIED",),
    observed_at=NOW - 60,
    change_op=Operation.DISPENSE,
    change_user="SITE0001",
    change_client_trx_id="a" * 32,
    change_at=NOW - 3600,
    change_proof="response",
)


def result(code: str = "NMVS_SUCCESS", state: str | None = "ACTIVE", *reasons: str) -> NmvsResult:
    """An Arvato answer as the Arvato client classifies it."""
    return classified(
        code,
        lookup(code).en,
        state=state,  # type: ignore[arg-type]
        reasons=reasons,
        nmvs_trx_id="n" * 32,
        client_trx_id="c" * 32,
        server_time=None,
    )


SETS = [op for op in Operation if op.changes_state and not op.is_undo]
UNDOS = list(UNDO_OF)


def test_verify_is_never_blocked_by_the_ledger() -> None:
    assert decide(Operation.VERIFY, DISPENSED, NOW, S) == Send()


@pytest.mark.parametrize("op", SETS)
def test_rule3_decommission_of_a_pack_decommissioned_here_is_answered_from_the_ledger(
    op: Operation,
) -> None:
    decision = decide(op, DISPENSED, NOW, S)
    assert isinstance(decision, Answer)
    assert decision.outcome is Outcome.ALREADY_DONE_HERE
    assert decision.rule == "3_already_done_here"
    assert decision.notice is not None and "dispense at" in decision.notice.detail


def test_rule3_does_not_apply_once_undone() -> None:
    undone = ledger_after(
        DISPENSED,
        Operation.UNDO_DISPENSE,
        Outcome.DONE,
        user="SITE0001",
        client_trx_id="b" * 32,
        nmvs_trx_id=None,
        changed_at=NOW,
    )
    assert undone.change_op is None
    assert decide(Operation.DISPENSE, undone, NOW, S) == Send()


def test_rule4_fresh_inactive_verify_blocks_a_decommission_with_advice() -> None:
    elsewhere = LedgerEntry("INACTIVE", ("SUPPLIED",), NOW - 599)
    decision = decide(Operation.DISPENSE, elsewhere, NOW, S)
    assert isinstance(decision, Answer) and decision.outcome is Outcome.NOT_ACTIVE
    assert decision.rule == "4_not_active"
    assert decision.notice is not None
    message = decision.notice.to_json()["message"]
    assert "INACTIVE: SUPPLIED" in message
    assert "do not supply it, set it aside and report it" in message


def test_rule4_stale_verify_does_not_block() -> None:
    stale = LedgerEntry("INACTIVE", ("SUPPLIED",), NOW - 601)
    assert decide(Operation.DISPENSE, stale, NOW, S) == Send()


def test_rule5_undo_of_own_recent_change_is_sent_with_ref_client_trx_id() -> None:
    assert decide(Operation.UNDO_DISPENSE, DISPENSED, NOW, S) == Send("a" * 32)


@pytest.mark.parametrize(
    ("ledger", "now", "reason"),
    [
        (LedgerEntry(), NOW, "holds no decommission"),
        (replace(DISPENSED, change_op=Operation.DESTROY), NOW, "set to destroy here, not dispense"),
        (replace(DISPENSED, change_user="OTHER01"), NOW, "made by NMVS user OTHER01"),
        (replace(DISPENSED, change_proof="unconfirmed"), NOW, "nothing proves"),
        (DISPENSED, DISPENSED.change_at + UNDO_WINDOW - S.undo_safety_margin + 1, "window"),
    ],
)
def test_rule5_undo_not_allowed(ledger: LedgerEntry, now: float, reason: str) -> None:
    decision = decide(Operation.UNDO_DISPENSE, ledger, now, S)
    assert isinstance(decision, Answer) and decision.outcome is Outcome.UNDO_NOT_ALLOWED
    assert decision.rule == "5_undo_not_allowed"
    assert decision.notice is not None and reason in decision.notice.detail


def test_rule5_reconciled_change_may_be_undone_without_ref() -> None:
    reconciled = replace(DISPENSED, change_proof="reconciled", change_client_trx_id=None)
    assert decide(Operation.UNDO_DISPENSE, reconciled, NOW, S) == Send(None)


ledgers = st.builds(
    LedgerEntry,
    observed_state=st.sampled_from([None, "ACTIVE", "INACTIVE", "UNKNOWN"]),
    observed_reasons=st.lists(st.sampled_from(["SUPPLIED", "DESTROYED", "STOLEN"]), max_size=2).map(
        tuple
    ),
    observed_at=st.none() | st.floats(NOW - 30 * 86400, NOW),
    change_op=st.none() | st.sampled_from(SETS),
    change_user=st.sampled_from(["SITE0001", "OTHER01"]),
    change_client_trx_id=st.none() | st.just("a" * 32),
    change_at=st.none() | st.floats(NOW - 30 * 86400, NOW),
    change_proof=st.sampled_from(["response", "reconciled", "unconfirmed"]),
)


@given(ledgers, st.sampled_from(SETS))
def test_property_no_decommission_is_sent_that_the_ledger_knows_would_alert(
    ledger: LedgerEntry, op: Operation
) -> None:
    decision = decide(op, ledger, NOW, S)
    if isinstance(decision, Send):
        assert ledger.change_op is None
        assert not (
            ledger.observed_state == "INACTIVE"
            and ledger.observed_at is not None
            and NOW - ledger.observed_at <= S.fresh_verify_age
        )


@given(ledgers, st.sampled_from(UNDOS))
def test_property_an_undo_is_sent_only_when_every_condition_holds(
    ledger: LedgerEntry, op: Operation
) -> None:
    decision = decide(op, ledger, NOW, S)
    if isinstance(decision, Send):
        assert ledger.change_op is UNDO_OF[op]
        assert ledger.change_user == S.nmvs_user
        assert ledger.change_proof in ("response", "reconciled")
        deadline = undo_deadline(ledger, S)
        assert deadline is not None and deadline >= NOW
        assert decision.ref_client_trx_id == ledger.change_client_trx_id
    else:
        assert decision.outcome is Outcome.UNDO_NOT_ALLOWED


def test_judge_answer_classes() -> None:
    assert judge_answer(Operation.DISPENSE, result()) == Answer(Outcome.DONE)
    alert = judge_answer(Operation.DISPENSE, result("NMVS_NC_PCK_22", "INACTIVE"))
    assert isinstance(alert, Answer) and alert.outcome is Outcome.ALERT
    refused = judge_answer(Operation.DISPENSE, result("NMVS_NC_PCK_02", "INACTIVE"))
    assert isinstance(refused, Answer) and refused.outcome is Outcome.REFUSED
    assert judge_answer(Operation.DISPENSE, result("NMVS_TI_TO_01", None)) == Reconcile()
    assert isinstance(
        judge_answer(Operation.VERIFY, result("NMVS_TI_TO_01", None)),
        Retry,
    )
    limited = judge_answer(Operation.DISPENSE, result("NMVS_FI_SE_CLI_01", None))
    assert limited == Retry(rate_limited=True)
    assert isinstance(
        judge_answer(Operation.DISPENSE, result("NMVS_FE_AU_01", None)),
        Pause,
    )


def reconcile(
    op: Operation, verify: NmvsResult, ledger: LedgerEntry = EMPTY, verifies: int = 4
) -> object:
    """Judged as the verify that ends the default horizon (30 + 60 + 120 + 90 s)."""
    return judge_reconcile(op, verify, ledger, NOW - 300, NOW, S, verifies)


def test_reconcile_table_for_dispense() -> None:
    # ACTIVE → not applied, resend; INACTIVE+SUPPLIED → applied (proof depends on what
    # the gateway saw before); INACTIVE other reason → terminal, shown to the pharmacist.
    assert reconcile(Operation.DISPENSE, result()) == Resend()
    seen_active = LedgerEntry("ACTIVE", (), NOW - 100)
    assert reconcile(
        Operation.DISPENSE, result("NMVS_SUCCESS", "INACTIVE", "SUPPLIED"), seen_active
    ) == Answer(Outcome.RECONCILED)
    unconfirmed = reconcile(Operation.DISPENSE, result("NMVS_SUCCESS", "INACTIVE", "SUPPLIED"))
    assert isinstance(unconfirmed, Answer) and unconfirmed.outcome is Outcome.DONE_UNCONFIRMED
    other = reconcile(Operation.DISPENSE, result("NMVS_SUCCESS", "INACTIVE", "DESTROYED"))
    assert isinstance(other, Answer) and other.outcome is Outcome.NOT_ACTIVE
    data = reconcile(Operation.DISPENSE, result("NMVS_NC_PC_02", None))
    assert isinstance(data, Answer) and data.outcome is Outcome.ALERT
    assert isinstance(reconcile(Operation.DISPENSE, result("NMVS_TI_TO_01", None)), Retry)


def test_a_pack_still_in_its_old_state_is_verified_again_until_the_horizon() -> None:
    """Not applied yet is not lost: verifies at 30, 90, 210 and 300 s, and only then a resend."""
    assert [reconcile(Operation.DISPENSE, result(), verifies=n) for n in (1, 2, 3, 4)] == [
        Reconcile(60.0),
        Reconcile(120.0),
        Reconcile(90.0),
        Resend(),
    ]
    undo = [
        reconcile(
            Operation.UNDO_DISPENSE,
            result("NMVS_SUCCESS", "INACTIVE", "SUPPLIED"),
            DISPENSED,
            verifies=n,
        )
        for n in (1, 4)
    ]
    assert undo == [Reconcile(60.0), Resend()]


@given(
    delay=st.floats(0, 600, allow_nan=False),
    extra=st.floats(0, 7200, allow_nan=False),
)
def test_the_reconcile_verifies_always_end_exactly_at_the_horizon(
    delay: float, extra: float
) -> None:
    settings = Settings(
        nmvs_user="SITE0001", reconcile_delay=delay, reconcile_horizon=delay + extra
    )
    spent, verifies = delay, 1
    while (after := reconcile_after(verifies, settings)) is not None:
        assert after > 0
        spent += after
        verifies += 1
        assert verifies < 20  # doubling reaches any horizon in few verifies
    assert spent == pytest.approx(settings.reconcile_horizon)


def test_reconcile_table_for_undo() -> None:
    assert reconcile(Operation.UNDO_DISPENSE, result(), DISPENSED) == Answer(Outcome.RECONCILED)
    assert (
        reconcile(
            Operation.UNDO_DISPENSE, result("NMVS_SUCCESS", "INACTIVE", "SUPPLIED"), DISPENSED
        )
        == Resend()
    )
    late = replace(DISPENSED, change_at=NOW - UNDO_WINDOW)
    closed = reconcile(
        Operation.UNDO_DISPENSE, result("NMVS_SUCCESS", "INACTIVE", "SUPPLIED"), late
    )
    assert isinstance(closed, Answer) and closed.outcome is Outcome.UNDO_NOT_ALLOWED


def test_ledger_after_records_proof_and_ref() -> None:
    entry = ledger_after(
        LedgerEntry(),
        Operation.DISPENSE,
        Outcome.DONE,
        user="SITE0001",
        client_trx_id="c" * 32,
        nmvs_trx_id="n" * 32,
        changed_at=NOW,
    )
    assert (entry.change_op, entry.change_proof, entry.change_client_trx_id) == (
        Operation.DISPENSE,
        "response",
        "c" * 32,
    )
    reconciled = ledger_after(
        LedgerEntry(),
        Operation.DISPENSE,
        Outcome.RECONCILED,
        user="SITE0001",
        client_trx_id="c" * 32,
        nmvs_trx_id=None,
        changed_at=NOW,
    )
    assert reconciled.change_client_trx_id is None and reconciled.change_proof == "reconciled"
    refused = ledger_after(
        LedgerEntry(),
        Operation.DISPENSE,
        Outcome.ALERT,
        user="SITE0001",
        client_trx_id="c" * 32,
        nmvs_trx_id=None,
        changed_at=NOW,
    )
    assert refused == LedgerEntry()


@given(st.integers(1, 60))
def test_retry_delay_grows_and_is_capped(attempt: int) -> None:
    delay = retry_delay(attempt, S)
    assert 0 < delay <= S.retry_max_delay + 1.0
    assert retry_delay(attempt, S, server_asked=900.0) == 900.0


def test_derived_key_names_operation_pack_and_scope() -> None:
    key = derive_key(Operation.DISPENSE, ("GTIN", "05000456013482", "AbC/1"), "scan-7")
    assert key == "dispense|GTIN|05000456013482|AbC/1|scan-7"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"concurrency": 0}, "engine.concurrency: must be a whole number of at least 1, not 0"),
        (
            {"repeat_window": -1.0},
            "engine.repeat_window: must be a number of seconds ≥ 0, not -1.0",
        ),
        ({"on_scan": "sell"}, "engine.on_scan: must be verify, dispense or none, not 'sell'"),
        (
            {"undo_safety_margin": UNDO_WINDOW},
            "engine.undo_safety_margin: must be shorter than the 10-day undo window",
        ),
        ({"bulk_min_group": 2000}, "engine.bulk_min_group: must not exceed bulk_max_group"),
        ({"nmvs_user": ""}, "engine.nmvs_user: must be the NMVS UserId the backend sends"),
    ],
)
def test_bad_settings_name_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        replace(S, **change)
    assert str(caught.value) == message


def neutral(answer_class: AnswerClass, **flags: bool) -> NmvsResult:
    """An answer from some backend whose codes the engine has never heard of."""
    return NmvsResult(
        answer_class=answer_class,
        return_code="X-42",
        description="",
        message="m",
        message_fr="m",
        alert=flags.pop("alert", False),
        hub_code=None,
        state=None,
        reasons=(),
        nmvs_trx_id=None,
        client_trx_id="c" * 32,
        server_time=None,
        **flags,
    )


def test_the_engine_decides_from_the_class_and_flags_never_from_the_code() -> None:
    d = Operation.DISPENSE
    assert judge_answer(d, neutral(AnswerClass.SUCCESS)) == Answer(Outcome.DONE)
    alert = judge_answer(d, neutral(AnswerClass.WRONG_STATE, alert=True))
    assert isinstance(alert, Answer) and alert.outcome is Outcome.ALERT
    refused = judge_answer(d, neutral(AnswerClass.NOT_ALLOWED))
    assert isinstance(refused, Answer) and refused.outcome is Outcome.REFUSED
    assert isinstance(
        judge_answer(d, neutral(AnswerClass.AUTHENTICATION, needs_operator=True)), Pause
    )
    lost = neutral(AnswerClass.TECHNICAL, retryable=True, may_have_applied=True)
    assert judge_answer(d, lost) == Reconcile()
    assert judge_answer(Operation.VERIFY, lost) == Retry()
    assert judge_answer(d, neutral(AnswerClass.RATE_LIMITED, retryable=True)) == Retry(
        rate_limited=True
    )
