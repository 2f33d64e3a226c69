"""Several gateways of one site (one per till) on one broker and one NMVS account, under a market
without France's PCK_23 counter: a pack dispensed through till 1 and then asked for dispense
through till 2 must not reach the NMVS again (a PCK_22 alert). With ``verify_before_decommission``
till 2 verifies first and the INACTIVE answer stops it; the test without it shows the alert the
setting prevents."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.demo.mosquitto import start_mosquitto as start_private_mosquitto
from gateway.simulator.market import MarketRules
from tests.brokers import Broker, MqttProbe
from tests.daemon.harness import GATEWAY_ID, Daemon, Rig, finals, request, write_config
from tests.engine.support import market_data, simulator_rig

SITE = "verify_before_decommission = 30.0"


@pytest.fixture
async def nmvs() -> AsyncIterator[Rig]:
    async with simulator_rig(market_data(), rules=MarketRules(own_repeat_info_limit=None)) as rig:
        yield rig


def till(tmp_path: Path, broker: Broker, nmvs: Rig, name: str, policy: str) -> Daemon:
    config = write_config(tmp_path / name, broker, nmvs.sim.url, policy=policy)
    config.write_text(config.read_text().replace(f'id = "{GATEWAY_ID}"', f'id = "{name}"', 1))
    return Daemon(config, tmp_path / f"{name}.log")


async def dispense_on_both_tills(
    tmp_path: Path, broker: Broker, nmvs: Rig, policy: str
) -> dict[str, dict[str, object]]:
    tills = [till(tmp_path, broker, nmvs, name, policy) for name in ("till-1", "till-2")]
    pack = nmvs.packs[0]
    try:
        for daemon in tills:
            await asyncio.to_thread(daemon.start)
        async with MqttProbe(broker, ("nmvs/+/result",)) as lgo:  # one LGO, both gateways
            for name, request_id in (("till-1", "sale-1"), ("till-2", "sale-2")):
                await lgo.publish(f"nmvs/{name}/request", request(request_id, "dispense", pack))
                topic = f"nmvs/{name}/result"
                await lgo.wait_for(lambda r, t=topic, i=request_id: i in finals(r, t))
            found = {
                request_id: finals(lgo.received, f"nmvs/{name}/result")[request_id][-1]
                for name, request_id in (("till-1", "sale-1"), ("till-2", "sale-2"))
            }
        for daemon in tills:
            assert await asyncio.to_thread(daemon.terminate) == 0
    finally:
        for daemon in tills:
            daemon.close()
    return found


async def test_a_pack_dispensed_at_one_till_is_not_sent_again_by_another(
    tmp_path: Path, broker: Broker, nmvs: Rig
) -> None:
    found = await dispense_on_both_tills(tmp_path, broker, nmvs, SITE)
    assert found["sale-1"]["outcome"] == "done"
    second = found["sale-2"]
    assert (second["status"], second["outcome"]) == ("rejected", "not_active")
    assert await nmvs.alerts() == []
    calls = [(t["use_case"], t["return_code"]) for t in await nmvs.transactions()]
    # till 1: its verify first (nothing seen yet), then the dispense; till 2: a verify only
    assert calls == [("G110", "NMVS_SUCCESS"), ("G120", "NMVS_SUCCESS"), ("G110", "NMVS_SUCCESS")]


async def test_without_the_setting_the_second_till_raises_the_alert(
    tmp_path: Path, broker: Broker, nmvs: Rig
) -> None:
    found = await dispense_on_both_tills(tmp_path, broker, nmvs, "")
    assert found["sale-2"]["outcome"] == "alert"
    assert len(await nmvs.alerts()) == 1


async def test_a_site_broker_bridged_to_a_central_one_carries_requests_and_results(
    tmp_path: Path, broker: Broker, nmvs: Rig
) -> None:
    """``broker`` is head office; the site's own mosquitto bridges ``nmvs/#`` both ways under
    the prefix ``sites/lyon-3/``, as docs/mqtt.md shows."""
    site = start_private_mosquitto(
        tmp_path / "site-broker",
        listener_lines=[
            "connection head-office",
            f"address {broker.host}:{broker.port}",
            "cleansession false",
            "restart_timeout 1",
            'topic nmvs/# both 1 "" sites/lyon-3/',
        ],
    )
    daemon = till(tmp_path, site, nmvs, "till-1", "")
    central = "sites/lyon-3/nmvs/till-1"
    try:
        async with MqttProbe(broker, (f"{central}/result", f"{central}/status")) as office:
            await asyncio.to_thread(daemon.start)
            await office.wait_for(  # the gateway's retained online status crossed the bridge
                lambda r: any(
                    m.topic == f"{central}/status" and json.loads(m.payload)["state"] == "online"
                    for m in r
                )
            )
            await office.publish(f"{central}/request", request("hq-1", "verify", nmvs.packs[1]))
            await office.wait_for(lambda r: "hq-1" in finals(r, f"{central}/result"))
            (done,) = finals(office.received, f"{central}/result")["hq-1"]
            assert done["outcome"] == "done"
        assert await asyncio.to_thread(daemon.terminate) == 0
    finally:
        daemon.close()
        site.stop()
