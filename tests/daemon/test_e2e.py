"""The daemon end to end: a real mosquitto, the NMVS simulator over HTTP, ``nmvs-gateway run``
in a subprocess, and LGO clients (MQTT v5 and 3.1.1). Every message the gateway publishes is
validated against its JSON Schema."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt

from tests.brokers import Broker, MqttProbe, Received
from tests.daemon.harness import BASE, Daemon, Rig, finals, request, validate_all, write_config

RESULT, STATUS, HEALTH, SCAN = f"{BASE}/result", f"{BASE}/status", f"{BASE}/health", f"{BASE}/scan"
REQUEST, ERROR = f"{BASE}/request", f"{BASE}/error"
ALL = (f"{BASE}/+",)


async def test_dispense_is_queued_then_done_and_a_repeat_gets_the_same_result(
    broker: Broker, nmvs: Rig, daemon: Daemon
) -> None:
    daemon.start()
    pack = nmvs.packs[0]
    async with MqttProbe(broker, ALL) as lgo:
        await lgo.publish(REQUEST, request("lgo-1", "dispense", pack))
        await lgo.wait_for(lambda r: "lgo-1" in finals(r, RESULT))
        results = [json.loads(m.payload) for m in lgo.on(RESULT)]
        assert [r["status"] for r in results] == ["queued", "done"]
        done = results[-1]
        assert done["outcome"] == "done" and done["op"] == "dispense"
        assert done["pack"] == pack.to_json()
        assert done["nmvs"]["return_code"] == "NMVS_SUCCESS"
        assert done["nmvs"]["state"] == "INACTIVE"
        await lgo.publish(REQUEST, request("lgo-1", "dispense", pack))
        await lgo.wait_for(lambda r: len(finals(r, RESULT)["lgo-1"]) == 2)
        again = finals(lgo.received, RESULT)["lgo-1"][1]
        assert {k: v for k, v in again.items() if k != "at"} == {
            k: v for k, v in done.items() if k != "at"
        }
        status = [m for m in lgo.on(STATUS)]
        assert json.loads(status[0].payload)["state"] == "online" and status[0].retain
        await lgo.wait_for(lambda r: any(m.topic == HEALTH for m in r))
        validate_all(lgo.received)
    assert await nmvs.alerts() == []
    assert [t["use_case"] for t in await nmvs.transactions()] == ["G120"]  # sent once
    assert daemon.terminate() == 0
    async with MqttProbe(broker, (STATUS,)) as late:
        got = await late.wait_for(lambda r: len(r) >= 1)
        assert json.loads(got[0].payload)["state"] == "offline" and got[0].retain
    assert any(n.startswith("STOPPING=1") for n in daemon.read_notifications())


async def test_v5_response_topic_and_a_3_1_1_client(
    broker: Broker, nmvs: Rig, daemon: Daemon
) -> None:
    daemon.start()
    pack = nmvs.packs[1]
    async with (
        MqttProbe(broker, ("lgo/replies/7",)) as v5,
        MqttProbe(broker, (RESULT,), protocol=aiomqtt.ProtocolVersion.V311) as old,
    ):
        await v5.publish(
            REQUEST,
            request("v5-1", "verify", pack),
            response_topic="lgo/replies/7",
            correlation_data=b"\x00corr\xff",
        )
        replies = await v5.wait_for(
            lambda r: any(json.loads(m.payload)["status"] == "done" for m in r)
        )
        assert all(m.correlation_data == b"\x00corr\xff" for m in replies)
        assert json.loads(replies[-1].payload)["nmvs"]["state"] == "ACTIVE"
        validate_all([Received(RESULT, m.payload, m.retain, None) for m in replies])
        await old.publish(REQUEST, request("v311-1", "verify", nmvs.packs[2]))
        await old.wait_for(lambda r: "v311-1" in finals(r, RESULT))
        validate_all(old.received)
    assert daemon.terminate() == 0


async def test_bad_requests_are_answered_never_fatal(
    broker: Broker, nmvs: Rig, daemon: Daemon
) -> None:
    daemon.start()
    async with MqttProbe(broker, (RESULT, ERROR, "lgo/err")) as lgo:
        await lgo.publish(REQUEST, b"{not json", response_topic="lgo/err", correlation_data=b"1")
        await lgo.publish(REQUEST, b'{"id": "bad-op", "op": "sell", "pack": {}}')
        await lgo.publish(REQUEST, b"\x00" * 100_000)
        await lgo.publish(REQUEST, json.dumps({"id": "huge", "op": "verify", "user": "u" * 20_000}))
        await lgo.publish(
            REQUEST, json.dumps({"id": "bad-pack", "op": "verify", "pack": {"scheme": "GTIN"}})
        )
        await lgo.publish(REQUEST, request("after", "verify", nmvs.packs[3]))
        await lgo.wait_for(lambda r: "after" in finals(r, RESULT))
        await lgo.wait_for(lambda r: len([m for m in r if m.topic == ERROR]) == 5)
        by_id = {
            body["request_id"]: body for body in (json.loads(m.payload) for m in lgo.on(ERROR))
        }
        assert by_id["bad-op"]["problems"][0]["detail"].startswith("op must be one of verify,")
        assert by_id["bad-pack"]["problems"][0]["detail"] == "pack.product_code must be a string"
        assert by_id["bad-pack"]["reason"] == "bad_request"
        assert by_id["huge"]["problems"][0]["detail"].endswith("bytes, the limit is 16384")
        assert set(finals(lgo.received, RESULT)) == {"after"}  # results are transactions only
        error = json.loads(lgo.on("lgo/err")[0].payload)
        assert error["request_id"] is None and error["reason"] == "bad_request"
        assert error["problems"][0]["detail"].startswith("the request is not valid JSON")
        validate_all(lgo.received)
    assert daemon.process is not None and daemon.process.poll() is None
    assert daemon.terminate() == 0
    assert "Traceback" not in daemon.log_text()


async def test_sigterm_drains_the_call_in_flight_then_says_offline(
    broker: Broker, nmvs: Rig, daemon: Daemon
) -> None:
    daemon.start()
    await nmvs.faults({"latency_ms": 800})
    async with MqttProbe(broker, (RESULT, STATUS)) as lgo:
        await lgo.publish(REQUEST, request("drain-1", "dispense", nmvs.packs[4]))
        await lgo.wait_for(lambda r: any(m.topic == RESULT for m in r))  # queued: in flight
        # (in a thread: the simulator answering the call runs on this event loop)
        assert await asyncio.to_thread(daemon.terminate) == 0
        await lgo.wait_for(
            lambda r: json.loads(r[-1].payload).get("state") == "offline" and r[-1].topic == STATUS
        )
        done = finals(lgo.received, RESULT)["drain-1"]
        assert [r["outcome"] for r in done] == ["done"]  # published before going offline
    assert [(t["use_case"], t["return_code"]) for t in await nmvs.transactions()] == [
        ("G120", "NMVS_SUCCESS")
    ]


async def test_systemd_sees_ready_status_and_watchdog_pings(daemon: Daemon) -> None:
    await asyncio.to_thread(daemon.start, WATCHDOG_USEC="400000")  # ping every 0.2 s
    await asyncio.sleep(1.5)
    notes = daemon.read_notifications()
    ready = next(n for n in notes if n.startswith("READY=1"))
    assert ready.startswith("READY=1\nSTATUS=mqtt=up nmvs=unknown queue=0 scanners=0/0")
    assert notes.count("WATCHDOG=1") >= 3
    assert any(n.startswith("STATUS=mqtt=up") for n in notes if n != ready)  # health refreshes
    assert await asyncio.to_thread(daemon.terminate) == 0
    assert daemon.read_notifications()[-1] == "STOPPING=1\nSTATUS=draining"


async def test_over_tls_with_a_password_from_systemd_credentials(
    tmp_path: Path, tls_broker: Broker, nmvs: Rig
) -> None:
    assert tls_broker.tls is not None
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "mqtt-password").write_text("s3cret-pw\n")
    config = write_config(tmp_path / "gw", tls_broker, nmvs.sim.url)
    config.write_text(
        config.read_text().replace(
            "reconnect_max_delay = 1\n",
            f'reconnect_max_delay = 1\nca_file = "{tls_broker.tls.ca_file}"\nusername = "gateway"\n',
        )
    )
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        await asyncio.to_thread(daemon.start, CREDENTIALS_DIRECTORY=str(credentials))
        async with MqttProbe(tls_broker, (RESULT,)) as lgo:
            await lgo.publish(REQUEST, request("tls-1", "verify", nmvs.packs[6]))
            await lgo.wait_for(lambda r: "tls-1" in finals(r, RESULT))
            assert finals(lgo.received, RESULT)["tls-1"][0]["outcome"] == "done"
        assert await asyncio.to_thread(daemon.terminate) == 0
        assert "s3cret-pw" not in daemon.log_text()
    finally:
        daemon.close()
