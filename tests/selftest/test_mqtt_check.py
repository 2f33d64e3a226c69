"""MQTT checks against a real mosquitto (plain, and TLS with a password)."""

from __future__ import annotations

import aiomqtt

from gateway.mqtt.bridge import MqttSettings
from gateway.mqtt.contract import status_payload
from gateway.selftest.mqtt_check import check_mqtt
from gateway.selftest.results import CheckResult, Status
from tests.brokers import Broker, free_port

BASE = "nmvs/counter-1"


def settings(broker: Broker, **more: object) -> MqttSettings:
    return MqttSettings(host=broker.host, port=broker.port, **more)  # type: ignore[arg-type]


def by_name(found: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in found}


async def retain_status(broker: Broker, state: bytes) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.publish(f"{BASE}/status", state, qos=1, retain=True)


async def test_round_trip_and_no_daemon_yet(broker: Broker) -> None:
    found = by_name(await check_mqtt(settings(broker), BASE))
    assert found["mqtt.connect"].status is Status.OK
    assert found["mqtt.round-trip"].status is Status.OK
    assert found["mqtt.round-trip"].detail.startswith(
        f"published and received back on {BASE}/selftest/"
    )
    status = found["mqtt.status"]
    assert status.status is Status.WARNING and "never connected" in status.detail


async def test_the_daemon_online_and_offline(broker: Broker) -> None:
    await retain_status(broker, status_payload("online", gateway_id="counter-1", version="1"))
    assert by_name(await check_mqtt(settings(broker), BASE))["mqtt.status"].status is Status.OK
    await retain_status(broker, status_payload("offline", gateway_id="counter-1", version="1"))
    offline = by_name(await check_mqtt(settings(broker), BASE))["mqtt.status"]
    assert offline.status is Status.WARNING and offline.detail == "the gateway daemon is offline"
    assert "systemctl start nmvs-gateway" in offline.fix


async def test_the_self_test_does_not_take_the_daemons_client_id(broker: Broker) -> None:
    async with aiomqtt.Client(broker.host, broker.port, identifier="nmvs-gateway") as daemon:
        found = await check_mqtt(settings(broker, client_id="nmvs-gateway"), BASE)
        await daemon.publish(f"{BASE}/still-connected", b"1", qos=1)  # not kicked off
    assert all(r.status is not Status.FAIL for r in found)


def tls_settings(broker: Broker, password: str) -> MqttSettings:
    assert broker.tls is not None
    return settings(
        broker, tls=True, ca_file=broker.tls.ca_file, username="gateway", password=password
    )


async def test_tls_with_credentials(tls_broker: Broker) -> None:
    found = by_name(await check_mqtt(tls_settings(tls_broker, "s3cret-pw"), BASE))
    assert found["mqtt.connect"].detail == f"connected to 127.0.0.1:{tls_broker.port} as gateway"
    assert found["mqtt.round-trip"].status is Status.OK


async def test_a_wrong_password_is_refused(tls_broker: Broker) -> None:
    (only,) = await check_mqtt(tls_settings(tls_broker, "nope"), BASE)
    assert only.status is Status.FAIL and "refused" in only.detail
    assert "nope" not in only.detail and "mosquitto_passwd" in only.fix


async def test_an_untrusted_broker_certificate_names_the_ca_setting(tls_broker: Broker) -> None:
    untrusted = settings(tls_broker, tls=True, username="gateway", password="s3cret-pw")
    (only,) = await check_mqtt(untrusted, BASE)
    assert only.status is Status.FAIL and "CERTIFICATE_VERIFY_FAILED" in only.detail
    assert only.fix.startswith("set mqtt.ca_file")


async def test_a_plain_client_on_a_tls_port(tls_broker: Broker) -> None:
    (only,) = await check_mqtt(settings(tls_broker), BASE, wait_s=1)
    assert only.status is Status.FAIL and "mqtts://" in only.fix


async def test_a_missing_ca_file_is_named(tls_broker: Broker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (only,) = await check_mqtt(settings(tls_broker, tls=True, ca_file=tmp_path / "ca.pem"), BASE)
    assert only.status is Status.FAIL and str(tmp_path / "ca.pem") in only.detail


async def test_no_broker() -> None:
    (only,) = await check_mqtt(MqttSettings(port=free_port()), BASE, wait_s=2)
    assert only.status is Status.FAIL and only.name == "mqtt.connect"
    assert "systemctl start mosquitto" in only.fix
