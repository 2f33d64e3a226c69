"""Scans through the capture layer's real serial path (a pseudo-terminal) into the daemon: the
scan event, the automatic verify (policy on_scan), and an LGO request naming the scan."""

from __future__ import annotations

import json
from pathlib import Path

from tests.brokers import Broker, MqttProbe
from tests.capture.test_serial import SerialPort
from tests.daemon.harness import BASE, Daemon, finals, gs1_text, nmvs_simulator, write_config
from tests.mqtt.schemas import kind_of, validate

SCANNER = """
[[scanner]]
id = "desk-1"
kind = "serial"
path = "{path}"
counter = "1"
"""


def scanner_ready(messages: list) -> bool:  # type: ignore[type-arg]
    for message in messages:
        if message.topic == f"{BASE}/health":
            scanners = json.loads(message.payload)["scanners"]
            if scanners and scanners[0]["state"] == "ready":
                return True
    return False


def position(messages: list, topic: str, key: str, value: object) -> int:  # type: ignore[type-arg]
    """The index of the first message on ``topic`` whose ``key`` is ``value``."""
    for index, message in enumerate(messages):
        if message.topic == topic and json.loads(message.payload).get(key) == value:
            return index
    raise AssertionError(f"no {key}={value!r} on {topic}")


async def test_a_scan_is_published_verified_and_usable_by_the_lgo_after_a_restart(
    tmp_path: Path, broker: Broker
) -> None:
    port = SerialPort(tmp_path / "usb-Scanner-if00")
    async with nmvs_simulator() as nmvs:
        config = write_config(
            tmp_path / "gw", broker, nmvs.sim.url, extra=SCANNER.format(path=port.link)
        )
        daemon = Daemon(config, tmp_path / "daemon.log")
        try:
            daemon.start()
            pack = nmvs.packs[5]
            async with MqttProbe(broker, (f"{BASE}/+",)) as lgo:
                await lgo.wait_for(scanner_ready)
                good_scan = gs1_text(pack).encode() + b"\r"
                # a bad scan, a good one and its trigger bounce (collapsed, rule 2)
                await port.send(b"garbage\x01\r" + good_scan + good_scan)
                await lgo.wait_for(lambda r: len(lgo.on(f"{BASE}/scan")) == 3)
                bad, good, repeat = (json.loads(m.payload) for m in lgo.on(f"{BASE}/scan"))
                assert not bad["ok"] and bad["pack"] is None and bad["problems"]
                assert bad["collapsed_into"] is None and bad["transaction_id"] is None
                assert good["ok"] and good["pack"] == pack.to_json()
                assert good["scanner_id"] == "desk-1" and good["counter"] == "1"
                assert good["text"] == gs1_text(pack) and good["collapsed_into"] is None
                assert repeat["collapsed_into"] == good["id"] and repeat["pack"] == good["pack"]
                await lgo.wait_for(lambda r: len(finals(r, f"{BASE}/result")) == 1)
                (verify,) = (b[0] for b in finals(lgo.received, f"{BASE}/result").values())
                assert verify["op"] == "verify" and verify["outcome"] == "done"
                assert verify["pack"] == pack.to_json()
                assert good["transaction_id"] == repeat["transaction_id"] == verify["id"]
                # the scan event comes before the result of the verify it started
                result = f"{BASE}/result"
                assert position(lgo.received, f"{BASE}/scan", "id", good["id"]) < position(
                    lgo.received, result, "id", verify["id"]
                )
                for message in lgo.received:
                    validate(kind_of(message.topic), message.payload)
            # scan ids survive a restart: the LGO sells the scanned pack afterwards
            assert daemon.terminate() == 0
            daemon.start()
            error_topic = f"{BASE}/error"
            async with MqttProbe(broker, (f"{BASE}/result", error_topic)) as lgo:
                asked = {"from-scan": good["id"], "from-bad": bad["id"], "from-nowhere": "nope"}
                for request_id, scan_id in asked.items():
                    request = {"id": request_id, "op": "dispense", "scan_id": scan_id}
                    await lgo.publish(f"{BASE}/request", json.dumps(request))
                await lgo.wait_for(lambda r: "from-scan" in finals(r, result))
                await lgo.wait_for(lambda r: len(lgo.on(error_topic)) == 2)
                dispense = finals(lgo.received, result)["from-scan"][0]
                assert dispense["outcome"] == "done" and dispense["pack"] == pack.to_json()
                errors = {
                    e["request_id"]: e for e in (json.loads(m.payload) for m in lgo.on(error_topic))
                }
                refused = errors["from-bad"]
                assert refused["reason"] == "bad_request"
                assert refused["problems"][0]["detail"] == (
                    f"scan {bad['id']!r} did not give a pack identifier; scan the pack again"
                )
                unknown = errors["from-nowhere"]
                assert unknown["problems"][0]["detail"] == (
                    "scan_id 'nope' is not a scan of this gateway; send the pack instead"
                )
                assert unknown["problems"][0]["message_fr"] == (
                    "La requête n'est pas valide (scan_id 'nope' n'est pas un scan de cette "
                    "passerelle ; envoyez la boîte elle-même) : corrigez-la et renvoyez-la."
                )
                assert set(finals(lgo.received, result)) == {"from-scan"}
                for message in lgo.received:
                    validate(kind_of(message.topic), message.payload)
            assert daemon.terminate() == 0
        finally:
            daemon.close()
            port.close()
