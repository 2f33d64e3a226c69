"""Fixtures of the REST face tests: a running REST simulator, a client of it, a logged-in
pharmacy (the SOAP tests define their own ``sim`` and ``http``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.simulator.server import RunningSimulator
from tests.simulator.restapi import Pharmacy, rest_simulator


@pytest.fixture
async def rest_sim() -> AsyncIterator[RunningSimulator]:
    async with rest_simulator() as running:
        yield running


@pytest.fixture
async def rest_http(rest_sim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=rest_sim.url) as client:
        yield client


@pytest.fixture
async def pharmacy(rest_http: httpx.AsyncClient) -> Pharmacy:
    """The configured client (the market's first account), logged in."""
    return await Pharmacy(rest_http).login()
