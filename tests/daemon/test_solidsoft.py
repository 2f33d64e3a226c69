"""The daemon end to end with ``[nmvs] backend = "solidsoft-rest"``: a real mosquitto, the
simulator's REST face over HTTP, ``nmvs-gateway run`` in a subprocess and an LGO on MQTT.
The same MQTT contract as with Arvato: classes, alert ids and the firewall, whatever the
protocol underneath."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.codes.pack import PackIdentifier
from gateway.nmvs.secret import Secret
from gateway.nmvs.solidsoft import SolidsoftClient, SolidsoftConfig
from gateway.simulator.market import Market
from gateway.simulator.server import RunningSimulator, running_simulator
from gateway.vocabulary import Operation
from tests.brokers import Broker, MqttProbe
from tests.daemon.harness import (
    BASE,
    NMVS_PASSWORD,
    Daemon,
    finals,
    request,
    validate_all,
    write_config,
)
from tests.engine.support import market_data

RESULT, REQUEST = f"{BASE}/result", f"{BASE}/request"
ALL = (f"{BASE}/+",)


@pytest.fixture
async def rest_sim() -> AsyncIterator[tuple[RunningSimulator, list[PackIdentifier]]]:
    data, packs = market_data()
    async with running_simulator(Market(data), plain_http=True, protocol="solidsoft-rest") as sim:
        yield sim, packs


async def test_dispense_undo_and_an_alert_through_the_rest_backend(
    broker: Broker, rest_sim: tuple[RunningSimulator, list[PackIdentifier]], tmp_path: Path
) -> None:
    sim, packs = rest_sim
    mine, elsewhere = packs[0], packs[1]
    other = sim.core.data.users[1]  # another pharmacy dispensed this pack first
    config = SolidsoftConfig(sim.api_url, sim.token_url, other.user_id, Secret(other.password))
    async with SolidsoftClient(config) as colleague:
        first = await colleague.execute(Operation.DISPENSE, elsewhere, client_trx_id="a" * 32)
        assert first.success
    daemon = Daemon(
        write_config(tmp_path / "gw", broker, sim.url, backend="solidsoft-rest"),
        tmp_path / "daemon.log",
    )
    try:
        daemon.start()
        async with MqttProbe(broker, ALL) as lgo:
            await lgo.publish(REQUEST, request("d-1", "dispense", mine))
            await lgo.wait_for(lambda r: "d-1" in finals(r, RESULT))
            done = finals(lgo.received, RESULT)["d-1"][-1]
            assert (done["outcome"], done["nmvs"]["answer_class"]) == ("done", "success")
            assert done["nmvs"]["state"] == "INACTIVE"
            await lgo.publish(REQUEST, request("u-1", "undo_dispense", mine))
            await lgo.wait_for(lambda r: "u-1" in finals(r, RESULT))
            undone = finals(lgo.received, RESULT)["u-1"][-1]
            assert (undone["outcome"], undone["nmvs"]["state"]) == ("done", "ACTIVE")
            await lgo.publish(REQUEST, request("d-2", "dispense", elsewhere))
            await lgo.wait_for(lambda r: "d-2" in finals(r, RESULT))
            alert = finals(lgo.received, RESULT)["d-2"][-1]
            validate_all(lgo.received)
        assert alert["outcome"] == "alert"
        assert alert["nmvs"]["answer_class"] == "wrong_state"
        async with httpx.AsyncClient(base_url=sim.url) as admin:
            raised = (await admin.get("/_sim/alerts")).json()
            transactions = (await admin.get("/_sim/transactions")).json()
        # the alert id published is the one the system gave, and it is the only alert
        assert len(raised) == 1 and alert["nmvs"]["alert_id"]
        assert alert["nmvs"]["alert_id"] in {t["nmvs_trx_id"] for t in transactions}
        assert daemon.terminate() == 0
    finally:
        daemon.close()
    assert NMVS_PASSWORD not in daemon.log_text()  # the client secret is never logged
