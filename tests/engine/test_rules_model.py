"""Model check: the pure rules driven against the simulator's pure market (no HTTP), over random
sequences of one gateway's operations on one pack, with lost answers and days passing.

Property: when only this gateway acts on its pack, no sequence of requests, lost answers and
clock advances makes the NMVS raise an alert — every would-be alert is answered locally.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.engine.model import Outcome, Settings
from gateway.engine.rules import (
    Answer,
    LedgerEntry,
    Reconcile,
    Resend,
    Retry,
    Send,
    decide,
    judge_answer,
    judge_reconcile,
    ledger_after,
    observe,
)
from gateway.nmvs.arvato.soap import USE_CASE
from gateway.nmvs.backend import NmvsResult
from gateway.simulator.inmemory import result_of
from gateway.simulator.market import Market, PackRequest, RequestHeader
from gateway.simulator.marketfile import generate_market
from gateway.vocabulary import Operation
from tests.engine.support import healthy_packs

S = Settings(nmvs_user="SIMUSER1")
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DATA = generate_market(60, today=START.date(), seed=3)
PACK = healthy_packs(DATA, START.date())[0]
OPS = [
    Operation.VERIFY,
    Operation.DISPENSE,
    Operation.UNDO_DISPENSE,
    Operation.DESTROY,
    Operation.UNDO_DESTROY,
]


@dataclass(frozen=True)
class Step:
    op: Operation
    answer_lost: bool
    days_later: float


steps = st.lists(
    st.builds(
        Step,
        op=st.sampled_from(OPS),
        answer_lost=st.booleans(),
        days_later=st.sampled_from([0.0, 0.0, 0.0, 1.0, 9.5, 11.0]),
    ),
    max_size=12,
)


class World:
    """The market and the gateway's ledger, with one clock."""

    def __init__(self) -> None:
        self.now = START.timestamp()
        self.market = Market(DATA, time_source=lambda: datetime.fromtimestamp(self.now, UTC))
        self.ledger = LedgerEntry()
        self.ids = (f"{n:032x}" for n in itertools.count(1))

    def call(self, op: Operation, ref: str | None = None) -> NmvsResult:
        client_trx_id = next(self.ids)
        header = RequestHeader("SIMCLIENT1", "SIMUSER1", "Simulator-Pass1", client_trx_id)
        request = PackRequest(
            USE_CASE[op], PACK.scheme, PACK.product_code, PACK.serial, PACK.batch, PACK.expiry, ref
        )
        return result_of(self.market.single(header, request), client_trx_id)

    def finish(self, op: Operation, outcome: Outcome, result: NmvsResult, at: float) -> None:
        self.ledger = ledger_after(
            observe(self.ledger, result, self.now),
            op,
            outcome,
            user=S.nmvs_user,
            client_trx_id=result.client_trx_id,
            nmvs_trx_id=result.nmvs_trx_id,
            changed_at=at,
        )

    def request(self, step: Step) -> None:
        """What the engine does with one request: firewall, send, judge, reconcile."""
        decision = decide(step.op, self.ledger, self.now, S)
        while isinstance(decision, Send):
            started = self.now
            result = self.call(step.op, decision.ref_client_trx_id)
            verdict = judge_answer(step.op, result)
            if step.answer_lost and step.op.changes_state:
                verdict = Reconcile()  # the NMVS applied it, the gateway never saw the answer
            else:
                self.ledger = observe(self.ledger, result, self.now)
            if isinstance(verdict, Reconcile):
                verify = self.call(Operation.VERIFY)
                verdict = judge_reconcile(step.op, verify, self.ledger, started, self.now, S)
                result = verify
            assert not isinstance(verdict, Retry)
            if isinstance(verdict, Resend):
                step = Step(step.op, answer_lost=False, days_later=0)
                decision = decide(step.op, self.ledger, self.now, S)
                continue
            assert isinstance(verdict, Answer), verdict
            self.finish(step.op, verdict.outcome, result, started)
            return


@settings(max_examples=300)
@given(steps)
def test_one_gateway_alone_never_raises_an_alert(sequence: list[Step]) -> None:
    world = World()
    for step in sequence:
        world.now += step.days_later * 86_400
        world.request(step)
    assert world.market.state.alerts == [], [s for s in sequence]


def test_the_model_is_not_vacuous() -> None:
    """The same sequence without the firewall would raise alerts (PCK_22, then PCK_20)."""
    world = World()
    assert world.call(Operation.DISPENSE).success
    assert world.call(Operation.DISPENSE).return_code != "NMVS_SUCCESS"
    world.now += 11 * 86_400
    world.call(Operation.UNDO_DISPENSE)
    assert len(world.market.state.alerts) >= 1
    assert date.fromtimestamp(world.now) > START.date()
