"""The Solidsoft backend against the simulator's REST face over real mutual TLS: its
self-test probe, and the engine's backlog replay through either endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.nmvs.secret import Secret
from gateway.nmvs.solidsoft import SolidsoftClient, SolidsoftConfig
from gateway.nmvs.solidsoft.probe import check_nmvs
from gateway.nmvs.tls import ClientTls
from gateway.selftest.results import Status
from gateway.simulator.market import Market
from gateway.simulator.server import RunningSimulator, running_simulator
from gateway.vocabulary import AnswerClass, Operation
from tests.nmvs.arvato.test_client_simulator import PASSWORD, market, pack, server_context
from tests.nmvs.conftest import Pki


@pytest.fixture
async def sim(pki: Pki) -> AsyncIterator[RunningSimulator]:
    async with running_simulator(
        Market(market()), tls=server_context(pki), protocol="solidsoft-rest"
    ) as running:
        yield running


def config(pki: Pki, sim: RunningSimulator, **changes: Any) -> SolidsoftConfig:
    tls = ClientTls(cert_file=pki.client_cert, key_file=pki.client_key, ca_file=pki.ca_file)
    secret = changes.pop("secret", PASSWORD)
    return SolidsoftConfig(
        sim.api_url, sim.token_url, "SITE0001", Secret(secret), tls=tls, **changes
    )


async def test_a_healthy_link_gets_a_token_reaches_the_api_and_raises_no_alert(
    pki: Pki, sim: RunningSimulator
) -> None:
    report = await check_nmvs(config(pki, sim), datetime.now(UTC))
    assert {r.name: r.status for r in report.results} == {
        "nmvs.certificate": Status.OK,
        "nmvs.credentials": Status.OK,
        "nmvs.reach": Status.OK,
        "nmvs.latency": Status.OK,
    }
    assert report.time_source == "HTTP Date header"
    assert report.server_time is not None
    assert abs((report.server_time - datetime.now(UTC)).total_seconds()) < 5
    assert sim.core.state.alerts == []
    assert all(p.history == [] for p in sim.core.state.packs.values())  # no pack touched


async def test_a_wrong_secret_fails_the_credentials_check_after_one_login(
    pki: Pki, sim: RunningSimulator
) -> None:
    report = await check_nmvs(config(pki, sim, secret="Wrong-Secret-1"), datetime.now(UTC))
    credentials = next(r for r in report.results if r.name == "nmvs.credentials")
    assert credentials.status is Status.FAIL
    assert "invalid_client" in credentials.detail
    assert "Wrong-Secret-1" not in credentials.detail + credentials.fix
    assert sim.core.state.accounts[("PHARMA01", "SITE0001")].failed_logins == 1


@pytest.mark.parametrize("endpoint", ["recovery", "bulk"])
async def test_a_backlog_replays_through_either_endpoint(
    pki: Pki, sim: RunningSimulator, endpoint: str
) -> None:
    packs = [pack(f"SN03{i}") for i in range(3)]
    async with SolidsoftClient(config(pki, sim, backlog_endpoint=endpoint)) as client:
        ticket = await client.submit_bulk(Operation.DISPENSE, packs, client_trx_id="b" * 32)
        assert f"/api/{'recovery' if endpoint == 'recovery' else 'product'}/packs/" in (
            ticket.nmvs_trx_id
        )
        pending = await client.bulk_result(ticket, client_trx_id="c" * 32)
        assert not pending.ready
        sim.core.advance(5)
        done = await client.bulk_result(ticket, client_trx_id="d" * 32)
    assert done.ready
    assert [(p.serial, p.result.answer_class, p.result.reasons) for p in done.packs] == [
        (p.serial, AnswerClass.SUCCESS, ("SUPPLIED",)) for p in packs
    ]
    assert {sim.core.pack(p.product_code, p.serial).reason for p in packs} == {"SUPPLIED"}  # type: ignore[union-attr]
