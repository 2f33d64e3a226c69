"""The Solidsoft REST face driven over real HTTP with raw httpx: tokens, single packs, the
answer mapping, request checks, faults and what a simulator bug looks like on the wire."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.nmvs.arvato.returncodes import lookup
from gateway.simulator.market import (
    Answer,
    BatchSpec,
    Market,
    MarketData,
    MarketRules,
    PackRequest,
    ProductSpec,
    RequestHeader,
)
from gateway.simulator.server import SINGLE_PATH, RunningSimulator, running_simulator
from tests.simulator.markets import EXPIRY, GTIN, IMT_GTIN, MARKET, PASSWORDS, WITHDRAWN_GTIN, Clock
from tests.simulator.restapi import (
    DEMO_CLIENT,
    Pharmacy,
    advance,
    pack_path,
    pack_view,
    request_token,
    rest_simulator,
)

TOKEN_PATH = "/identity/connect/token"
SERIAL = "0000000014"
SET_82 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!\"%&'()*+,-./:;<=>?_"
INVALID_TOKEN = 'Bearer error="invalid_token"'


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


# ---------------------------------------------------------------- token


async def test_a_token_is_bearer_with_an_integer_lifetime_and_no_refresh_token(
    rest_http: httpx.AsyncClient,
) -> None:
    response = await request_token(rest_http)
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    assert len(body["access_token"]) >= 40
    assert response.headers["Cache-Control"] == "no-store"


async def test_the_configured_client_stands_for_the_first_account(
    rest_http: httpx.AsyncClient,
) -> None:
    pharmacy = await Pharmacy(rest_http).login()
    assert (await pharmacy.change("Supplied", SERIAL)).status_code == 200
    assert (await pack_view(rest_http, SERIAL))["set_by_user_id"] == MARKET.users[0].user_id


async def test_every_account_logs_in_with_its_user_id_and_password(
    rest_http: httpx.AsyncClient,
) -> None:
    pharmacy = await Pharmacy(rest_http).login("SITE0002", PASSWORDS["SITE0002"])
    assert (await pharmacy.change("Supplied", SERIAL)).status_code == 200
    assert (await pack_view(rest_http, SERIAL))["set_by_user_id"] == "SITE0002"


async def test_client_credentials_in_http_basic(rest_http: httpx.AsyncClient) -> None:
    form = {"grant_type": "client_credentials"}
    response = await rest_http.post(TOKEN_PATH, data=form, headers=basic(*DEMO_CLIENT))
    assert response.status_code == 200 and response.json()["token_type"] == "Bearer"
    pharmacy = Pharmacy(rest_http)
    pharmacy.token = response.json()["access_token"]
    assert (await pharmacy.verify(SERIAL)).status_code == 200
    twice = await rest_http.post(
        TOKEN_PATH,
        data={**form, "client_id": DEMO_CLIENT[0], "client_secret": DEMO_CLIENT[1]},
        headers=basic(*DEMO_CLIENT),
    )
    assert (twice.status_code, twice.json()["error"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    ("client_id", "secret", "account"),
    [
        ("demo-pharmacy", "not-the-secret", "SITE0001"),
        # the configured client takes only its own secret, not the account's password
        ("demo-pharmacy", PASSWORDS["SITE0001"], "SITE0001"),
        ("SITE0002", "Wrong-Pass99", "SITE0002"),
    ],
)
async def test_a_wrong_secret_is_a_failed_login_of_the_account(
    rest_sim: RunningSimulator,
    rest_http: httpx.AsyncClient,
    client_id: str,
    secret: str,
    account: str,
) -> None:
    response = await request_token(rest_http, client_id, secret)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_client")
    assert "NMVS_FE_AU_01" in response.json()["error_description"]
    assert rest_sim.core.state.accounts[("PHARMA01", account)].failed_logins == 1
    assert rest_sim.core.state.transactions == []


async def test_five_wrong_secrets_lock_the_account_out(
    rest_sim: RunningSimulator, rest_http: httpx.AsyncClient
) -> None:
    for _ in range(5):
        await request_token(rest_http, DEMO_CLIENT[0], "not-the-secret")
    response = await request_token(rest_http)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_client")
    assert response.json()["error_description"].startswith("NMVS_FE_AU_05: ")
    assert rest_sim.core.state.accounts[("PHARMA01", "SITE0001")].locked


@pytest.mark.parametrize(
    ("client_id", "code"),
    [("OLDPASS1", "NMVS_FE_AU_11"), ("BLOCKED1", "NMVS_FE_AU_23")],
)
async def test_a_refused_account_gets_no_token(
    rest_http: httpx.AsyncClient, client_id: str, code: str
) -> None:
    response = await request_token(rest_http, client_id, PASSWORDS[client_id])
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_client",
        "error_description": f"{code}: {lookup(code).en}",
    }


@pytest.mark.parametrize(
    ("form", "error"),
    [
        (
            {"grant_type": "password", "client_id": "a", "client_secret": "b"},
            "unsupported_grant_type",
        ),
        ({"client_id": "demo-pharmacy", "client_secret": "itsasecret"}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "client_id": "demo-pharmacy"}, "invalid_request"),
        ({"grant_type": "client_credentials", "client_secret": "itsasecret"}, "invalid_request"),
        (
            {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
            "invalid_client",
        ),
    ],
)
async def test_bad_token_requests_are_oauth_errors(
    rest_http: httpx.AsyncClient, form: dict[str, str], error: str
) -> None:
    response = await rest_http.post(TOKEN_PATH, data=form)
    assert (response.status_code, response.json()["error"]) == (400, error)
    assert "access_token" not in response.json()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            b"grant_type=client_credentials&grant_type=client_credentials",
            "application/x-www-form-urlencoded",
        ),
        (b'{"grant_type": "client_credentials"}', "application/json"),
        (
            b"grant_type=client_credentials&client_id=%C3%28&client_secret=x",
            "application/x-www-form-urlencoded",
        ),
    ],
)
async def test_a_token_request_that_is_not_one_form_is_invalid(
    rest_http: httpx.AsyncClient, body: bytes, content_type: str
) -> None:
    response = await rest_http.post(
        TOKEN_PATH, content=body, headers={"Content-Type": content_type}
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


async def test_a_token_expires_on_the_simulator_clock(rest_http: httpx.AsyncClient) -> None:
    pharmacy = await Pharmacy(rest_http).login()
    await advance(rest_http, 3599)
    assert (await pharmacy.verify(SERIAL)).status_code == 200
    await advance(rest_http, 1)
    response = await pharmacy.verify(SERIAL)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN
    assert response.json() == {"information": "The access token has expired."}
    assert (await (await pharmacy.login()).verify(SERIAL)).status_code == 200


async def test_the_token_lifetime_is_configurable() -> None:
    async with (
        rest_simulator(token_lifetime=60) as sim,
        httpx.AsyncClient(base_url=sim.url) as http,
    ):
        assert (await request_token(http)).json()["expires_in"] == 60
        pharmacy = await Pharmacy(http).login()
        await advance(http, 60)
        assert (await pharmacy.verify(SERIAL)).status_code == 401


async def test_the_client_credentials_are_configurable() -> None:
    async with (
        rest_simulator(client_id="pharmacy-7", client_secret="s3cret") as sim,
        httpx.AsyncClient(base_url=sim.url) as http,
    ):
        assert (await request_token(http)).json()["error"] == "invalid_client"
        assert (await request_token(http, "pharmacy-7", "s3cret")).status_code == 200


@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-a-token", "Basic ZGVtbzpkZW1v", "Bearer"]
)
async def test_an_api_call_without_a_valid_token_is_401(
    rest_sim: RunningSimulator, rest_http: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"emvs-data-entry-mode": "non-manual"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = await rest_http.get(pack_path(SERIAL), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN
    assert set(response.json()) == {"information"}
    assert rest_sim.core.state.transactions == []


async def test_an_account_locked_after_its_token_was_issued_is_401(
    rest_http: httpx.AsyncClient,
) -> None:
    pharmacy = await Pharmacy(rest_http).login("SITE0002", PASSWORDS["SITE0002"])
    for _ in range(5):
        await request_token(rest_http, "SITE0002", "Wrong-Pass99")
    response = await pharmacy.verify(SERIAL)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN
    assert response.json() == {"information": lookup("NMVS_FE_AU_05").en}


# ---------------------------------------------------------------- single pack


async def expect(response: Awaitable[httpx.Response], status: int, code: str, state: str) -> None:
    answer = await response
    body = answer.json()
    assert (answer.status_code, body["operationCode"], body["state"]) == (status, code, state)


async def test_verify_dispense_and_undo_round_trip(
    rest_http: httpx.AsyncClient, pharmacy: Pharmacy
) -> None:
    await expect(pharmacy.verify(SERIAL), 200, "11100000", "Active")
    await expect(pharmacy.change("Supplied", SERIAL), 200, "11200000", "Supplied")
    await expect(pharmacy.verify(SERIAL), 200, "11100000", "Supplied")
    await expect(pharmacy.change("Active", SERIAL), 200, "11400000", "Active")
    await expect(pharmacy.change("Free Sample", SERIAL), 200, "11300000", "FreeSample")
    await expect(pharmacy.change("Active", SERIAL), 200, "11400000", "Active")
    await expect(pharmacy.change("Locked", SERIAL), 200, "11300000", "Locked")
    use_cases = [t["use_case"] for t in (await rest_http.get("/_sim/transactions")).json()]
    assert use_cases == ["G110", "G120", "G110", "G121", "G160", "G161", "G170"]
    assert (await pack_view(rest_http, SERIAL))["reasons"] == ["LOCKED"]


Scenario = Callable[[Pharmacy, Pharmacy, httpx.AsyncClient], Awaitable[httpx.Response]]
IMT = {"product": IMT_GTIN, "batch": "I1", "expiry": "271231"}


async def twice(
    first: Pharmacy, second: Pharmacy, state: str, then: str, serial: str = SERIAL, **where: Any
) -> httpx.Response:
    await first.change(state, serial, **where)
    return await second.change(then, serial, **where)


async def reactivated_too_late(
    first: Pharmacy, _: Pharmacy, http: httpx.AsyncClient
) -> httpx.Response:
    await first.change("Supplied", SERIAL)
    await advance(http, 11 * 86400)
    return await (await first.login()).change("Active", SERIAL)


@dataclass(frozen=True)
class Row:
    """One row of the answer mapping, reached by ``scenario``: the market's code and the wire."""

    return_code: str
    status: int
    operation_code: str
    state: str
    scenario: Scenario
    rules: MarketRules | None = None


