"""Helpers shared by the engine tests, the crash-test subprocess, the daemon tests and the
benches (no pytest import): engine settings for tests, the Arvato client's configuration, and
the simulator with its admin API (:class:`Rig`, :func:`simulator_rig`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from gateway.codes.pack import PackIdentifier
from gateway.engine import Settings
from gateway.nmvs.arvato import ArvatoClient, ArvatoConfig, Secret
from gateway.simulator.market import Market, MarketData, MarketRules
from gateway.simulator.marketfile import generate_market
from gateway.simulator.server import RunningSimulator, running_simulator

USER = "SIMUSER1"
FAST = Settings(
    nmvs_user=USER,
    retry_initial=0.05,
    retry_max_delay=0.5,
    reconcile_delay=0.05,
    reconcile_horizon=0.2,  # verifies at 0.05 and 0.2 s after the send, then a resend
    probe_interval_max=0.2,
)


def settings(**changes: Any) -> Settings:
    """Engine settings with short delays for tests."""
    return replace(FAST, **changes)


def arvato_config(url: str) -> ArvatoConfig:
    return ArvatoConfig(
        endpoint=url,
        client_login_id="SIMCLIENT1",
        user_id=USER,
        password=Secret("Simulator-Pass1"),
        software_supplier="tests",
        read_timeout=2.0,
    )


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
        r = await self.admin.get(f"/_sim/packs/{pack.product_code}/{quote(pack.serial, safe='/')}")
        return r.json()  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def simulator_rig(
    market: tuple[MarketData, list[PackIdentifier]],
    state_dir: Path = Path(),
    rules: MarketRules | None = None,
) -> AsyncIterator[Rig]:
    """The simulator on a free loopback port, the real Arvato client to it, and its admin API.

    ``state_dir`` is where an engine under test keeps its database (unused by daemon tests,
    whose configuration names it)."""
    data, packs = market
    async with (
        running_simulator(Market(data, rules=rules), plain_http=True) as sim,
        httpx.AsyncClient(base_url=sim.url) as admin,
    ):
        client = ArvatoClient(arvato_config(sim.single_url))
        try:
            yield Rig(sim, client, packs, state_dir, admin)
        finally:
            await client.aclose()
