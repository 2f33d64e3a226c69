"""Fixtures for the engine tests: a real simulator over loopback HTTP, the real Arvato client,
an engine on a real SQLite file in ``tmp_path``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.codes.pack import PackIdentifier
from gateway.engine import Engine, TransactionView
from gateway.simulator.market import MarketData
from tests.engine.support import Rig, market_data, simulator_rig


@pytest.fixture
def market() -> tuple[MarketData, list[PackIdentifier]]:
    return market_data()


@pytest.fixture
async def rig(
    market: tuple[MarketData, list[PackIdentifier]], tmp_path: Path
) -> AsyncIterator[Rig]:
    async with simulator_rig(market, tmp_path / "state") as rig:
        yield rig


async def wait_final(engine: Engine, trx_id: str, within: float = 10.0) -> TransactionView:
    deadline = time.monotonic() + within
    while True:
        view = await engine.get(trx_id)
        assert view is not None, trx_id
        if view.final:
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"{trx_id} still {view.status} after {within} s")
        await asyncio.sleep(0.01)


class FakeClock:
    """Injected clocks the test moves by hand: ``advance`` is time passing (the wall clock and
    the monotonic clock move together), ``step`` moves the wall clock alone (NTP, an operator).
    Pass both: ``Engine.open(..., clock=clock, monotonic=clock.monotonic)``."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.wall_step = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset + self.wall_step

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def step(self, seconds: float) -> None:
        self.wall_step += seconds


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    yield FakeClock()