ROWS = [
    Row("NMVS_SUCCESS", 200, "11100000", "Active", lambda a, b, h: a.verify(SERIAL)),
    Row(
        "NMVS_NC_PC_01",
        404,
        "41100001",
        "NotFound",
        lambda a, b, h: a.verify(SERIAL, product="09999999999996"),
    ),
    Row("NMVS_NC_PC_02", 404, "41100002", "NotFound", lambda a, b, h: a.verify("NO-SUCH-PACK")),
    Row(
        "NMVS_FE_LOT_03",
        404,
        "41100003",
        "NotFound",
        lambda a, b, h: a.verify("NO-SUCH-PACK", batch="NOBATCH"),
    ),
    Row(
        "NMVS_FE_LOT_13", 404, "41100003", "Active", lambda a, b, h: a.verify(SERIAL, batch="EXP1")
    ),
    Row(
        "NMVS_FE_LOT_12",
        404,
        "41100004",
        "Active",
        lambda a, b, h: a.verify(SERIAL, expiry="261100"),
    ),
    Row(
        "NMVS_NC_PCK_22",
        409,
        "51200001",
        "Supplied",
        lambda a, b, h: twice(a, b, "Supplied", "Supplied"),
    ),
    Row(
        "NMVS_NC_PCK_19",
        409,
        "51200001",
        "Supplied",
        lambda a, b, h: twice(a, a, "Supplied", "Supplied", serial="IMT1", **IMT),
    ),
    Row(
        "NMVS_NC_PCK_27",
        409,
        "51300001",
        "Supplied",
        lambda a, b, h: twice(a, a, "Supplied", "Destroyed"),
    ),
    Row(
        "NMVS_NC_PCK_23",
        409,
        "51220002",
        "Supplied",
        lambda a, b, h: twice(a, a, "Supplied", "Supplied"),
    ),
    Row(
        "NMVS_NC_PCK_02",
        409,
        "51200003",
        "Expired",
        lambda a, b, h: a.change("Supplied", "EXPIRED01", batch="EXP1", expiry="241100"),
    ),
    Row(
        "NMVS_FE_LOT_01",
        409,
        "51200004",
        "Recalled",
        lambda a, b, h: a.change("Supplied", "RECALLED01", batch="RCL1", expiry="271231"),
    ),
    Row(
        "NMVS_FE_LOT_08",
        409,
        "51200005",
        "Withdrawn",
        lambda a, b, h: a.change(
            "Supplied", "WITHDRAWN1", product=WITHDRAWN_GTIN, batch="W1", expiry="271231"
        ),
    ),
    Row(
        "NMVS_NC_PCK_30",
        409,
        "51320006",
        "Expired",
        lambda a, b, h: a.change("Stolen", "EXPIRED01", batch="EXP1", expiry="241100"),
        MarketRules(batch_inactive_set="twin"),
    ),
    Row("NMVS_NC_PCK_29", 409, "51420007", "Active", lambda a, b, h: a.change("Active", SERIAL)),
    # reactivating a stolen pack: no undo clears STOLEN, so the market is asked G121
    Row(
        "NMVS_NC_PCK_06", 409, "51400008", "Stolen", lambda a, b, h: twice(a, a, "Stolen", "Active")
    ),
    Row(
        "NMVS_NC_PCK_21",
        403,
        "31400001",
        "Supplied",
        lambda a, b, h: twice(a, b, "Supplied", "Active"),
    ),
    Row("NMVS_NC_PCK_20", 403, "31400002", "Supplied", reactivated_too_late),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.return_code for row in ROWS])
