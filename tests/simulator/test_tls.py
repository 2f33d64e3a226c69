"""HTTPS with client-certificate verification, certificates from trustme."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from gateway.simulator.faults import parse_faults
from gateway.simulator.server import TlsSettings, running_simulator
from tests.simulator.markets import MARKET
from tests.simulator.soapxml import read_reply, single


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls(ca: trustme.CA, tmp_path: Path) -> TlsSettings:
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(tmp_path / "server.pem")
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(tmp_path / "server.pem", append=True)
    server.private_key_pem.write_to_path(tmp_path / "server.key")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    return TlsSettings(tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem")


def client_context(
    ca: trustme.CA, *, with_cert: bool, cert_ca: trustme.CA | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if with_cert:
        (cert_ca or ca).issue_cert("pharmacy-0001@example.test").configure_cert(context)
    return context


async def test_a_client_certificate_is_accepted(ca: trustme.CA, tls: TlsSettings) -> None:
    async with running_simulator(MARKET, tls=tls) as sim:
        assert sim.url.startswith("https://127.0.0.1:")
        async with httpx.AsyncClient(verify=client_context(ca, with_cert=True)) as http:
            response = await http.post(
                sim.single_url, content=single("G110"), headers={"Content-Type": "text/xml"}
            )
    assert read_reply(response.status_code, response.content).code == "NMVS_SUCCESS"


@pytest.mark.parametrize("client_cert", ["none", "from another CA"])
async def test_connections_without_a_trusted_client_certificate_are_refused(
    ca: trustme.CA, tls: TlsSettings, client_cert: str
) -> None:
    if client_cert == "none":
        context = client_context(ca, with_cert=False)
    else:
        context = client_context(ca, with_cert=True, cert_ca=trustme.CA())
    async with running_simulator(MARKET, tls=tls) as sim:
        async with httpx.AsyncClient(verify=context) as http:
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                await http.post(
                    sim.single_url, content=single("G110"), headers={"Content-Type": "text/xml"}
                )
        assert sim.core.state.transactions == []


async def test_reset_after_processing_over_tls(ca: trustme.CA, tls: TlsSettings) -> None:
    async with running_simulator(MARKET, tls=tls) as sim:
        sim.faults.configure(parse_faults({"next": {"count": 1, "fault": "reset_after"}}))
        async with httpx.AsyncClient(verify=client_context(ca, with_cert=True)) as http:
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                await http.post(
                    sim.single_url, content=single("G120"), headers={"Content-Type": "text/xml"}
                )
        assert sim.core.pack("05000456013482", "0000000014").reason == "SUPPLIED"
