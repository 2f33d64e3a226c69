"""Fixtures: a real mosquitto per test (``tests/brokers.py``), the NMVS simulator over loopback
HTTP, and the daemon as a subprocess configured for both (``tests/daemon/harness.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.brokers import Broker, broker, tls_broker
from tests.daemon.harness import Daemon, nmvs_simulator, write_config
from tests.engine.support import Rig

__all__ = ["broker", "daemon", "nmvs", "tls_broker"]


@pytest.fixture
async def nmvs() -> AsyncIterator[Rig]:
    async with nmvs_simulator() as simulator:
        yield simulator


@pytest.fixture
def daemon(tmp_path: Path, broker: Broker, nmvs: Rig) -> Iterator[Daemon]:
    process = Daemon(write_config(tmp_path / "gw", broker, nmvs.sim.url), tmp_path / "daemon.log")
    try:
        yield process
    finally:
        process.close()
