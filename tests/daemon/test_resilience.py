"""Nothing lost: a broker restart in the middle of a stream of requests, and a SIGKILL of the
daemon in the middle of a stream of dispenses (with the LGO re-sending what has no final result,
as the contract says it may). The simulator must record zero alerts."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

from tests.brokers import Broker, MqttProbe
from tests.daemon.harness import BASE, Daemon, Rig, finals, request
from tests.mqtt.schemas import validate

RESULT, STATUS, REQUEST = f"{BASE}/result", f"{BASE}/status", f"{BASE}/request"


def seen_ids(messages: list) -> set[str]:  # type: ignore[type-arg]
    return {json.loads(m.payload)["id"] for m in messages if m.topic == RESULT}


async def test_broker_restart_mid_stream_loses_no_result(
    broker: Broker, nmvs: Rig, daemon: Daemon
) -> None:
    daemon.start()
    await nmvs.faults({"latency_ms": 400})  # results are still coming when the broker goes
    ids = [f"br-{n}" for n in range(16)]
    async with MqttProbe(broker, (RESULT,)) as lgo:
        for n, request_id in enumerate(ids):
            await lgo.publish(REQUEST, request(request_id, "dispense", nmvs.packs[10 + n]))
        await lgo.wait_for(lambda r: seen_ids(r) >= set(ids))  # every request accepted
        before = finals(lgo.received, RESULT)
    broker.stop()
    await asyncio.sleep(1.5)  # the daemon keeps working; results wait in its outbox
    daemon.pause()  # so that our subscriber is there before the daemon reconnects
    broker.start()  # persistence is off: the retained status is gone with the old broker
    async with MqttProbe(broker, (RESULT,)) as lgo:
        daemon.resume()
        await lgo.wait_for(lambda r: set(finals(r, RESULT)) | set(before) >= set(ids), 30)
        assert len(before) < len(ids) // 2  # most results were produced while the broker was away
        for message in lgo.received:
            validate("result", message.payload)
    async with MqttProbe(broker, (STATUS,)) as late:
        status = await late.wait_for(lambda r: len(r) >= 1)
        assert json.loads(status[0].payload)["state"] == "online" and status[0].retain
    assert await nmvs.alerts() == []
    assert daemon.terminate() == 0


async def test_sigkill_during_a_dispense_stream_then_restart(
    broker: Broker, nmvs: Rig, daemon: Daemon
) -> None:
    daemon.start()
    await nmvs.faults({"latency_ms": {"uniform": [10, 60]}, "seed": 3})
    packs = {f"kill-{n}": nmvs.packs[40 + n] for n in range(60)}
    async with MqttProbe(broker, (RESULT, STATUS)) as lgo:

        async def send(request_ids: list[str]) -> None:
            for request_id in request_ids:
                await lgo.publish(REQUEST, request(request_id, "dispense", packs[request_id]))
                await asyncio.sleep(0.01)

        sender = asyncio.create_task(send(list(packs)))
        await lgo.wait_for(lambda r: len(finals(r, RESULT)) >= 15)
        daemon.kill()
        await lgo.wait_for(
            lambda r: any(
                m.topic == STATUS and json.loads(m.payload)["state"] == "offline" for m in r
            )
        )
        await sender  # the rest is sent while the daemon is dead: its session keeps them
        daemon.start()
        for _ in range(20):  # after a timeout, the LGO re-sends what has no final result yet
            await asyncio.sleep(2.0)
            missing = [i for i in packs if i not in finals(lgo.received, RESULT)]
            if not missing:
                break
            await send(missing)
        by_id = finals(lgo.received, RESULT)
        assert set(by_id) == set(packs)
        for request_id, results in by_id.items():
            answers = {(r["status"], r["outcome"], json.dumps(r["nmvs"])) for r in results}
            assert len(answers) == 1, (request_id, results)  # one final result, maybe re-sent
            assert results[0]["status"] == "done", results[0]
            assert results[0]["pack"] == packs[request_id].to_json()
        for message in lgo.received:
            validate("status" if message.topic == STATUS else "result", message.payload)
    assert await nmvs.alerts() == []
    succeeded = Counter(
        t["serial"]
        for t in await nmvs.transactions()
        if t["use_case"] == "G120" and t["return_code"] == "NMVS_SUCCESS"
    )
    assert set(succeeded) <= {p.serial for p in packs.values()}
    assert max(succeeded.values()) == 1  # no pack decommissioned twice
    assert daemon.terminate() == 0


async def test_a_broker_that_is_down_at_start_is_waited_for_not_fatal(
    broker: Broker, nmvs: Rig, daemon: Daemon
) -> None:
    broker.stop()
    await asyncio.to_thread(daemon.start)  # READY after the first connection attempt
    ready = next(n for n in daemon.read_notifications() if n.startswith("READY=1"))
    assert "mqtt=down" in ready
    broker.start()
    async with MqttProbe(broker, (STATUS, RESULT)) as lgo:
        await lgo.wait_for(
            lambda r: any(
                m.topic == STATUS and json.loads(m.payload)["state"] == "online" for m in r
            )
        )
        await lgo.publish(REQUEST, request("late-1", "verify", nmvs.packs[7]))
        await lgo.wait_for(lambda r: "late-1" in finals(r, RESULT))
    assert await asyncio.to_thread(daemon.terminate) == 0
