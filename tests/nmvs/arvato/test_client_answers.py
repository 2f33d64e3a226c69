"""ArvatoClient's classification of answers a real NMVS might give but the simulator does not:
malformed or hostile XML, odd HTTP statuses, transport exceptions. An httpx MockTransport
stands in for the network here only; everything else runs against the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import structlog

from gateway.codes.pack import PackIdentifier
from gateway.nmvs.arvato import ArvatoClient, ArvatoConfig, Secret
from gateway.nmvs.arvato import client as client_module
from gateway.nmvs.backend import (
    NmvsAmbiguousError,
    NmvsError,
    NmvsNotSentError,
    NmvsPermanentError,
    NmvsRateLimitedError,
)
from gateway.vocabulary import Operation
from tests.nmvs.arvato.test_soap import BILLION_LAUGHS, REFERENCE_G120_RESPONSE, TRX

PACK = PackIdentifier("GTIN", "05000456013482", "00001", "261200", "0000000014")
CONFIG = ArvatoConfig(
    endpoint="http://nmvs.test/WS_SINGLE_TRANSACTIONS_V1/SinglePackServiceV50",
    client_login_id="PHARMA01",
    user_id="SITE0001",
    password=Secret("Pharma-Secret-1!"),
    software_supplier="Test LGO",
)


def answer(code: str = "NMVS_SUCCESS", wrapper: str = "G120Response", echo: str = TRX) -> bytes:
    return (
        REFERENCE_G120_RESPONSE.replace("G120Response", wrapper)
        .replace('ns1:code="NMVS_SUCCESS"', f'ns1:code="{code}"')
        .replace(TRX, echo)
        .encode()
    )


async def call(handler: Callable[[httpx.Request], httpx.Response], operation: Operation) -> object:
    async with ArvatoClient(CONFIG, transport=httpx.MockTransport(handler)) as arvato:
        return await arvato.execute(operation, PACK, client_trx_id=TRX)


def reply(status: int, body: bytes, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, content=body, headers=headers)


HTML = b"<html><body>Service Unavailable</body></html>"
V4 = answer().replace(b"v5.0", b"v4.0")


@pytest.mark.parametrize(
    ("status", "body", "on_verify", "on_dispense"),
    [
        (200, b"not xml at all", NmvsPermanentError, NmvsAmbiguousError),
        (200, b"", NmvsPermanentError, NmvsAmbiguousError),
        (200, V4, NmvsPermanentError, NmvsAmbiguousError),
        (200, BILLION_LAUGHS, NmvsPermanentError, NmvsAmbiguousError),
        (500, HTML, NmvsAmbiguousError, NmvsAmbiguousError),
        (503, b"", NmvsAmbiguousError, NmvsAmbiguousError),
        (408, b"", NmvsAmbiguousError, NmvsAmbiguousError),
        (404, HTML, NmvsPermanentError, NmvsPermanentError),
        (401, b"", NmvsPermanentError, NmvsPermanentError),
        (403, HTML, NmvsPermanentError, NmvsPermanentError),
        (301, b"", NmvsPermanentError, NmvsPermanentError),
    ],
)
async def test_unreadable_answers(
    status: int, body: bytes, on_verify: type[NmvsError], on_dispense: type[NmvsError]
) -> None:
    for operation, expected in ((Operation.VERIFY, on_verify), (Operation.DISPENSE, on_dispense)):
        with pytest.raises(expected) as caught:
            await call(reply(status, body), operation)
        assert "unreadable answer" in str(caught.value)
        assert type(caught.value) is expected


async def test_billion_laughs_is_refused_as_a_doctype() -> None:
    with pytest.raises(NmvsPermanentError, match="DOCTYPE"):
        await call(reply(200, BILLION_LAUGHS.replace(b"G110", b"G120")), Operation.VERIFY)


async def test_an_answer_for_another_transaction_is_ambiguous() -> None:
    with pytest.raises(NmvsAmbiguousError, match="echoes ClientTrxId"):
        await call(reply(200, answer(echo="f" * 32)), Operation.DISPENSE)


async def test_an_unknown_return_code_is_a_business_result() -> None:
    result = await call(reply(200, answer("NMVS_NC_PCK_99")), Operation.DISPENSE)
    assert result.return_code == "NMVS_NC_PCK_99"  # type: ignore[attr-defined]
    assert result.alert is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("NMVS_TI_AU_01", NmvsNotSentError),
        ("NMVS_FI_BAT_01", NmvsNotSentError),
        ("NMVS_WF_NC_02", NmvsNotSentError),
        ("NMVS_ERROR", NmvsAmbiguousError),
        ("NMVS_TI_RT_02", NmvsAmbiguousError),
        ("NMVS_TI_XM_01", NmvsAmbiguousError),
        ("NMVS_FE_PKI_01", NmvsPermanentError),
        ("NMVS_FE_AU_23", NmvsPermanentError),
        ("NMVS_TE_XM_01", NmvsPermanentError),
        ("NMVS_FI_SE_CLI_01", NmvsRateLimitedError),
    ],
)
async def test_technical_return_codes_are_raised_with_the_code(
    code: str, error: type[NmvsError]
) -> None:
    with pytest.raises(error) as caught:
        await call(reply(200, answer(code)), Operation.DISPENSE)
    assert type(caught.value) is error
    assert caught.value.return_code == code


async def test_http_429_without_a_body_reads_an_http_date_retry_after() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    with pytest.raises(NmvsRateLimitedError) as caught:
        await call(reply(429, HTML, **{"Retry-After": later}), Operation.DISPENSE)
    assert caught.value.retry_after is not None and 20 < caught.value.retry_after <= 30


async def test_an_oversized_answer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "MAX_ANSWER_BYTES", 1000)
    with pytest.raises(NmvsAmbiguousError, match="larger than"):
        await call(reply(200, answer() + b" " * 2000), Operation.DISPENSE)


@pytest.mark.parametrize(
    ("exception", "error"),
    [
        (httpx.ConnectTimeout("t"), NmvsNotSentError),
        (httpx.PoolTimeout("t"), NmvsNotSentError),
        (httpx.ConnectError("refused"), NmvsNotSentError),
        (httpx.ReadTimeout("t"), NmvsAmbiguousError),
        (httpx.WriteTimeout("t"), NmvsAmbiguousError),
        (httpx.WriteError("w"), NmvsAmbiguousError),
        (httpx.ReadError("r"), NmvsAmbiguousError),
        (httpx.RemoteProtocolError("Server disconnected"), NmvsAmbiguousError),
        (httpx.UnsupportedProtocol("ftp"), NmvsPermanentError),
    ],
)
async def test_transport_exceptions(exception: httpx.HTTPError, error: type[NmvsError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exception

    with pytest.raises(error) as caught:
        await call(handler, Operation.DISPENSE)
    assert type(caught.value) is error


async def test_a_gzip_encoded_answer_is_read_once() -> None:
    import gzip

    body = gzip.compress(answer())
    result = await call(reply(200, body, **{"Content-Encoding": "gzip"}), Operation.DISPENSE)
    assert result.return_code == "NMVS_SUCCESS"  # type: ignore[attr-defined]


async def test_a_server_echoing_the_password_does_not_leak_it() -> None:
    password = CONFIG.password.reveal()
    echoing = answer(wrapper="G110Response").replace(
        b"Successfully processed.", f"bad password {password}".encode()
    )
    result = await call(reply(200, echoing), Operation.VERIFY)
    assert result.description == "bad password ***"  # type: ignore[attr-defined]
    refused = answer("NMVS_FE_AU_03", wrapper="G110Response").replace(
        b"Successfully processed.", password.encode()
    )
    fault = (
        b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>'
        b"<env:Fault><env:Reason><env:Text>" + password.encode() + b"</env:Text></env:Reason>"
        b"</env:Fault></env:Body></env:Envelope>"
    )
    for body in (refused, fault):
        with structlog.testing.capture_logs() as logs, pytest.raises(NmvsError) as caught:
            await call(reply(500, body), Operation.VERIFY)
        assert password not in str(caught.value)
        assert password not in repr(logs)


async def test_a_trickling_answer_hits_the_total_timeout() -> None:
    async def trickle() -> AsyncIterator[bytes]:
        for byte in answer():
            await asyncio.sleep(0.05)
            yield bytes([byte])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=trickle())

    config = replace(CONFIG, total_timeout=0.3)
    async with ArvatoClient(config, transport=httpx.MockTransport(handler)) as arvato:
        with pytest.raises(
            NmvsAmbiguousError, match=r"no complete answer within total_timeout \(0.3 s\)"
        ):
            await arvato.execute(Operation.DISPENSE, PACK, client_trx_id=TRX)