async def test_each_market_answer_maps_to_its_status_and_operation_code(row: Row) -> None:
    market = Market(MARKET, rules=row.rules, time_source=Clock())
    async with rest_simulator(market) as sim, httpx.AsyncClient(base_url=sim.url) as http:
        first = await Pharmacy(http).login()
        second = await Pharmacy(http).login("SITE0002", PASSWORDS["SITE0002"])
        response = await row.scenario(first, second, http)
        last = (await http.get("/_sim/transactions")).json()[-1]
        alerts = (await http.get("/_sim/alerts")).json()
    body = response.json()
    assert last["return_code"] == row.return_code
    assert (response.status_code, body["operationCode"], body["state"]) == (
        row.status,
        row.operation_code,
        row.state,
    )
    assert body["information"] == lookup(row.return_code).en
    raised = any(alert["client_trx_id"] == last["client_trx_id"] for alert in alerts)
    assert set(body) == {"operationCode", "state", "information"} | (
        {"alertId"} if raised else set()
    )
    if raised:
        assert body["alertId"] == last["nmvs_trx_id"]


def test_the_rows_cover_alerts_and_answers_without_one() -> None:
    alerts = {lookup(row.return_code).alert for row in ROWS}
    assert alerts == {True, False}


class MarketWithAnUnmappedAnswer(Market):
    def single(self, header: RequestHeader, request: PackRequest) -> Answer:
        return replace(super().single(header, request), return_code="NMVS_FE_TX_01")


