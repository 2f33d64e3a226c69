"""Bulk and recovery requests over the REST face and real HTTP: 202 with an absolute Location,
409 while pending, 200 with the packs in request order, and the checks answered 422."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.simulator.server import RunningSimulator
from tests.simulator.markets import GTIN, PASSWORDS
from tests.simulator.restapi import Pharmacy, advance, identifier, pack_view, rest_simulator

SERIAL = "0000000014"
ETA, EXPIRES = "2025-01-31T10:00:02.000Z", "2025-02-01T10:00:02.000Z"  # test clock + 2 s, + 1 day


async def submitted(
    pharmacy: Pharmacy, resource: str, packs: list[dict[str, Any]], **fields: Any
) -> str:
    """Submit and return the Location of the results."""
    response = await pharmacy.submit(resource, packs, **fields)
    assert response.status_code == 202, response.text
    return response.headers["Location"]


async def results(pharmacy: Pharmacy, location: str) -> dict[str, Any]:
    """The results once the bulk delay has passed on the simulator clock."""
    await advance(pharmacy.http, 2)
    response = await pharmacy.get(location)
    assert response.status_code == 200, response.text
    assert "Location" not in response.headers
    return response.json()


async def pack_use_cases(http: httpx.AsyncClient) -> list[str]:
    """The use cases the market applied to packs (submissions and polls name no serial)."""
    return [t["use_case"] for t in (await http.get("/_sim/transactions")).json() if t["serial"]]


def outcomes(body: dict[str, Any]) -> list[tuple[int, str]]:
    return [(p["result"]["operationCode"], p["result"]["state"]) for p in body["packs"]]


async def test_bulk_is_accepted_then_pending_then_answered_in_request_order(
    rest_sim: RunningSimulator, rest_http: httpx.AsyncClient, pharmacy: Pharmacy
) -> None:
    packs = [
        identifier("0000000015"),
        identifier("NO-SUCH-PACK"),
        identifier(SERIAL),
        identifier("S4", expiry="261100"),
    ]
    response = await pharmacy.submit("product", packs, state="Supplied", maxBulkPackCount=500_000)
    assert (response.status_code, response.json()) == (
        202,
        {"operationCode": "22100000", "eta": ETA, "expires": EXPIRES},
    )
    (job_id,) = rest_sim.core.state.bulk_jobs
    location = response.headers["Location"]
    assert location == f"{rest_sim.url}/api/product/packs/{job_id}"
    pending = await pharmacy.get(location)
    assert (pending.status_code, pending.json()) == (409, {"operationCode": "52200001", "eta": ETA})
    body = await results(pharmacy, location)
    assert set(body) == {"operationCode", "packs"} and body["operationCode"] == "12200000"
    assert [p["pack"] for p in body["packs"]] == packs
    assert outcomes(body) == [
        (11200000, "Supplied"),
        (41200002, "NotFound"),
        (11200000, "Supplied"),
        (41200004, "Active"),
    ]
    transactions = {t["serial"]: t for t in (await rest_http.get("/_sim/transactions")).json()}
    for pack in body["packs"]:
        result = pack["result"]
        raised = result["operationCode"] // 10_000_000 == 4  # unknown serial and wrong expiry
        assert ("uprc" in result) == raised
        if raised:
            assert result["uprc"] == transactions[pack["pack"]["serialNumber"]]["nmvs_trx_id"]
    assert (await pack_view(rest_http, SERIAL))["reasons"] == ["SUPPLIED"]


async def test_a_bulk_without_state_verifies(
    pharmacy: Pharmacy, rest_http: httpx.AsyncClient
) -> None:
    location = await submitted(pharmacy, "product", [identifier(SERIAL), identifier("S4")])
    body = await results(pharmacy, location)
    assert outcomes(body) == [(11100000, "Active"), (11100000, "Active")]
    assert (await pack_view(rest_http, SERIAL))["state"] == "ACTIVE"


async def test_a_bulk_reactivation_undoes_each_pack_s_own_reason(pharmacy: Pharmacy) -> None:
    await pharmacy.change("Supplied", SERIAL)
    await pharmacy.change("Destroyed", "S4")
    location = await submitted(
        pharmacy, "product", [identifier(SERIAL), identifier("S4")], state="Active"
    )
    assert outcomes(await results(pharmacy, location)) == [
        (11400000, "Active"),
        (11400000, "Active"),
    ]


async def test_a_recovery_pack_without_transition_type_is_a_verify(
    rest_sim: RunningSimulator, rest_http: httpx.AsyncClient, pharmacy: Pharmacy
) -> None:
    packs = [
        identifier(SERIAL),
        {"transitionType": "SUPPLIED", **identifier("0000000015")},
        {"transitionType": "FREE_SAMPLE", **identifier("S4")},
    ]
    response = await pharmacy.submit("recovery", packs)
    assert (response.status_code, response.json()["operationCode"]) == (202, "23100000")
    location = response.headers["Location"]
    assert location.startswith(f"{rest_sim.url}/api/recovery/packs/")
    pending = await pharmacy.get(location)
    assert (pending.status_code, pending.json()) == (409, {"operationCode": "53200001", "eta": ETA})
    body = await results(pharmacy, location)
    assert body["operationCode"] == "13200000"
    assert [p["pack"] for p in body["packs"]] == [
        identifier(s) for s in (SERIAL, "0000000015", "S4")
    ]
    assert outcomes(body) == [
        (11100000, "Active"),
        (11200000, "Supplied"),
        (11300000, "FreeSample"),
    ]
    assert await pack_use_cases(rest_http) == ["G110", "G120", "G160"]
    assert (await pack_view(rest_http, SERIAL))["state"] == "ACTIVE"


async def test_a_recovery_reactivation(pharmacy: Pharmacy) -> None:
    await pharmacy.change("Locked", SERIAL)
    location = await submitted(
        pharmacy, "recovery", [{"transitionType": "ACTIVE", **identifier(SERIAL)}]
    )
    assert outcomes(await results(pharmacy, location)) == [(11400000, "Active")]


async def test_manual_bulk_supplies_keyed_in_packs(rest_http: httpx.AsyncClient) -> None:
    manual = await Pharmacy(rest_http, mode="manual").login()
    keyed_in = {"productCodeScheme": "gs1", "productCode": GTIN, "serialNumber": SERIAL}
    location = await submitted(manual, "product", [keyed_in], state="Supplied")
    assert outcomes(await results(manual, location)) == [(11200000, "Supplied")]
    assert await pack_use_cases(rest_http) == ["G122"]


async def test_results_are_only_for_the_submitting_account_and_their_own_resource(
    rest_http: httpx.AsyncClient, pharmacy: Pharmacy
) -> None:
    bulk = await submitted(pharmacy, "product", [identifier(SERIAL)])
    recovery = await submitted(pharmacy, "recovery", [identifier(SERIAL)])
    await advance(rest_http, 2)
    other = await Pharmacy(rest_http).login("SITE0002", PASSWORDS["SITE0002"])
    job_of = {url: url.rsplit("/", 1)[1] for url in (bulk, recovery)}
    for url, code in [
        (bulk.replace(job_of[bulk], "0" * 32), "42200001"),
        (recovery.replace(job_of[recovery], "0" * 32), "43200001"),
        (bulk.replace("product", "recovery"), "43200001"),
        (recovery.replace("recovery", "product"), "42200001"),
    ]:
        response = await pharmacy.get(url)
        assert (response.status_code, response.json()["operationCode"]) == (404, code)
    assert (await other.get(bulk)).status_code == 404
    assert (await pharmacy.get(bulk)).status_code == 200


def packs_body(count: int, packs: list[Any]) -> dict[str, Any]:
    return {"numberOfPacks": count, "packs": packs}


@pytest.mark.parametrize("resource", ["product", "recovery"])
@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        (packs_body(0, []), "62120002", "packs must be a non-empty array"),
        ({"numberOfPacks": 1}, "62120002", "packs must be a non-empty array"),
        (packs_body(2, [identifier(SERIAL)]), "62120001", "numberOfPacks 2, 1 packs"),
        ({"packs": [identifier(SERIAL)]}, "62120002", "numberOfPacks must be an integer"),
        (packs_body(2, [identifier(SERIAL), identifier(SERIAL)]), "62120000", "packs[1] repeats"),
        (
            packs_body(1, [{**identifier(SERIAL), "serialNumber": 14}]),
            "62120002",
            "packs[0].serialNumber",
        ),
        (
            packs_body(1, [{"productCodeScheme": "gs1", "productCode": GTIN}]),
            "62120002",
            "packs[0].serialNumber",
        ),
        (
            packs_body(1, [{**identifier(SERIAL), "productCodeScheme": "gtin"}]),
            "62120002",
            "packs[0]: A product code scheme",
        ),
        (
            packs_body(1, [{**identifier(SERIAL), "batchId": ""}]),
            "62120002",
            "packs[0]: A batch identifier is required",
        ),
        (
            packs_body(1, [{**identifier(SERIAL), "expiryDate": None}]),
            "62120002",
            "packs[0]: An expiry date is required",
        ),
        (packs_body(1, ["05000456013482"]), "62120002", "packs[0] must be an object"),
        ([identifier(SERIAL)], "62120002", "it must be a JSON object"),
    ],
)
async def test_a_bad_bulk_request_is_422(
    rest_sim: RunningSimulator,
    pharmacy: Pharmacy,
    resource: str,
    body: Any,
    code: str,
    detail: str,
) -> None:
    response = await pharmacy.http.post(
        f"/api/{resource}/packs", json=body, headers=pharmacy.headers()
    )
    assert (response.status_code, response.json()["operationCode"]) == (422, code)
    assert detail in response.json()["information"]
    assert rest_sim.core.state.bulk_jobs == {}


@pytest.mark.parametrize(
    ("resource", "body", "detail"),
    [
        (
            "product",
            {**packs_body(1, [identifier(SERIAL)]), "state": "Gone"},
            "state 'Gone' is not one of",
        ),
        (
            "recovery",
            packs_body(1, [{**identifier(SERIAL), "transitionType": "Supplied"}]),
            "packs[0].transitionType 'Supplied'",
        ),
        (
            "product",
            b'{"numberOfPacks": 1, "numberOfPacks": 1, "packs": []}',
            "the key 'numberOfPacks' appears twice in one object",
        ),
        ("recovery", b"{not json", "Expecting property name"),
    ],
)
async def test_a_bad_state_or_body_is_the_body_invalid_code(
    pharmacy: Pharmacy, resource: str, body: dict[str, Any] | bytes, detail: str
) -> None:
    content = body if isinstance(body, bytes) else None
    response = await pharmacy.http.post(
        f"/api/{resource}/packs",
        json=None if content is not None else body,
        content=content,
        headers=pharmacy.headers(**{"Content-Type": "application/json"}),
    )
    assert (response.status_code, response.json()["operationCode"]) == (422, "62120002")
    assert detail in response.json()["information"]


async def test_at_most_ten_thousand_packs_per_request(pharmacy: Pharmacy) -> None:
    packs = [identifier(f"P{index:05d}") for index in range(10_001)]
    refused = await pharmacy.submit("product", packs)
    assert (refused.status_code, refused.json()) == (
        422,
        {
            "operationCode": "62120003",
            "information": "Too many packs in bulk request. A maximum of 10000 packs will be accepted.",
        },
    )
    assert (await pharmacy.submit("product", packs[:10_000])).status_code == 202


KNOWN = ["0000000014", "0000000015", "abc-def/12", "S4", "S5"]


@settings(max_examples=25)
@given(
    st.lists(st.sampled_from([*KNOWN, "GHOST-1", "GHOST-2"]), min_size=1, max_size=7, unique=True)
)
async def test_results_come_back_in_request_order(serials: list[str]) -> None:
    async with rest_simulator() as sim, httpx.AsyncClient(base_url=sim.url) as http:
        pharmacy = await Pharmacy(http).login()
        packs = [identifier(serial) for serial in serials]
        body = await results(pharmacy, await submitted(pharmacy, "recovery", packs))
    assert [p["pack"] for p in body["packs"]] == packs
    expected = [(11100000, "Active") if s in KNOWN else (41100002, "NotFound") for s in serials]
    assert outcomes(body) == expected
