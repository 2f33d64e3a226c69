"""Driving the simulator's Solidsoft REST face over real HTTP: tokens, pack URLs, bulk bodies."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from gateway.simulator.market import Market, MarketData
from gateway.simulator.server import RunningSimulator, running_simulator
from tests.simulator.markets import BATCH, EXPIRY, GTIN, MARKET, Clock

DEMO_CLIENT = ("demo-pharmacy", "itsasecret")


def rest_simulator(
    market: Market | MarketData | None = None, **options: Any
) -> AbstractAsyncContextManager[RunningSimulator]:
    """A plain-HTTP REST simulator with the admin API, by default over the test market on a
    clock that only the admin API moves."""
    return running_simulator(
        market or Market(MARKET, time_source=Clock()),
        plain_http=True,
        protocol="solidsoft-rest",
        **options,
    )


async def advance(http: httpx.AsyncClient, seconds: float) -> None:
    assert (await http.post("/_sim/clock", json={"advance_seconds": seconds})).status_code == 200


async def pack_view(http: httpx.AsyncClient, serial: str, product: str = GTIN) -> dict[str, Any]:
    response = await http.get(f"/_sim/packs/{product}/{quote(serial, safe='/')}")
    assert response.status_code == 200
    return response.json()


def segment(text: str) -> str:
    """``text`` as one percent-encoded path segment; dots too, or a client resolves a serial
    ``.`` or ``..`` as a relative path."""
    return quote(text, safe="").replace(".", "%2E")


def pack_path(
    serial: str,
    *,
    product: str = GTIN,
    batch: str | None = BATCH,
    expiry: str | None = EXPIRY,
    scheme: str = "gs1",
) -> str:
    params = {k: v for k, v in (("batch", batch), ("expiry", expiry)) if v is not None}
    query = f"?{urlencode(params)}" if params else ""  # form-encoded: a space becomes +
    return f"/api/product/{scheme}/{segment(product)}/pack/{segment(serial)}{query}"


def identifier(
    serial: str, *, product: str = GTIN, batch: str = BATCH, expiry: str = EXPIRY
) -> dict[str, str]:
    return {
        "productCodeScheme": "gs1",
        "productCode": product,
        "serialNumber": serial,
        "batchId": batch,
        "expiryDate": expiry,
    }


async def request_token(
    http: httpx.AsyncClient, client_id: str = DEMO_CLIENT[0], secret: str = DEMO_CLIENT[1]
) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return await http.post("/identity/connect/token", data=form)


class Pharmacy:
    """One client of the REST API with its access token (logged in on :meth:`login`)."""

    def __init__(self, http: httpx.AsyncClient, mode: str = "non-manual") -> None:
        self.http = http
        self.mode = mode
        self.token = ""

    async def login(
        self, client_id: str = DEMO_CLIENT[0], secret: str = DEMO_CLIENT[1]
    ) -> Pharmacy:
        response = await request_token(self.http, client_id, secret)
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]
        return self

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "emvs-data-entry-mode": self.mode,
            **extra,
        }

    async def verify(self, serial: str, **where: Any) -> httpx.Response:
        return await self.http.get(pack_path(serial, **where), headers=self.headers())

    async def change(self, state: str, serial: str, **where: Any) -> httpx.Response:
        return await self.http.patch(
            pack_path(serial, **where), json={"state": state}, headers=self.headers()
        )

    async def submit(
        self, resource: str, packs: list[dict[str, Any]], **fields: Any
    ) -> httpx.Response:
        """POST ``product/packs`` or ``recovery/packs`` (``resource`` ``product`` or ``recovery``)."""
        body = {"numberOfPacks": len(packs), "packs": packs, **fields}
        return await self.http.post(f"/api/{resource}/packs", json=body, headers=self.headers())

    async def get(self, url: str) -> httpx.Response:
        return await self.http.get(url, headers=self.headers())
