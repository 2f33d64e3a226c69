"""MQTT checks: connect with the gateway's credentials, publish/subscribe round trip on a private
topic under the gateway's base, and the daemon's retained ``<base>/status``.

The self-test connects with its own client id (``<client_id>-selftest-<random>``): reusing the
daemon's id would make the broker disconnect the running daemon.
"""

from __future__ import annotations

import asyncio
import json
import secrets

import aiomqtt

from gateway.mqtt.bridge import MqttSettings, TlsSetupError, tls_context
from gateway.mqtt.contract import Topics
from gateway.selftest.results import CheckResult, fail, ok, warning

ROUND_TRIP_TIMEOUT_S = 5.0


async def check_mqtt(
    settings: MqttSettings, base_topic: str, *, wait_s: float = ROUND_TRIP_TIMEOUT_S
) -> list[CheckResult]:
    where = f"{settings.host}:{settings.port}"
    try:
        context = tls_context(settings) if settings.tls else None
    except TlsSetupError as exc:
        return [fail("mqtt.connect", str(exc), "fix mqtt.ca_file / cert_file / key_file")]
    topics = Topics(base_topic)
    private = f"{base_topic}/selftest/{secrets.token_hex(6)}"
    client = aiomqtt.Client(
        settings.host,
        settings.port,
        identifier=f"{settings.client_id}-selftest-{secrets.token_hex(3)}",
        username=settings.username,
        password=settings.password,
        tls_context=context,
        timeout=wait_s,
    )
    try:
        async with client:
            results = [
                ok("mqtt.connect", f"connected to {where} as {settings.username or 'anonymous'}")
            ]
            await client.subscribe(topics.status, qos=1)
            await client.subscribe(private, qos=1)
            return results + await _exchange(client, private, topics.status, wait_s)
    except aiomqtt.MqttCodeError as exc:
        return [
            fail(
                "mqtt.connect",
                f"the broker at {where} refused the connection: {exc}",
                "check mqtt.username and the password file, and the broker's password file "
                "(mosquitto_passwd)",
            )
        ]
    except aiomqtt.MqttError as exc:
        return [fail("mqtt.connect", f"cannot connect to {where}: {exc}", _connect_fix(str(exc)))]


def _connect_fix(error: str) -> str:
    if "CERTIFICATE_VERIFY_FAILED" in error or "SSL" in error:
        return (
            "set mqtt.ca_file to the CA that signed the broker's certificate (and the host name "
            "in mqtt.url to one the certificate names)"
        )
    if "timed out" in error:
        return (
            "check mqtt.url: host and port, and mqtts:// for a TLS listener (a plain client on a "
            "TLS port waits forever)"
        )
    return "start the broker (systemctl start mosquitto) and check mqtt.url"


async def _exchange(
    client: aiomqtt.Client, private: str, status_topic: str, wait_s: float
) -> list[CheckResult]:
    """Publish a token on ``private`` and read until it comes back; the retained status, if
    any, arrives before it (the broker sends it on subscription)."""
    token = secrets.token_hex(8).encode()
    await client.publish(private, token, qos=1)
    status: CheckResult | None = None
    echoed = False
    try:
        async with asyncio.timeout(wait_s):
            async for message in client.messages:
                topic = str(message.topic)
                if topic == status_topic and message.retain:
                    status = _status_result(message.payload)
                elif topic == private and message.payload == token:
                    echoed = True
                    break
    except TimeoutError:
        pass
    round_trip = (
        ok("mqtt.round-trip", f"published and received back on {private}")
        if echoed
        else fail(
            "mqtt.round-trip",
            f"a message published on {private} did not come back within {wait_s:.0f} s",
            "the broker's ACL must let the gateway's user read and write its base topic "
            "(topic readwrite <base>/#)",
        )
    )
    return [round_trip, status or _no_status(status_topic)]


def _no_status(topic: str) -> CheckResult:
    return warning(
        "mqtt.status",
        f"no retained status on {topic}: the gateway daemon has never connected to this broker",
        "start the gateway (systemctl start nmvs-gateway)",
    )


def _status_result(payload: object) -> CheckResult:
    name = "mqtt.status"
    body = None
    if isinstance(payload, bytes | bytearray | str):
        try:
            body = json.loads(payload)
        except ValueError:
            body = None
    state = body.get("state") if isinstance(body, dict) else None
    if state == "online":
        return ok(name, "the gateway daemon is online")
    if not isinstance(state, str):
        return warning(
            name,
            f"the retained status is not the gateway's JSON: {payload!r:.80}",
            "another program publishes on the gateway's base topic: give the gateway its own "
            "mqtt.base_topic",
        )
    return warning(
        name,
        f"the gateway daemon is {state}",
        "start the gateway (systemctl start nmvs-gateway) and read its log (journalctl -u "
        "nmvs-gateway)",
    )
