"""Fixtures for the self-test checks: the NMVS test PKI (shared with the NMVS client tests), a
real mosquitto (shared with the MQTT and daemon tests) and the NMVS simulator over mutual TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.nmvs.arvato import ArvatoConfig, Secret
from gateway.simulator.market import MarketData, UserSpec
from gateway.simulator.server import RunningSimulator, running_simulator
from tests.brokers import broker, tls_broker
from tests.engine.conftest import market_data
from tests.nmvs.arvato.test_client_simulator import client_config, server_context
from tests.nmvs.conftest import Pki, pki

__all__ = ["broker", "pki", "server_context", "tls_broker"]

CLIENT, USER, PASSWORD = "SIMCLIENT1", "SIMUSER1", "Simulator-Pass1"


def market(**user: object) -> MarketData:
    """A small generated market whose only user is ours (``user``: UserSpec fields to change)."""
    data, _ = market_data(20)
    return MarketData((replace(UserSpec(CLIENT, USER, PASSWORD), **user),), data.products)  # type: ignore[arg-type]


def nmvs_config(pki: Pki, url: str, **changes: object) -> ArvatoConfig:
    """The NMVS client tests' configuration, with our simulator user."""
    user = {"client_login_id": CLIENT, "user_id": USER, "password": Secret(PASSWORD)}
    return client_config(pki, url, **{**user, **changes})


@pytest.fixture
async def sim(pki: Pki) -> AsyncIterator[RunningSimulator]:
    async with running_simulator(market(), tls=server_context(pki)) as running:
        yield running


@pytest.fixture(scope="session")
def expiring_soon(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A client certificate from the NMVS CA that expires in 10 days (certificate, key)."""
    now = datetime.now(UTC)
    leaf = pki.ca.issue_cert(
        "soon.pharmacy.test",
        not_before=now - timedelta(days=355),
        not_after=now + timedelta(days=10, hours=1),
    )
    directory = tmp_path_factory.mktemp("soon")
    cert, key = directory / "soon.crt", directory / "soon.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return cert, key
