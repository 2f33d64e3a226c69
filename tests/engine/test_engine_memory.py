"""The engine over the in-memory backend (the simulator's pure market, no HTTP): clocks are
injected on both sides — the gateway's wall and monotonic clocks, the market's time — and the
assertions name operations and answer classes, never a protocol's use cases.

The backend contract suite (``tests/nmvs/test_contract.py``) holds the in-memory backend to the
same answers as the Arvato client over HTTPS; these tests use it where a clock must move far.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.codes.pack import PackIdentifier
from gateway.engine import Engine, Outcome, Request, TransactionView
from gateway.simulator.faults import parse_faults
from gateway.simulator.inmemory import Call, MarketBackend
from gateway.simulator.market import Market, MarketRules
from gateway.vocabulary import AnswerClass, Operation
from tests.engine.conftest import FakeClock, wait_final
from tests.engine.support import market_data, settings

D, U, V = Operation.DISPENSE, Operation.UNDO_DISPENSE, Operation.VERIFY


@dataclass
class World:
    """The market with its own clock, the backend over it, the gateway's clocks."""

    market: Market
    backend: MarketBackend
    clock: FakeClock
    packs: list[PackIdentifier]
    state_dir: Path
    market_offset: float = 0.0

    def advance(self, seconds: float) -> None:
        """Time passes for everyone."""
        self.clock.advance(seconds)
        self.market_offset += seconds

    def engine(self, **tuning: float) -> AbstractAsyncContextManager[Engine]:
        return Engine.open(
            self.state_dir,
            self.backend,
            settings(**tuning),
            clock=self.clock,
            monotonic=self.clock.monotonic,
        )

    def changes(self, pack: PackIdentifier) -> list[Call]:
        return [c for c in self.backend.calls if c.serial == pack.serial and c.op is not V]


@pytest.fixture
async def world(tmp_path: Path, clock: FakeClock) -> AsyncIterator[World]:
    data, packs = market_data(count=120, seed=31)
    holder: list[World] = []

    def market_time() -> datetime:
        offset = holder[0].market_offset if holder else 0.0
        return datetime.now(UTC) + timedelta(seconds=offset)

    market = Market(data, rules=MarketRules(own_repeat_info_limit=None), time_source=market_time)
    backend = MarketBackend(market)
    holder.append(World(market, backend, clock, packs, tmp_path / "state"))
    yield holder[0]
    await backend.aclose()


async def run(engine: Engine, request: Request) -> TransactionView:
    return await wait_final(engine, (await engine.submit(request)).view.id)


async def test_an_undo_past_the_nmvs_window_is_refused_with_the_gateway_8_h_behind(
    world: World,
) -> None:
    pack = world.packs[0]
    world.clock.advance(-8 * 3600)  # the gateway's clock only
    async with world.engine() as engine:
        assert (await run(engine, Request(D, pack, id="sale"))).outcome is Outcome.DONE
        world.advance(10 * 86_400 + 3600)
        await run(engine, Request(V, pack, id="look"))  # a dated answer shows the offset
        undo = await run(engine, Request(U, pack, id="undo"))
    assert undo.outcome is Outcome.UNDO_NOT_ALLOWED
    assert [c.op for c in world.changes(pack)] == [D]  # never sent: no PCK_20 alert
    assert world.market.state.alerts == []


async def test_a_dispense_the_nmvs_applies_late_is_reconciled_never_sent_twice(
    world: World,
) -> None:
    pack = world.packs[1]
    async with world.engine(reconcile_horizon=5.0) as engine:
        await run(engine, Request(V, pack, id="seen"))
        world.backend.faults.configure(
            parse_faults({"next": {"count": 1, "fault": "apply_late"}, "apply_late_ms": 300})
        )
        late = await run(engine, Request(D, pack, id="late"))
    assert late.outcome is Outcome.RECONCILED
    assert world.changes(pack) == [Call(D, pack.serial, None)]  # one send, its answer lost
    assert world.market.state.alerts == []
    verifies = [c.answer_class for c in world.backend.calls if c.op is V]
    assert verifies[-1] is AnswerClass.SUCCESS and len(verifies) >= 3  # seen, old state, applied
