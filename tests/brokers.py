"""A real mosquitto broker for the tests: started on a free loopback port with a temporary
configuration (persistence off), optionally with TLS (trustme certificates) and a password file.
The launcher itself is production code (``gateway/demo/mosquitto.py``, also used by the demo).

Used by ``tests/mqtt`` and ``tests/daemon`` (and anyone else who needs a broker) through the
fixtures in ``tests/mqtt/conftest.py`` or directly with :func:`start_mosquitto`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import trustme
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.demo.mosquitto import Broker, BrokerTls
from gateway.demo.mosquitto import find_binary as find_binary  # re-exported for the tests
from gateway.demo.mosquitto import free_port as free_port
from gateway.demo.mosquitto import start_mosquitto as start_private_mosquitto

# Test and benchmark clients send small packets back to back: no Nagle delay.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


def start_mosquitto(
    directory: Path,
    *,
    tls: trustme.CA | None = None,
    username: str | None = None,
    password: str | None = None,
) -> Broker:
    """Write a configuration into ``directory`` and start mosquitto with it (caller stops it)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["set_tcp_nodelay true"]  # no Nagle delay on small packets (latency tests, bench)
    broker_tls = None
    if tls is not None:
        server = tls.issue_cert("127.0.0.1", "localhost")
        client = tls.issue_cert("lgo-client@example.test")
        ca_file = directory / "ca.pem"
        tls.cert_pem.write_to_path(str(ca_file))
        server_cert = directory / "server.pem"
        server_key = directory / "server.key"
        server.cert_chain_pems[0].write_to_path(str(server_cert))
        server.private_key_pem.write_to_path(str(server_key))
        client_cert = directory / "client.pem"
        client_key = directory / "client.key"
        client.cert_chain_pems[0].write_to_path(str(client_cert))
        client.private_key_pem.write_to_path(str(client_key))
        lines += [
            f"cafile {ca_file}",
            f"certfile {server_cert}",
            f"keyfile {server_key}",
            "require_certificate false",
        ]
        broker_tls = BrokerTls(ca_file, client_cert, client_key)
    return start_private_mosquitto(
        directory, listener_lines=lines, tls=broker_tls, username=username, password=password
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A plain mosquitto on a free loopback port, anonymous access, persistence off."""
    started = start_mosquitto(tmp_path / "mosquitto")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Broker]:
    """A mosquitto with a TLS listener (trustme CA) and username ``gateway`` / ``s3cret-pw``."""
    started = start_mosquitto(
        tmp_path / "mosquitto-tls", tls=trustme.CA(), username="gateway", password="s3cret-pw"
    )
    try:
        yield started
    finally:
        started.stop()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    correlation_data: bytes | None

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttProbe:
    """A test-side MQTT client (the LGO): subscribes, records every message, waits for some."""

    def __init__(
        self,
        broker: Broker,
        topics: tuple[str, ...],
        *,
        protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V5,
        identifier: str | None = None,
    ) -> None:
        self.broker = broker
        self.topics = topics
        self.protocol = protocol
        self.identifier = identifier
        self.received: list[Received] = []
        self._changed = asyncio.Condition()
        self._stack = contextlib.AsyncExitStack()
        self.client: aiomqtt.Client

    async def __aenter__(self) -> MqttProbe:
        tls_params = None
        if self.broker.tls is not None:
            tls_params = aiomqtt.TLSParameters(ca_certs=str(self.broker.tls.ca_file))
        self.client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            protocol=self.protocol,
            identifier=self.identifier,
            username=self.broker.username,
            password=self.broker.password,
            tls_params=tls_params,
            socket_options=NO_DELAY,
        )
        await self._stack.enter_async_context(self.client)
        for topic in self.topics:
            await self.client.subscribe(topic, qos=1)
        task = asyncio.create_task(self._collect())
        self._stack.push_async_callback(_cancel, task)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _collect(self) -> None:
        async for message in self.client.messages:
            props = message.properties
            correlation = getattr(props, "CorrelationData", None) if props else None
            payload = message.payload
            assert isinstance(payload, bytes)
            async with self._changed:
                self.received.append(
                    Received(str(message.topic), payload, bool(message.retain), correlation)
                )
                self._changed.notify_all()

    def on(self, topic: str) -> list[Received]:
        return [m for m in self.received if m.topic == topic]

    async def wait_for(
        self, predicate: Callable[[list[Received]], bool], within: float = 15.0
    ) -> list[Received]:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: predicate(self.received))
        return self.received

    async def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        retain: bool = False,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
    ) -> None:
        properties = None
        if response_topic is not None:
            properties = Properties(PacketTypes.PUBLISH)
            properties.ResponseTopic = response_topic
            if correlation_data is not None:
                properties.CorrelationData = correlation_data
        await self.client.publish(topic, payload, qos=1, retain=retain, properties=properties)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
        await task


async def eventually(condition: Callable[[], bool], within: float = 15.0) -> None:
    """Wait until ``condition()`` holds (state owned by another task), failing after ``within`` s."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polling state we do not own
            await asyncio.sleep(0.01)
