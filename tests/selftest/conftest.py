"""Fixtures for the self-test checks: the NMVS test PKI (shared with the NMVS client tests), a
real mosquitto (shared with the MQTT and daemon tests) and the NMVS simulator over mutual TLS."""

from __future__ import annotations

import ssl
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
from tests.nmvs.arvato.conftest import Pki, pki

__all__ = ["broker", "pki", "tls_broker"]

CLIENT, USER, PASSWORD = "SIMCLIENT1", "SIMUSER1", "Simulator-Pass1"


def market(**user: object) -> MarketData:
    """A small generated market whose only user is ours (``user``: UserSpec fields to change)."""
    data, _ = market_data(20)
    return MarketData((replace(UserSpec(CLIENT, USER, PASSWORD), **user),), data.products)  # type: ignore[arg-type]


def server_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pki.server.configure_cert(context)
    context.load_verify_locations(cafile=str(pki.ca_file))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def nmvs_config(pki: Pki, url: str, **changes: object) -> ArvatoConfig:
    config = ArvatoConfig(
        endpoint=url,
        client_login_id=CLIENT,
        user_id=USER,
        password=Secret(PASSWORD),
        software_supplier="nmvs-gateway selftest",
        cert_file=pki.client_cert,
        key_file=pki.client_key,
        ca_file=pki.ca_file,
        read_timeout=3.0,
    )
    return replace(config, **changes)  # type: ignore[arg-type]


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