async def test_an_answer_without_a_mapping_is_500_and_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        rest_simulator(MarketWithAnUnmappedAnswer(MARKET)) as sim,
        httpx.AsyncClient(base_url=sim.url) as http,
    ):
        with caplog.at_level(logging.WARNING, logger="gateway.simulator.rest"):
            response = await (await Pharmacy(http).login()).verify(SERIAL)
    assert (response.status_code, response.json()) == (
        500,
        {"information": "Unexpected answer NMVS_FE_TX_01"},
    )
    assert "NMVS_FE_TX_01" in caplog.text


class BrokenMarket(Market):
    def single(self, header: RequestHeader, request: PackRequest) -> Answer:
        raise RuntimeError("internal detail that must not leak")


async def test_a_simulator_bug_is_a_json_500_without_traceback() -> None:
    async with (
        rest_simulator(BrokenMarket(MARKET)) as sim,
        httpx.AsyncClient(base_url=sim.url) as http,
    ):
        response = await (await Pharmacy(http).login()).verify(SERIAL)
    assert (response.status_code, response.json()) == (
        500,
        {"information": "Internal server error"},
    )
    assert b"Traceback" not in response.content and b"internal detail" not in response.content


async def test_a_serial_with_a_slash_is_one_percent_encoded_segment(
    rest_http: httpx.AsyncClient, pharmacy: Pharmacy
) -> None:
    await expect(pharmacy.change("Supplied", "abc-def/12"), 200, "11200000", "Supplied")
    assert (await pack_view(rest_http, "abc-def/12"))["reasons"] == ["SUPPLIED"]
    unencoded = await rest_http.get(
        f"/api/product/gs1/{GTIN}/pack/abc-def/12?batch=00001&expiry=261200",
        headers=pharmacy.headers(),
    )
    assert unencoded.status_code == 404


