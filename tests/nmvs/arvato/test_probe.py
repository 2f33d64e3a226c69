"""The Arvato backend's self-test probe: NMVS checks against the simulator over real mutual TLS (trustme certificates)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.nmvs.arvato.probe import check_nmvs
from gateway.selftest.host import check_clock
from gateway.selftest.results import NmvsReport, Status
from gateway.simulator.server import RunningSimulator, running_simulator
from tests.brokers import free_port
from tests.nmvs.conftest import Pki
from tests.selftest.conftest import expiring_soon, market, nmvs_config, server_context, sim

__all__ = ["expiring_soon", "sim"]  # the self-test's fixtures


def statuses(report: NmvsReport) -> dict[str, Status]:
    return {r.name: r.status for r in report.results}


def result(report: NmvsReport, name: str):  # type: ignore[no-untyped-def]
    return next(r for r in report.results if r.name == name)


async def test_a_healthy_link(pki: Pki, sim: RunningSimulator) -> None:
    report = await check_nmvs(nmvs_config(pki, sim.single_url), datetime.now(UTC))
    assert statuses(report) == {
        "nmvs.certificate": Status.OK,
        "nmvs.reach": Status.OK,
        "nmvs.tls": Status.OK,
        "nmvs.latency": Status.OK,
        "nmvs.credentials": Status.OK,
        "nmvs.notices": Status.OK,
    }
    assert "CN=PHARMA01" in result(report, "nmvs.certificate").detail
    assert result(report, "nmvs.credentials").detail == (
        "user SIMUSER1 accepted (probe answered NMVS_FE_TX_02)"
    )
    assert report.time_source == "NMVS response timestamp"
    assert report.server_time is not None
    assert abs((report.server_time - datetime.now(UTC)).total_seconds()) < 5
    assert sim.core.state.alerts == []  # the probes touch no pack


async def test_a_certificate_expiring_in_ten_days_is_a_warning(
    pki: Pki, sim: RunningSimulator, expiring_soon: tuple[Path, Path]
) -> None:
    cert, key = expiring_soon
    report = await check_nmvs(
        nmvs_config(pki, sim.single_url, cert_file=cert, key_file=key), datetime.now(UTC)
    )
    certificate = result(report, "nmvs.certificate")
    assert certificate.status is Status.WARNING
    assert certificate.detail.endswith(": in 10 days")
    assert "request a new certificate" in certificate.fix
    assert statuses(report)["nmvs.credentials"] is Status.OK  # still valid: the link works


async def test_an_expired_certificate_fails_before_sending(pki: Pki, sim: RunningSimulator) -> None:
    config = nmvs_config(pki, sim.single_url, cert_file=pki.expired_cert, key_file=pki.expired_key)
    report = await check_nmvs(config, datetime.now(UTC))
    assert "EXPIRED 1 days ago" in result(report, "nmvs.certificate").detail
    assert statuses(report)["nmvs.tls"] is Status.FAIL
    assert statuses(report)["nmvs.credentials"] is Status.SKIPPED


async def test_a_server_from_another_ca_fails_the_tls_check(
    pki: Pki, sim: RunningSimulator
) -> None:
    report = await check_nmvs(
        nmvs_config(pki, sim.single_url, ca_file=pki.unknown_ca_file), datetime.now(UTC)
    )
    tls = result(report, "nmvs.tls")
    assert tls.status is Status.FAIL and "CERTIFICATE_VERIFY_FAILED" in tls.detail
    assert "nmvs.ca_file" in tls.fix
    assert report.server_time is None


async def test_a_client_certificate_the_server_does_not_trust(
    pki: Pki, sim: RunningSimulator
) -> None:
    config = nmvs_config(
        pki, sim.single_url, cert_file=pki.stranger_cert, key_file=pki.stranger_key
    )
    report = await check_nmvs(config, datetime.now(UTC))
    assert statuses(report)["nmvs.tls"] is Status.FAIL


async def test_a_wrong_password_fails_with_the_lockout_warning(
    pki: Pki, sim: RunningSimulator
) -> None:
    from gateway.nmvs.arvato import Secret

    report = await check_nmvs(
        nmvs_config(pki, sim.single_url, password=Secret("Wrong-Pass1")), datetime.now(UTC)
    )
    credentials = result(report, "nmvs.credentials")
    assert credentials.status is Status.FAIL and "NMVS_FE_AU_01" in credentials.detail
    assert "do not retry before fixing" in credentials.fix
    assert "Wrong-Pass1" not in str(report)
    assert report.time_source == "HTTP Date header" and report.server_time is not None


async def test_password_and_terms_notices_are_warnings(pki: Pki) -> None:
    data = market(password_expires_in_days=5, terms_to_accept_in_days=12)
    async with running_simulator(data, tls=server_context(pki)) as sim:
        report = await check_nmvs(nmvs_config(pki, sim.single_url), datetime.now(UTC))
    notices = result(report, "nmvs.notices")
    assert notices.status is Status.WARNING
    assert "NMVS_NOTIFY_AU_02: Your password expires in 5 days." in notices.detail
    assert "NMVS_NOTIFY_PMS_01" in notices.detail
    assert "change the password" in notices.fix and "terms and conditions" in notices.fix


async def test_an_expired_password_fails(pki: Pki) -> None:
    async with running_simulator(market(password_expired=True), tls=server_context(pki)) as sim:
        report = await check_nmvs(nmvs_config(pki, sim.single_url), datetime.now(UTC))
    assert "password has expired" in result(report, "nmvs.credentials").fix


async def test_an_nmvs_busy_now_is_a_warning_not_a_failure(pki: Pki, sim: RunningSimulator) -> None:
    from gateway.simulator.faults import parse_faults

    sim.faults.configure(parse_faults({"next": {"count": 1, "fault": "rate_limit"}}))
    report = await check_nmvs(nmvs_config(pki, sim.single_url), datetime.now(UTC))
    credentials = result(report, "nmvs.credentials")
    assert credentials.status is Status.WARNING and "could not answer now" in credentials.detail
    assert "again in a few minutes" in credentials.fix


async def test_a_slow_link_is_a_latency_warning(pki: Pki, sim: RunningSimulator) -> None:
    from gateway.simulator.faults import parse_faults

    sim.faults.configure(parse_faults({"latency_ms": 320}))
    report = await check_nmvs(nmvs_config(pki, sim.single_url), datetime.now(UTC))
    latency = result(report, "nmvs.latency")
    assert latency.status is Status.WARNING and "SLA 300 ms" in latency.detail


async def test_nothing_listening(pki: Pki) -> None:
    url = f"https://127.0.0.1:{free_port()}/WS_SINGLE_TRANSACTIONS_V1/SinglePackServiceV50"
    report = await check_nmvs(nmvs_config(pki, url), datetime.now(UTC))
    reach = result(report, "nmvs.reach")
    assert reach.status is Status.FAIL and "ConnectError" in reach.detail
    assert "network" in reach.fix


async def test_a_bulk_host_that_does_not_answer_is_named(pki: Pki, sim: RunningSimulator) -> None:
    """The credentials probe goes to the bulk service, which production runs on its own host."""
    bulk = f"https://127.0.0.1:{free_port()}/WS_BULK_TRANSACTIONS_V1/BulkServiceV50"
    report = await check_nmvs(
        nmvs_config(pki, sim.single_url, bulk_endpoint=bulk), datetime.now(UTC)
    )
    assert statuses(report)["nmvs.reach"] is Status.OK
    credentials = result(report, "nmvs.credentials")
    assert credentials.status is Status.WARNING
    assert f"could not answer now on its bulk service {bulk} (" in credentials.detail
    assert "check nmvs.bulk_url" in credentials.fix


async def test_the_clock_is_compared_with_the_nmvs_timestamp(
    pki: Pki, sim: RunningSimulator
) -> None:
    sim.core.advance(7200)  # the NMVS clock two hours ahead of ours
    report = await check_nmvs(nmvs_config(pki, sim.single_url), datetime.now(UTC))
    clock = check_clock(report.server_time, datetime.now(UTC), report.time_source)
    assert clock.status is Status.FAIL
    assert clock.detail.startswith("this PC is 7200") and "behind the NMVS" in clock.detail


def test_clock_thresholds() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert check_clock(now + timedelta(seconds=30), now, "x").status is Status.OK
    assert check_clock(now - timedelta(seconds=61), now, "x").status is Status.WARNING
    assert check_clock(None, now, "").status is Status.SKIPPED


def test_an_account_without_bulk_rights_is_not_a_credentials_failure() -> None:
    from gateway.nmvs.arvato.probe import _credentials_failure
    from gateway.nmvs.backend import NmvsPermanentError

    closed = _credentials_failure(
        NmvsPermanentError("G188 answered", return_code="NMVS_FE_AU_14"), "https://bulk"
    )
    assert closed.status is Status.WARNING and closed.detail.startswith("not confirmed")
    other = _credentials_failure(
        NmvsPermanentError("G188 answered", return_code="NMVS_FE_AU_04"), "https://bulk"
    )
    assert other.status is Status.FAIL
