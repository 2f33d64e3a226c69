"""Fixtures for the engine tests: a real simulator over loopback HTTP, the real Arvato client,
an engine on a real SQLite file in ``tmp_path``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.codes.pack import PackIdentifier
from gateway.engine import Engine, Settings, TransactionView
from gateway.nmvs.arvato import ArvatoClient, ArvatoConfig, Secret
from gateway.simulator.market import MarketData
from gateway.simulator.marketfile import generate_market
from gateway.simulator.server import RunningSimulator, running_simulator

USER = "SIMUSER1"
FAST = Settings(
    nmvs_user=USER,
    retry_initial=0.05,
    retry_max_delay=0.5,
    reconcile_delay=0.05,
    probe_interval_max=0.2,
)


def healthy_packs(data: MarketData, today: date) -> list[PackIdentifier]:
    """Every pack of the market that an NMVS would let a pharmacy dispense."""
    packs = []
    stamp = today.strftime("%y%m%d")
    for product in data.products:
        if product.withdrawn or product.intermarket:
            continue
        for batch in product.batches:
            if batch.recalled or batch.expiry[:4] + "31" <= stamp:
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


def arvato_config(url: str) -> ArvatoConfig:
    return ArvatoConfig(
        endpoint=url,
        client_login_id="SIMCLIENT1",
        user_id=USER,
        password=Secret("Simulator-Pass1"),
        software_supplier="tests",
        read_timeout=2.0,
    )


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


def settings(**changes: Any) -> Settings:
    return replace(FAST, **changes)


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    yield FakeClock()


__all__ = ["FAST", "USER", "Callable", "FakeClock", "Rig", "market_data", "settings", "wait_final"]