@settings(max_examples=40)
@example(serial="%41/%2F", batch="a+b c")  # decoded exactly once; + and space both survive
@given(
    serial=st.text(SET_82, min_size=1, max_size=20),
    batch=st.text(SET_82 + " ", min_size=1, max_size=20),
)
async def test_any_set_82_serial_and_batch_round_trip_through_the_url(
    serial: str, batch: str
) -> None:
    data = MarketData(
        users=MARKET.users,
        products=(ProductSpec("GTIN", GTIN, (BatchSpec(batch, EXPIRY, (serial,)),)),),
    )
    async with rest_simulator(data) as sim, httpx.AsyncClient(base_url=sim.url) as http:
        pharmacy = await Pharmacy(http).login()
        response = await pharmacy.change("Supplied", serial, batch=batch)
        assert (response.status_code, response.json()["state"]) == (200, "Supplied")
        pack = sim.core.pack(GTIN, serial)
        assert pack is not None and pack.reason == "SUPPLIED"


# ---------------------------------------------------------------- request checks


async def test_the_data_entry_mode_header_is_required_and_checked(
    rest_sim: RunningSimulator, rest_http: httpx.AsyncClient, pharmacy: Pharmacy
) -> None:
    headers = pharmacy.headers()
    del headers["emvs-data-entry-mode"]
    missing = await rest_http.get(pack_path(SERIAL), headers=headers)
    assert (missing.status_code, missing.json()) == (
        422,
        {"operationCode": "61020012", "information": "The data entry mode header is required."},
    )
    for mode in ("MANUAL", "automatic", ""):
        bad = await rest_http.get(
            pack_path(SERIAL), headers={**headers, "emvs-data-entry-mode": mode}
        )
        assert (bad.status_code, bad.json()["operationCode"]) == (422, "61020013")
    assert rest_sim.core.state.transactions == []


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (pack_path(SERIAL, scheme="gtin"), "61020002"),
        (pack_path(SERIAL, batch=None), "61020000"),
        (pack_path(SERIAL, batch=""), "61020000"),
        (pack_path(SERIAL, expiry=None), "61020004"),
        (f"/api/product/gs1/{GTIN}/pack/00%zz?batch=00001&expiry=261200", "61020011"),
        (f"/api/product/gs1/{GTIN}/pack/00%?batch=00001&expiry=261200", "61020011"),
        (f"/api/product/gs1/{GTIN}/pack/%C3%28?batch=00001&expiry=261200", "61020011"),
        (f"/api/product/gs1/0500%g6/pack/{SERIAL}?batch=00001&expiry=261200", "61020008"),
        (pack_path(SERIAL) + "&batch=00001", "61020006"),
        (pack_path(SERIAL) + "&expiry=261200", "61020007"),
    ],
)
async def test_a_bad_pack_request_is_422_before_the_market(
    rest_sim: RunningSimulator,
    rest_http: httpx.AsyncClient,
    pharmacy: Pharmacy,
    path: str,
    code: str,
) -> None:
    response = await rest_http.get(path, headers=pharmacy.headers())
    assert (response.status_code, response.json()["operationCode"]) == (422, code)
    assert set(response.json()) == {"operationCode", "information"}
    assert rest_sim.core.state.transactions == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[]",
        b'"Supplied"',
        b"{}",
        b'{"state": "Supplied", "state": "Stolen"}',
        b'{"state": "Gone"}',
        b'{"state": "supplied"}',
        b'{"state": 1}',
        b'{"state": NaN}',
        b"\xff\xfe",
    ],
)
async def test_an_invalid_patch_body_is_422(
    rest_sim: RunningSimulator, rest_http: httpx.AsyncClient, pharmacy: Pharmacy, body: bytes
) -> None:
    response = await rest_http.patch(
        pack_path(SERIAL),
        content=body,
        headers=pharmacy.headers(**{"Content-Type": "application/json"}),
    )
    assert (response.status_code, response.json()["operationCode"]) == (422, "61000099")
    assert response.json()["information"].startswith("The request body is invalid: ")
    assert rest_sim.core.state.transactions == []


