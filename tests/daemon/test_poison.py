"""Requests that once made the request handler raise (deeply nested JSON, lone surrogates) are
answered on ``<base>/error`` and never block the requests after them, before or after a restart: a real
mosquitto (whose in-flight window is 20 messages) and ``nmvs-gateway run`` in a subprocess."""

from __future__ import annotations

import json

from tests.brokers import Broker, MqttProbe
from tests.daemon.harness import BASE, Daemon, Rig, finals, request
from tests.mqtt.schemas import validate

RESULT, REQUEST, REPLIES = f"{BASE}/result", f"{BASE}/request", "lgo/replies"
ERROR = f"{BASE}/error"
NESTED = b"[" * 3000 + b"]" * 3000
UNICODE = "is not valid Unicode text (it contains a lone surrogate)"


def surrogate_request(n: int, pack: dict[str, str]) -> tuple[bytes, str]:
    """A request with a lone surrogate in one field (JSON escapes it as ``\\ud800``)."""
    field = ("id", "scan_id", "user", "pack.serial")[n % 4]
    body: dict[str, object] = {"id": f"poison-{n}", "op": "verify", "pack": pack}
    if field == "pack.serial":
        body["pack"] = {**pack, "serial": "S\ud800"}
    elif field == "scan_id":
        del body["pack"]
        body["scan_id"] = "\ud800"
    else:
        body[field] = "x\ud800"
    return json.dumps(body).encode(), field


async def test_poison_requests_are_rejected_and_never_block_the_queue(
    broker: Broker, nmvs: Rig, daemon: Daemon
) -> None:
    daemon.start()
    pack = nmvs.packs[0]
    fields: dict[str, str] = {}
    async with MqttProbe(broker, (RESULT, ERROR, REPLIES)) as lgo:
        for _ in range(25):
            await lgo.publish(REQUEST, NESTED, response_topic=REPLIES)
        for n in range(25):
            payload, fields[f"poison-{n}"] = surrogate_request(n, pack.to_json())
            await lgo.publish(REQUEST, payload, response_topic=REPLIES)
        # A byte order mark before the JSON is ignored.
        await lgo.publish(REQUEST, b"\xef\xbb\xbf" + request("bom", "verify", nmvs.packs[1]))
        await lgo.publish(REQUEST, request("valid", "verify", pack))
        await lgo.wait_for(lambda r: {"bom", "valid"} <= finals(r, RESULT).keys(), within=30)
        await lgo.wait_for(lambda r: len(lgo.on(REPLIES)) == 50)
        await lgo.wait_for(lambda r: len(lgo.on(ERROR)) == 50)
        replies = [validate("error", m.payload) for m in lgo.on(REPLIES)]
        errors = [validate("error", m.payload) for m in lgo.on(ERROR)]
        results = finals(lgo.received, RESULT)
    assert results["valid"][-1]["outcome"] == "done"
    assert results["bom"][-1]["outcome"] == "done"
    assert {r["reason"] for r in replies} == {"bad_request"}
    assert set(results) == {"bom", "valid"}  # results carry transactions only
    details = [r["problems"][0]["detail"] for r in replies]
    assert details[:25] == ["the request is not valid JSON (nesting too deep)"] * 25
    expected = {
        f"poison-{n}": f"{fields[f'poison-{n}']} {UNICODE}"
        for n in range(25)
        if fields[f"poison-{n}"] != "id"
    }
    rejected = {
        error["request_id"]: error["problems"][0]["detail"]
        for error in errors
        if error["request_id"] is not None
    }
    assert rejected == expected
    assert details[25:].count(f"id {UNICODE}") == 7  # no readable id: request_id null
    assert "Traceback" not in daemon.log_text()
    assert daemon.terminate() == 0

    # Nothing left unacknowledged: after a restart only the new request is answered.
    daemon.start()
    async with MqttProbe(broker, (RESULT, REPLIES)) as lgo:
        await lgo.publish(REQUEST, request("after-restart", "verify", pack))
        await lgo.wait_for(lambda r: "after-restart" in finals(r, RESULT), within=30)
        assert lgo.on(REPLIES) == []
        assert set(finals(lgo.received, RESULT)) == {"after-restart"}
    assert daemon.terminate() == 0
