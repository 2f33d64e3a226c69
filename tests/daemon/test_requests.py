"""The request contract against the real daemon and mosquitto: one id has one final result,
ever; what is not a transaction is answered on ``<base>/error``, never under another id; duplicate
JSON keys and retained requests are never executed (MQTT 5 and 3.1.1, replays included)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import aiomqtt

from tests.brokers import Broker, MqttProbe, Received
from tests.daemon.harness import BASE, Daemon, Rig, finals, request, validate_all, write_config
from tests.mqtt.schemas import validator

RESULT, ERROR, REQUEST = f"{BASE}/result", f"{BASE}/error", f"{BASE}/request"
V311 = aiomqtt.ProtocolVersion.V311


def errors(received: list[Received]) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in received if m.topic == ERROR]


async def test_a_reused_id_never_gets_a_second_final_result(
    broker: Broker, nmvs: Rig, daemon: Daemon
) -> None:
    daemon.start()
    first, other = nmvs.packs[0], nmvs.packs[1]
    async with MqttProbe(broker, (RESULT, ERROR, "lgo/replies")) as lgo:
        await lgo.publish(REQUEST, request("v1-0001", "verify", first))
        await lgo.wait_for(lambda r: "v1-0001" in finals(r, RESULT))
        # the same id for another pack, then for another operation
        await lgo.publish(
            REQUEST,
            request("v1-0001", "verify", other),
            response_topic="lgo/replies",
            correlation_data=b"c-2",
        )
        await lgo.publish(REQUEST, request("v1-0001", "dispense", first))
        await lgo.wait_for(lambda r: len(errors(r)) == 2)
        await lgo.publish(REQUEST, request("v1-0001", "verify", first))  # a true repeat
        await lgo.wait_for(lambda r: len(finals(r, RESULT)["v1-0001"]) == 2)
        results = finals(lgo.received, RESULT)["v1-0001"]
        assert [(r["op"], r["outcome"], r["pack"]) for r in results] == [
            ("verify", "done", first.to_json())
        ] * 2  # never rejected / bad_request under this id
        nmvs_answer = results[0]["nmvs"]
        assert nmvs_answer["return_code"] == "NMVS_SUCCESS"  # the NMVS's own text, and ours:
        assert nmvs_answer["message"] == "Processed. Check the pack state before supplying."
        assert nmvs_answer["message_fr"] == (
            "Traité. Vérifiez l'état de la boîte avant de la délivrer."
        )
        conflicts = errors(lgo.received)
        assert [(e["request_id"], e["reason"], e["op"]) for e in conflicts] == [
            ("v1-0001", "id_conflict", "verify"),
            ("v1-0001", "id_conflict", "dispense"),
        ]
        reply = next(m for m in lgo.received if m.topic == "lgo/replies")
        assert reply.correlation_data == b"c-2"
        assert json.loads(reply.payload)["reason"] == "id_conflict"
        validate_all(lgo.received)
    assert [t["use_case"] for t in await nmvs.transactions()] == ["G110"]
    assert daemon.terminate() == 0


async def test_an_id_too_long_is_refused_under_its_hash_never_a_truncated_id(
    broker: Broker, nmvs: Rig, daemon: Daemon
) -> None:
    daemon.start()
    short = "r" * 128
    async with MqttProbe(broker, (RESULT, ERROR)) as lgo:
        await lgo.publish(REQUEST, request(short, "verify", nmvs.packs[2]))
        await lgo.wait_for(lambda r: short in finals(r, RESULT))
        long_id = short + "X"
        payload = request(long_id, "dispense", nmvs.packs[3])
        await lgo.publish(REQUEST, payload)
        await lgo.wait_for(lambda r: len(errors(r)) == 1)
        (refused,) = errors(lgo.received)
        assert refused["request_id"] is None
        assert refused["request_id_sha256"] == hashlib.sha256(long_id.encode()).hexdigest()
        assert refused["payload_sha256"] == hashlib.sha256(payload).hexdigest()
        assert [r["outcome"] for r in finals(lgo.received, RESULT)[short]] == ["done"]
        validate_all(lgo.received)
    assert daemon.terminate() == 0


async def test_duplicate_keys_are_refused_by_name_and_nothing_is_sent(
    broker: Broker, nmvs: Rig, daemon: Daemon
) -> None:
    daemon.start()
    pack = nmvs.packs[4]
    body = request("dup-1", "verify", pack).decode()
    twice = body.replace('"op": "verify"', '"op": "verify", "op": "dispense"')
    async with MqttProbe(broker, (RESULT, ERROR)) as lgo:
        await lgo.publish(REQUEST, twice)
        await lgo.wait_for(lambda r: len(errors(r)) == 1)
        (refused,) = errors(lgo.received)
        assert refused["problems"][0]["detail"] == (  # type: ignore[index]
            "the field 'op' appears twice in one object; send each field once"
        )
        assert "dup-1" not in finals(lgo.received, RESULT)
        validate_all(lgo.received)
    assert await nmvs.transactions() == []
    assert (await nmvs.pack_state(pack))["state"] == "ACTIVE"
    assert daemon.terminate() == 0


def _daemon_speaking(tmp_path: Path, broker: Broker, nmvs: Rig, protocol: str) -> Daemon:
    config = write_config(tmp_path / "gw", broker, nmvs.sim.url)
    config.write_text(
        config.read_text().replace(
            "reconnect_max_delay = 1\n", f'reconnect_max_delay = 1\nprotocol = "{protocol}"\n'
        )
    )
    return Daemon(config, tmp_path / "daemon.log")


async def _retained_requests_left(broker: Broker) -> list[Received]:
    """The requests the broker still keeps retained, once the gateway had time to delete them
    (it deletes right after publishing its error: poll until then, bounded)."""
    marker = f"{BASE}/probe-end"
    for _ in range(50):
        async with MqttProbe(broker, (REQUEST, marker)) as late:
            await late.publish(marker, b"x")  # retained messages are delivered before it
            await late.wait_for(lambda r: any(m.topic == marker for m in r))
        kept = [m for m in late.received if m.topic == REQUEST and m.payload]
        if not kept:
            return []
        await asyncio.sleep(0.1)
    return kept


async def test_a_retained_request_is_never_executed_over_mqtt_5(
    tmp_path: Path, broker: Broker, nmvs: Rig
) -> None:
    daemon = _daemon_speaking(tmp_path, broker, nmvs, "5")
    pack = nmvs.packs[5]
    try:
        daemon.start()
        async with MqttProbe(broker, (RESULT, ERROR)) as lgo:
            # live: Retain-As-Published shows the flag to the gateway
            await lgo.publish(REQUEST, request("kept-1", "dispense", pack), retain=True)
            await lgo.wait_for(lambda r: len(errors(r)) == 1)
            (ignored,) = errors(lgo.received)
            assert (ignored["request_id"], ignored["reason"]) == ("kept-1", "retained")
            assert "kept-1" not in finals(lgo.received, RESULT)
            validate_all(lgo.received)
        assert await _retained_requests_left(broker) == []  # deleted at the broker
        assert daemon.terminate() == 0
        daemon.start()  # and nothing replays after a restart
        async with MqttProbe(broker, (RESULT,)) as lgo:
            await lgo.publish(REQUEST, request("after", "verify", pack))
            await lgo.wait_for(lambda r: "after" in finals(r, RESULT))
            assert "kept-1" not in finals(lgo.received, RESULT)
        assert [t["use_case"] for t in await nmvs.transactions()] == ["G110"]
        assert daemon.terminate() == 0
    finally:
        daemon.close()


async def test_retained_requests_over_mqtt_3_1_1_are_ignored_when_replayed(
    tmp_path: Path, broker: Broker, nmvs: Rig
) -> None:
    """A 3.1.1 broker clears the retain flag on live delivery (MQTT 3.1.1 §3.3.1.3), so a
    request published retained while the gateway listens is executed once, like any request;
    every replay (a reconnection, a restart) carries the flag and is ignored and deleted."""
    daemon = _daemon_speaking(tmp_path, broker, nmvs, "3.1.1")
    early, live = nmvs.packs[6], nmvs.packs[7]
    try:
        async with MqttProbe(broker, (), protocol=V311) as careless:
            await careless.publish(REQUEST, request("early-1", "dispense", early), retain=True)
        async with MqttProbe(broker, (RESULT, ERROR), protocol=V311) as lgo:
            await asyncio.to_thread(daemon.start)
            await lgo.wait_for(lambda r: len(errors(r)) == 1)  # the replay at subscribe
            assert errors(lgo.received)[0]["request_id"] == "early-1"
            await lgo.publish(REQUEST, request("live-1", "verify", live), retain=True)
            await lgo.wait_for(lambda r: "live-1" in finals(r, RESULT))
        assert daemon.terminate() == 0
        async with MqttProbe(broker, (RESULT, ERROR), protocol=V311) as lgo:
            await asyncio.to_thread(daemon.start)
            await lgo.wait_for(lambda r: len(errors(r)) == 1)  # the live one, replayed
            assert errors(lgo.received)[0]["request_id"] == "live-1"
            await lgo.publish(REQUEST, request("after", "verify", early))
            await lgo.wait_for(lambda r: "after" in finals(r, RESULT))
            validate_all(lgo.received)
        assert await _retained_requests_left(broker) == []
        assert [t["use_case"] for t in await nmvs.transactions()] == ["G110", "G110"]
        assert daemon.terminate() == 0
    finally:
        daemon.close()


async def test_what_the_schema_refuses_the_daemon_refuses_naming_the_field_in_two_languages(
    broker: Broker, nmvs: Rig, daemon: Daemon
) -> None:
    daemon.start()
    pack = nmvs.packs[8].to_json()
    sent = {
        "v2": {"schema_version": 2, "id": "v2", "op": "verify", "pack": pack},
        "null-user": {"id": "null-user", "op": "verify", "pack": pack, "user": None},
        "no-op": {"id": "no-op", "pack": pack},
    }
    async with MqttProbe(broker, (RESULT, ERROR)) as lgo:
        for body in sent.values():
            await lgo.publish(REQUEST, json.dumps(body))
        await lgo.publish(REQUEST, json.dumps({"id": "tab\there", "op": "verify", "pack": pack}))
        await lgo.wait_for(lambda r: len(errors(r)) == 4)
        by_id = {e["request_id"]: e["problems"][0] for e in errors(lgo.received)}  # type: ignore[index]
        assert by_id["v2"]["detail"] == "schema_version must be 1 (or left out), not 2"
        assert by_id["null-user"]["detail"] == "user must be a string of at most 128 characters"
        assert by_id["no-op"]["message_fr"].startswith("La requête n'est pas valide (op est absent")
        assert by_id[None]["detail"].startswith("id must be at most 128 printable ASCII characters")
        assert finals(lgo.received, RESULT) == {}
        for body in sent.values():
            assert not _schema_accepts(body)
        validate_all(lgo.received)
    assert await nmvs.transactions() == []
    assert daemon.terminate() == 0


def _schema_accepts(body: dict[str, object]) -> bool:
    return not list(validator("request").iter_errors(body))