async def test_unknown_body_fields_are_ignored(
    rest_http: httpx.AsyncClient, pharmacy: Pharmacy
) -> None:
    response = await rest_http.patch(
        pack_path(SERIAL),
        json={"state": "Destroyed", "reason": "broken"},
        headers=pharmacy.headers(),
    )
    assert (response.status_code, response.json()["state"]) == (200, "Destroyed")


async def test_manual_entry_supplies_or_reports_stolen_without_batch_and_expiry(
    rest_http: httpx.AsyncClient,
) -> None:
    manual = await Pharmacy(rest_http, mode="manual").login()
    keyed_in = {"batch": None, "expiry": None}
    await expect(manual.change("Supplied", SERIAL, **keyed_in), 200, "11200000", "Supplied")
    await expect(manual.change("Stolen", "0000000015", **keyed_in), 200, "11300000", "Stolen")
    await expect(manual.change("Supplied", "S4"), 200, "11200000", "Supplied")
    use_cases = [t["use_case"] for t in (await rest_http.get("/_sim/transactions")).json()]
    assert use_cases == ["G122", "G182", "G120"]
    for response, code in [
        (manual.verify("S5", **keyed_in), "61020000"),
        (manual.change("Destroyed", "S5", **keyed_in), "61020000"),
        (manual.change("Supplied", "S5", expiry=None), "61020004"),
        (manual.change("Stolen", "S5", batch=None), "61020000"),
    ]:
        answer = await response
        assert (answer.status_code, answer.json()["operationCode"]) == (422, code)


async def test_non_manual_entry_needs_batch_and_expiry_even_to_supply(pharmacy: Pharmacy) -> None:
    response = await pharmacy.change("Supplied", SERIAL, batch=None, expiry=None)
    assert (response.status_code, response.json()["operationCode"]) == (422, "61020000")


async def test_french_descriptions_for_a_french_accept_language(
    rest_http: httpx.AsyncClient, pharmacy: Pharmacy
) -> None:
    french = await rest_http.get(
        pack_path(SERIAL), headers=pharmacy.headers(**{"Accept-Language": "fr-FR,fr;q=0.9"})
    )
    english = await rest_http.get(
        pack_path(SERIAL), headers=pharmacy.headers(**{"Accept-Language": "de-DE"})
    )
    assert french.json()["information"] == lookup("NMVS_SUCCESS").fr
    assert english.json()["information"] == lookup("NMVS_SUCCESS").en


async def test_unknown_resources_and_methods_are_json_404_and_405(
    rest_http: httpx.AsyncClient, pharmacy: Pharmacy
) -> None:
    missing = await rest_http.get("/api/product/gs1/x/batch/y", headers=pharmacy.headers())
    assert (missing.status_code, set(missing.json())) == (404, {"information"})
    wrong = await rest_http.delete(pack_path(SERIAL), headers=pharmacy.headers())
    assert (wrong.status_code, wrong.headers["Allow"], set(wrong.json())) == (
        405,
        "GET, PATCH",
        {"information"},
    )


