"""Fixtures for the engine tests: a real simulator over loopback HTTP, the real Arvato client,
an engine on a real SQLite file in ``tmp_path``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.codes.pack import PackIdentifier
from gateway.engine import Engine, TransactionView
from gateway.nmvs.arvato import ArvatoClient
from gateway.simulator.market import MarketData
from gateway.simulator.marketfile import generate_market
from gateway.simulator.server import RunningSimulator, running_simulator
from tests.engine.support import arvato_config


def healthy_packs(data: MarketData, today: date) -> list[PackIdentifier]:
    """Every pack of the market that an NMVS would let a pharmacy dispense."""
    packs = []
    stamp = today.strftime("%y%m%d")
    for product in data.products:
        if product.withdrawn or product.intermarket:
            continue
        for batch in product.batches:
            last_day = batch.expiry if batch.expiry[4:] != "00" else batch.expiry[:4] + "31"
            if batch.recalled or last_day <= stamp:
                continue
            for serial in batch.serials:
                packs.append(
                    PackIdentifier("GTIN", product.product_code, batch.id, batch.expiry, serial)
                )
    return packs


def market_data(count: int = 300, seed: int = 4) -> tuple[MarketData, list[PackIdentifier]]:
    today = datetime.now(UTC).date()
    data = generate_market(count, today=today, seed=seed)
    return data, healthy_packs(data, today)


@dataclass
class Rig:
    sim: RunningSimulator
    client: ArvatoClient
    packs: list[PackIdentifier]
    state_dir: Path
    admin: httpx.AsyncClient

    async def faults(self, plan: dict[str, Any]) -> None:
        (await self.admin.post("/_sim/faults", json=plan)).raise_for_status()

    async def alerts(self) -> list[dict[str, Any]]:
        return (await self.admin.get("/_sim/alerts")).json()  # type: ignore[no-any-return]

    async def transactions(self) -> list[dict[str, Any]]:
        return (await self.admin.get("/_sim/transactions")).json()  # type: ignore[no-any-return]

    async def pack_state(self, pack: PackIdentifier) -> dict[str, Any]:
        r = await self.admin.get(f"/_sim/packs/{pack.product_code}/{pack.serial}")
        return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def market() -> tuple[MarketData, list[PackIdentifier]]:
    return market_data()


@pytest.fixture
async def rig(
    market: tuple[MarketData, list[PackIdentifier]], tmp_path: Path
) -> AsyncIterator[Rig]:
    data, packs = market
    async with running_simulator(data, plain_http=True) as sim:
        client = ArvatoClient(arvato_config(sim.single_url))
        async with httpx.AsyncClient(base_url=sim.url) as admin:
            try:
                yield Rig(sim, client, packs, tmp_path / "state", admin)
            finally:
                await client.aclose()


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
    """An injected wall clock the test moves by hand (``advance``)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    yield FakeClock()
