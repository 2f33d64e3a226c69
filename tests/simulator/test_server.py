"""Admin API and fault injection, observed with raw httpx over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from gateway.simulator.market import BatchSpec, Market, MarketData, ProductSpec
from gateway.simulator.server import SINGLE_PATH, RunningSimulator, running_simulator
from tests.simulator.markets import GTIN, MARKET, Clock
from tests.simulator.soapxml import header_xml, read_reply, single


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(
        Market(MARKET, time_source=Clock()), plain_http=True, admin=True
    ) as running:
        yield running


@pytest.fixture
async def http(sim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        yield client


async def send(http: httpx.AsyncClient, xml: str) -> httpx.Response:
    return await http.post(SINGLE_PATH, content=xml.encode(), headers={"Content-Type": "text/xml"})


async def pack_state(http: httpx.AsyncClient, serial: str = "0000000014") -> dict:
    response = await http.get(f"/_sim/packs/{GTIN}/{serial}")
    assert response.status_code == 200
    return response.json()


# ---------------------------------------------------------------- admin


async def test_pack_view_transactions_and_reset(http: httpx.AsyncClient) -> None:
    await send(http, single("G120", header=header_xml(trx="DISPENSE-00000001")))
    pack = await pack_state(http)
    assert (pack["state"], pack["reasons"], pack["set_by_user_id"], pack["set_client_trx_id"]) == (
        "INACTIVE",
        ["SUPPLIED"],
        "SITE0001",
        "DISPENSE-00000001",
    )
    assert [(h["use_case"], h["return_code"]) for h in pack["history"]] == [
        ("G120", "NMVS_SUCCESS")
    ]
    (record,) = (await http.get("/_sim/transactions")).json()
    assert record == {
        "use_case": "G120",
        "client_trx_id": "DISPENSE-00000001",
        "nmvs_trx_id": record["nmvs_trx_id"],
        "user_id": "SITE0001",
        "product_code": GTIN,
        "serial": "0000000014",
        "batch": "00001",
        "return_code": "NMVS_SUCCESS",
        "at": "2025-01-31T10:00:00Z",
    }
    assert (await http.post("/_sim/reset")).status_code == 200
    assert (await pack_state(http))["state"] == "ACTIVE"
    assert (await http.get("/_sim/transactions")).json() == []


async def test_pack_view_of_a_serial_with_a_slash(http: httpx.AsyncClient) -> None:
    response = await http.get(f"/_sim/packs/{GTIN}/abc-def/12")
    assert (response.status_code, response.json()["serial"]) == (200, "abc-def/12")


async def test_pack_view_of_serials_with_url_characters_percent_encoded() -> None:
    # set 82 allows ? and %: an admin client must percent-encode them, and the view decodes them
    market = MarketData(
        users=MARKET.users,
        products=(ProductSpec("GTIN", GTIN, (BatchSpec("B1", "301200", ("a?b%c", "x/y%2F")),)),),
    )
    async with (
        running_simulator(market, plain_http=True, admin=True) as sim,
        httpx.AsyncClient(base_url=sim.url) as client,
    ):
        for serial in ("a?b%c", "x/y%2F"):
            response = await client.get(f"/_sim/packs/{GTIN}/{quote(serial, safe='/')}")
            assert (response.status_code, response.json()["serial"]) == (200, serial)


async def test_unknown_pack_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get(f"/_sim/packs/{GTIN}/NOPE")
    assert response.status_code == 404 and "NOPE" in response.json()["error"]


async def test_clock_advance(http: httpx.AsyncClient) -> None:
    response = await http.post("/_sim/clock", json={"advance_seconds": 86400})
    assert response.json() == {"now": "2025-02-01T10:00:00Z"}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/_sim/clock", b"{not json", "the body is not valid JSON"),
        ("/_sim/clock", b"[1]", "the body must be a JSON object"),
        ("/_sim/clock", b'{"advance": 3}', 'expected {"advance_seconds": N}'),
        ("/_sim/clock", b'{"advance_seconds": -3}', "must not be negative"),
        ("/_sim/clock", b'{"advance_seconds": NaN}', 'expected {"advance_seconds": N}'),
        ("/_sim/clock", b'{"advance_seconds": Infinity}', 'expected {"advance_seconds": N}'),
        ("/_sim/clock", b'{"advance_seconds": 1e400}', 'expected {"advance_seconds": N}'),
        ("/_sim/clock", b'{"advance_seconds": 1' + b"0" * 30 + b"}", "more than 3.15576e+09 s"),
        ("/_sim/clock", b'{"advance_seconds": 1e300}', "more than 3.15576e+09 s"),
        ("/_sim/faults", b'{"latency_ms": NaN}', "latency_ms must be a finite non-negative"),
        ("/_sim/faults", b'{"latency_ms": Infinity}', "latency_ms must be a finite non-negative"),
        ("/_sim/faults", b'{"http_500_rate": NaN}', "http_500_rate must be a finite non-negative"),
        (
            "/_sim/faults",
            b'{"latency_ms": {"uniform": [1, 1' + b"0" * 400 + b"]}}",
            "latency_ms.uniform[1] must be a finite non-negative number",
        ),
        ("/_sim/faults", b'{"http_500_rate": 2}', "http_500_rate must be between 0 and 1, not 2.0"),
        ("/_sim/faults", b'{"reset_rate": 0.5}', "unknown key 'reset_rate'"),
        (
            "/_sim/faults",
            b'{"next": {"count": 0, "fault": "http_500"}}',
            "next.count must be a positive integer",
        ),
        (
            "/_sim/faults",
            b'{"next": {"count": 1, "fault": "explode"}}',
            "next.fault must be one of",
        ),
        ("/_sim/faults", b'{"latency_ms": {"uniform": [900, 100]}}', "MIN <= MAX"),
        ("/_sim/faults", b'{"http_500_rate": 0.6, "rate_limit_rate": 0.6}', "add up to at most 1"),
    ],
)
async def test_bad_admin_json_is_400_with_a_message(
    http: httpx.AsyncClient, path: str, body: bytes, message: str
) -> None:
    response = await http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert message in response.json()["error"]


async def test_admin_is_off_by_default() -> None:
    async with (
        running_simulator(MARKET, plain_http=True, admin=False) as sim,
        httpx.AsyncClient() as http,
    ):
        assert (await http.get(sim.url + "/_sim/alerts")).status_code == 404


# ---------------------------------------------------------------- faults


async def set_faults(http: httpx.AsyncClient, faults: dict) -> None:
    response = await http.post("/_sim/faults", json=faults)
    assert response.status_code == 200, response.text


async def test_reset_before_processing_changes_nothing(http: httpx.AsyncClient) -> None:
    await set_faults(http, {"next": {"count": 1, "fault": "reset_before"}})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await send(http, single("G120"))
    assert (await pack_state(http))["state"] == "ACTIVE"
    assert (await http.get("/_sim/transactions")).json() == []
    assert (
        read_reply(*(lambda r: (r.status_code, r.content))(await send(http, single("G120")))).code
        == "NMVS_SUCCESS"
    )


async def test_reset_after_processing_changes_state_without_answer(http: httpx.AsyncClient) -> None:
    await set_faults(http, {"next": {"count": 1, "fault": "reset_after"}})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await send(http, single("G120"))
    pack = await pack_state(http)
    assert (pack["state"], pack["reasons"]) == ("INACTIVE", ["SUPPLIED"])


async def test_apply_late_answers_nothing_and_changes_state_later(
    http: httpx.AsyncClient,
) -> None:
    await set_faults(http, {"next": {"count": 1, "fault": "apply_late"}, "apply_late_ms": 300})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await send(http, single("G120"))
    assert (await pack_state(http))["state"] == "ACTIVE"  # not yet
    async with asyncio.timeout(5):
        while (await pack_state(http))["state"] == "ACTIVE":  # noqa: ASYNC110 - server state
            await asyncio.sleep(0.02)
    pack = await pack_state(http)
    assert (pack["state"], pack["reasons"]) == ("INACTIVE", ["SUPPLIED"])


async def test_http_500_does_not_process(http: httpx.AsyncClient) -> None:
    await set_faults(http, {"http_500_rate": 1.0})
    response = await send(http, single("G120"))
    assert response.status_code == 500
    assert read_reply(500, response.content).code == "NMVS_ERROR"
    assert (await pack_state(http))["state"] == "ACTIVE"


async def test_rate_limit_is_429_with_fi_se_cli_01(http: httpx.AsyncClient) -> None:
    await set_faults(http, {"rate_limit_rate": 1.0})
    response = await send(http, single("G120"))
    reply = read_reply(response.status_code, response.content)
    assert (reply.status, reply.root_name, reply.code) == (429, "G120Response", "NMVS_FI_SE_CLI_01")
    assert response.headers["Retry-After"] == "2"
    assert (await pack_state(http))["state"] == "ACTIVE"


async def test_timeout_code_after_processing(http: httpx.AsyncClient) -> None:
    await set_faults(http, {"timeout_code_rate": 1.0})
    reply = read_reply(*(lambda r: (r.status_code, r.content))(await send(http, single("G120"))))
    assert reply.code == "NMVS_TI_TO_01"
    assert (await pack_state(http))["state"] == "INACTIVE"
    records = (await http.get("/_sim/transactions")).json()
    assert [r["return_code"] for r in records] == ["NMVS_SUCCESS"]  # what really happened


async def test_next_n_applies_to_exactly_n_requests(http: httpx.AsyncClient) -> None:
    await set_faults(http, {"next": {"count": 2, "fault": "http_500"}})
    statuses = [(await send(http, single("G110"))).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert (await http.get("/_sim/faults")).json()["next_remaining"] == 0


async def test_latency_delays_the_answer_past_a_client_timeout(http: httpx.AsyncClient) -> None:
    await set_faults(http, {"next": {"count": 1, "fault": "latency", "latency_ms": 1000}})
    with pytest.raises(httpx.ReadTimeout):
        await http.post(
            SINGLE_PATH,
            content=single("G110").encode(),
            headers={"Content-Type": "text/xml"},
            timeout=0.3,
        )


async def test_rates_are_reproducible_with_a_seed(http: httpx.AsyncClient) -> None:
    async def run() -> list[int]:
        await set_faults(
            http, {"http_500_rate": 0.5, "seed": 11, "latency_ms": {"uniform": [0, 2]}}
        )
        return [(await send(http, single("G110"))).status_code for _ in range(12)]

    first = await run()
    assert first == await run()
    assert set(first) == {200, 500}


class BrokenMarket(Market):
    """A market with a bug in its rules, to check what the wire shows (no traceback)."""

    def single(self, header, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("internal detail that must not leak")


async def test_a_simulator_bug_is_a_soap_fault_without_traceback() -> None:
    async with (
        running_simulator(BrokenMarket(MARKET), plain_http=True) as sim,
        httpx.AsyncClient() as http,
    ):
        response = await http.post(
            sim.single_url, content=single("G110"), headers={"Content-Type": "text/xml"}
        )
    reply = read_reply(response.status_code, response.content)
    assert (reply.status, reply.root_name, reply.code) == (500, "Fault", "NMVS_ERROR")
    assert b"Traceback" not in response.content and b"internal detail" not in response.content


async def test_clock_advances_up_to_a_century_in_all(http: httpx.AsyncClient) -> None:
    century = 100 * 365.25 * 86400
    assert (await http.post("/_sim/clock", json={"advance_seconds": century - 1})).is_success
    refused = await http.post("/_sim/clock", json={"advance_seconds": 2})
    assert refused.status_code == 400 and "about 100 years" in refused.json()["error"]
    assert (await http.get("/_sim/clock")).json() == {"now": "2125-02-01T09:59:59Z"}  # 36 525 days