async def test_only_the_chosen_protocol_is_served(rest_http: httpx.AsyncClient) -> None:
    soap = await rest_http.post(SINGLE_PATH, content=b"<x/>", headers={"Content-Type": "text/xml"})
    assert soap.status_code == 404
    assert (await rest_http.get("/_sim/transactions")).status_code == 200
    async with (
        running_simulator(MARKET, plain_http=True) as soap_sim,
        httpx.AsyncClient(base_url=soap_sim.url) as soap_http,
    ):
        assert soap_sim.protocol == "arvato-soap"
        assert (await request_token(soap_http)).status_code == 404
        assert (await soap_http.get(pack_path(SERIAL))).status_code == 404


async def test_the_running_simulator_names_its_rest_endpoints(rest_sim: RunningSimulator) -> None:
    assert rest_sim.protocol == "solidsoft-rest"
    assert (rest_sim.api_url, rest_sim.token_url) == (
        rest_sim.url + "/api/",
        rest_sim.url + TOKEN_PATH,
    )


# ---------------------------------------------------------------- faults


async def set_faults(http: httpx.AsyncClient, faults: dict[str, Any]) -> None:
    response = await http.post("/_sim/faults", json=faults)
    assert response.status_code == 200, response.text


def supplied(sim: RunningSimulator) -> bool:
    pack = sim.core.pack(GTIN, SERIAL)
    assert pack is not None
    return pack.reason == "SUPPLIED"


@pytest.mark.parametrize(
    ("fault", "status", "body", "processed"),
    [
        ("reset_before", None, None, False),
        ("reset_after", None, None, True),
        ("http_500", 500, {"information": "Internal server error (injected)"}, False),
        ("timeout_code", 504, {"information": "Gateway timeout (injected)"}, True),
    ],
)
async def test_a_fault_answers_or_resets_and_processes_or_not(
    rest_sim: RunningSimulator,
    rest_http: httpx.AsyncClient,
    pharmacy: Pharmacy,
    fault: str,
    status: int | None,
    body: dict[str, str] | None,
    processed: bool,
) -> None:
    await set_faults(rest_http, {"next": {"count": 1, "fault": fault}})
    if status is None:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await pharmacy.change("Supplied", SERIAL)
    else:
        response = await pharmacy.change("Supplied", SERIAL)
        assert (response.status_code, response.json()) == (status, body)
    assert supplied(rest_sim) is processed
    codes = [t.return_code for t in rest_sim.core.state.transactions]
    assert codes == (["NMVS_SUCCESS"] if processed else [])


async def test_rate_limit_is_429_with_retry_after_and_recorded(
    rest_sim: RunningSimulator, rest_http: httpx.AsyncClient, pharmacy: Pharmacy
) -> None:
    await set_faults(rest_http, {"rate_limit_rate": 1.0})
    response = await pharmacy.change("Supplied", SERIAL)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "2")
    assert response.json() == {"information": lookup("NMVS_FI_SE_CLI_01").en}
    assert not supplied(rest_sim)
    assert [(t.use_case, t.return_code) for t in rest_sim.core.state.transactions] == [
        ("G120", "NMVS_FI_SE_CLI_01")
    ]


async def test_apply_late_resets_now_and_processes_later(
    rest_sim: RunningSimulator, rest_http: httpx.AsyncClient, pharmacy: Pharmacy
) -> None:
    await set_faults(rest_http, {"next": {"count": 1, "fault": "apply_late"}, "apply_late_ms": 300})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await pharmacy.change("Supplied", SERIAL)
    assert not supplied(rest_sim)
    async with asyncio.timeout(5):
        while not supplied(rest_sim):  # noqa: ASYNC110 - server state
            await asyncio.sleep(0.02)


async def test_latency_delays_the_answer_past_a_client_timeout(
    rest_http: httpx.AsyncClient, pharmacy: Pharmacy
) -> None:
    await set_faults(rest_http, {"next": {"count": 1, "fault": "latency", "latency_ms": 1000}})
    with pytest.raises(httpx.ReadTimeout):
        await rest_http.get(pack_path(SERIAL), headers=pharmacy.headers(), timeout=0.3)


async def test_token_requests_are_not_faulted(rest_http: httpx.AsyncClient) -> None:
    await set_faults(rest_http, {"http_500_rate": 1.0})
    pharmacy = await Pharmacy(rest_http).login()
    assert (await pharmacy.verify(SERIAL)).status_code == 500
