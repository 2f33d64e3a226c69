"""The broker connection: one small adapter hiding aiomqtt 2.5.x from the rest of the gateway.

It owns reconnection (forever, capped exponential backoff — the broker being away is never a
reason to stop), the protocol choice (MQTT v5, falling back to 3.1.1 when the broker refuses v5),
TLS and username/password, the persistent session (fixed client id, clean start off, session
expiry) so the broker keeps QoS 1 requests while the daemon restarts, the availability contract
(retained QoS 1 ``offline`` will, ``online`` and every cached retained message republished after
each connect, because a broker without persistence forgets them), and publishing that returns only
after the broker's PUBACK.

Incoming messages are handed to one handler, one at a time and in order, with the broker's retain
flag (the handler decides what a retained message means), and acknowledged only
after the handler returned (paho's manual acknowledgement): a request the handler committed is
never lost, a request it deferred (:class:`Deferred`) is redelivered by the broker. A handler that
fails otherwise is logged, counted and acknowledged all the same: the broker redelivers
unacknowledged messages on every reconnect and stops delivering once its in-flight window is
full, so a message that always fails would otherwise block every later one, across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiomqtt
import structlog
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt import client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

ProtocolChoice = Literal["auto", "5", "3.1.1"]

MAX_INFLIGHT = 100  # unacknowledged QoS 1 publishes in flight (paho's default is 20)
# CONNACK codes meaning "I do not speak this protocol version": 1 in 3.1.1, 0x84 in v5.
_UNSUPPORTED_PROTOCOL = frozenset({1, 0x84})


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """How to reach the broker. Built by the daemon's configuration loader."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "nmvs-gateway"
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    check_hostname: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    protocol: ProtocolChoice = "auto"
    keepalive: int = 30
    session_expiry: int = 7 * 24 * 3600
    reconnect_max_delay: float = 30.0
    publish_timeout: float = 10.0


class BridgeError(Exception):
    """A publish did not get its PUBACK (not connected, connection lost, timeout)."""


class Deferred(Exception):
    """Raised by a handler to leave a message unacknowledged: the broker redelivers it after
    the next reconnect (used while the daemon shuts down)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish at QoS 1 (``correlation_data`` is sent only over MQTT v5)."""

    topic: str
    payload: bytes
    retain: bool = False
    correlation_data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message received on a subscribed topic."""

    topic: str
    payload: bytes
    retain: bool
    response_topic: str | None = None
    correlation_data: bytes | None = None


Handler = Callable[[Incoming], Awaitable[None]]


class TlsSetupError(ValueError):
    """A certificate or key file cannot be used; the message names the file and the reason."""


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """The client TLS context, from the CA file (or the system CAs) and the client identity."""
    try:
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"cannot load the CA file {settings.ca_file}: {_reason(exc)}") from None
    context.check_hostname = settings.check_hostname
    if settings.cert_file is not None:
        try:
            context.load_cert_chain(
                str(settings.cert_file), str(settings.key_file) if settings.key_file else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise TlsSetupError(
                f"cannot load the client certificate {settings.cert_file} "
                f"with key {settings.key_file}: {_reason(exc)}"
            ) from None
    return context


def _reason(exc: OSError) -> str:
    return str(exc.strerror or exc)


class Backoff:
    """Capped exponential delays: 0.5, 1, 2, … up to ``cap`` seconds; ``reset`` after success."""

    def __init__(self, initial: float = 0.5, cap: float = 30.0) -> None:
        self._initial = initial
        self._cap = cap
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._cap)
        return delay

    def reset(self) -> None:
        self._next = self._initial


class MqttBridge:
    """Keeps one connection to the broker alive and publishes through it.

    Run :meth:`run` as a task for the life of the daemon; call :meth:`shutdown` before cancelling
    it so that ``offline`` is published by us rather than by the broker's will.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        status_topic: str,
        online_payload: Callable[[], bytes],
        offline_payload: bytes,
        subscriptions: tuple[str, ...] = (),
        handler: Handler | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._status_topic = status_topic
        self._online_payload = online_payload
        self._offline_payload = offline_payload
        self._subscriptions = subscriptions
        self._handler = handler
        self._sleep = sleep
        self._log = structlog.get_logger("gateway.mqtt")
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._session_end: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._generation = 0
        self._retained: dict[str, bytes] = {}
        self._protocol: aiomqtt.ProtocolVersion | None = None
        self._tls: ssl.SSLContext | None = tls_context(settings) if settings.tls else None
        self._last_error: str | None = None
        self._connects = 0
        self._connected_since: float | None = None
        self._closing = False
        self._announced = False  # "online" only once the owner says it is ready (announce)
        self._handler_failures = 0

    # -- state -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def health(self) -> dict[str, Any]:
        protocol = None
        if self._protocol is not None:
            protocol = "5" if self._protocol is aiomqtt.ProtocolVersion.V5 else "3.1.1"
        return {
            "connected": self.connected,
            "protocol": protocol,
            "connects": self._connects,
            "connected_since": self._connected_since,
            "last_error": self._last_error,
            "handler_failures": self._handler_failures,
        }

    # -- connection loop -------------------------------------------------------------------

    async def run(self) -> None:
        backoff = Backoff(cap=self._settings.reconnect_max_delay)
        fallback = False
        while not self._closing:
            protocol = self._choose_protocol(fallback)
            try:
                await self._session(protocol, backoff)
            except MqttConnectError as exc:
                refused = _reason_value(exc)
                if (
                    self._settings.protocol == "auto"
                    and protocol is aiomqtt.ProtocolVersion.V5
                    and refused in _UNSUPPORTED_PROTOCOL
                ):
                    self._log.warning("mqtt_v5_refused_falling_back_to_3_1_1")
                    fallback = True
                    continue
                self._record_failure(f"connection refused: {exc}")
            except aiomqtt.MqttError as exc:
                self._record_failure(str(exc) or type(exc).__name__)
            if self._closing:
                return
            await self._sleep(backoff.next())

    def _choose_protocol(self, fallback: bool) -> aiomqtt.ProtocolVersion:
        if self._settings.protocol == "3.1.1" or fallback:
            return aiomqtt.ProtocolVersion.V311
        return aiomqtt.ProtocolVersion.V5

    def _record_failure(self, message: str) -> None:
        self._last_error = message
        self._log.warning(
            "mqtt_disconnected",
            error=message,
            host=self._settings.host,
            port=self._settings.port,
        )

    def _make_client(self, protocol: aiomqtt.ProtocolVersion) -> aiomqtt.Client:
        v5 = protocol is aiomqtt.ProtocolVersion.V5
        connect_properties = None
        will_properties = None
        if v5:
            connect_properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            connect_properties.SessionExpiryInterval = self._settings.session_expiry
        client = aiomqtt.Client(
            self._settings.host,
            self._settings.port,
            identifier=self._settings.client_id,
            protocol=protocol,
            username=self._settings.username,
            password=self._settings.password,
            will=aiomqtt.Will(self._status_topic, self._offline_payload, 1, True, will_properties),
            clean_session=None if v5 else False,
            clean_start=False if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=connect_properties,
            keepalive=self._settings.keepalive,
            tls_context=self._tls,
            timeout=self._settings.publish_timeout,
            max_inflight_messages=MAX_INFLIGHT,
            # Small packets (PUBLISH, PUBACK) must not wait for Nagle's algorithm.
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )
        # aiomqtt does not expose paho's manual acknowledgement; it is what lets us acknowledge
        # a request only after the engine committed it.
        client._client.manual_ack_set(True)
        client.pending_calls_threshold = 10 * MAX_INFLIGHT  # batches are pipelined on purpose
        return client

    async def _session(self, protocol: aiomqtt.ProtocolVersion, backoff: Backoff) -> None:
        client = self._make_client(protocol)
        async with client:
            self._client = client
            self._session_end = asyncio.get_running_loop().create_future()
            self._protocol = protocol
            self._generation += 1
            self._connects += 1
            self._connected_since = time.time()
            backoff.reset()
            try:
                for topic in self._subscriptions:
                    # v5: Retain-As-Published, so that a request published retained says so even
                    # on live delivery (3.1.1 brokers clear the flag then, and set it on replays)
                    if protocol is aiomqtt.ProtocolVersion.V5:
                        options = SubscribeOptions(qos=1, retainAsPublished=True)
                        await client.subscribe(topic, options=options)
                    else:
                        await client.subscribe(topic, qos=1)
                if self._closing:  # a stop that came during the handshake: never go online
                    return
                announced = self._announced
                if announced:
                    await client.publish(
                        self._status_topic, self._online_payload(), qos=1, retain=True
                    )
                for topic, payload in list(self._retained.items()):
                    await client.publish(topic, payload, qos=1, retain=True)
                if self._closing:  # a stop during those publishes saw no connection to use
                    if announced:
                        await client.publish(
                            self._status_topic, self._offline_payload, qos=1, retain=True
                        )
                    return
                self._connected.set()  # no await since the check: shutdown() sees it now
                if self._announced and not announced:  # announce() came during the handshake
                    with contextlib.suppress(BridgeError):
                        await self.publish(self._status_topic, self._online_payload(), retain=True)
                self._log.info("mqtt_connected", protocol=self.health()["protocol"])
                async for message in client.messages:
                    await self._dispatch(client, message)
            finally:
                self._session_end.set_result(None)
                self._connected.clear()
                self._client = None
                self._connected_since = None

    async def _dispatch(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        if self._handler is not None:
            try:
                await self._handler(_incoming(message))
            except Deferred:
                return
            except Exception:
                # Acknowledged anyway: retrying a message that fails could block the queue.
                self._handler_failures += 1
                self._log.exception("mqtt_handler_failed", topic=str(message.topic))
        client._client.ack(message.mid, message.qos)

    # -- publishing ------------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        correlation_data: bytes | None = None,
    ) -> None:
        """Publish once at QoS 1 and return after the PUBACK; :class:`BridgeError` otherwise."""
        await self.publish_all([Outgoing(topic, payload, retain, correlation_data)])

    async def publish_all(self, messages: Sequence[Outgoing]) -> None:
        """Publish in order, pipelined (one round trip for the lot), and return after every
        PUBACK; :class:`BridgeError` if any is missing (some may then have been delivered)."""
        client = self._client
        if client is None or not self.connected:
            raise BridgeError("not connected to the broker")
        # Started in order, so paho queues the PUBLISH packets in this order.
        sending = [
            asyncio.ensure_future(
                client.publish(
                    m.topic, m.payload, qos=1, retain=m.retain, properties=self._properties(m)
                )
            )
            for m in messages
        ]
        for future in sending:  # a publish that fails after the lot was given up is still read
            future.add_done_callback(_consume)
        everything = asyncio.gather(*sending)
        # aiomqtt leaves a publish waiting for its PUBACK until the timeout when the connection
        # drops; racing it against the end of the session reports the loss at once.
        await asyncio.wait((everything, self._session_end), return_when=asyncio.FIRST_COMPLETED)
        if not everything.done():
            everything.cancel()
            raise BridgeError(f"publish to {messages[0].topic} failed: connection lost")
        try:
            everything.result()
        except aiomqtt.MqttError as exc:
            raise BridgeError(f"publish to {messages[0].topic} failed: {exc}") from exc

    def _properties(self, message: Outgoing) -> Properties | None:
        if message.correlation_data is None or self._protocol is not aiomqtt.ProtocolVersion.V5:
            return None
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.CorrelationData = message.correlation_data
        return properties

    async def deliver_all(self, messages: Sequence[Outgoing]) -> None:
        """:meth:`publish_all`, waiting for the broker and retrying the lot until every PUBACK
        arrived (at least once, first deliveries in order)."""
        while True:
            await self._connected.wait()
            generation = self._generation
            try:
                await self.publish_all(messages)
                return
            except BridgeError as exc:
                self._log.info("mqtt_publish_retry", error=str(exc), messages=len(messages))
                if self._generation == generation and self.connected:
                    await self._sleep(0.5)

    async def set_retained(self, topic: str, payload: bytes) -> None:
        """Remember ``payload`` as the retained state of ``topic`` and publish it if connected.

        The cache is republished after every connect, so a failure here is harmless.
        """
        self._retained[topic] = payload
        if self.connected:
            with contextlib.suppress(BridgeError):
                await self.publish(topic, payload, retain=True)

    async def announce(self) -> None:
        """The owner is ready (its engine is open): publish ``online`` now and after every
        connect. Before this, a connection carries requests in but says nothing."""
        self._announced = True
        if self.connected:
            with contextlib.suppress(BridgeError):
                await self.publish(self._status_topic, self._online_payload(), retain=True)

    async def shutdown(self, grace: float = 3.0) -> None:
        """Publish the retained ``offline`` status ourselves; then the owner cancels :meth:`run`."""
        self._closing = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                if not self.connected and self._client is not None:
                    # a session between its CONNECT and its first publishes (maybe ``online``
                    # already): let it see _closing and end, saying offline itself, or connect
                    ended: asyncio.Future[Any] = asyncio.ensure_future(
                        asyncio.shield(self._session_end)
                    )
                    up: asyncio.Future[Any] = asyncio.ensure_future(self._connected.wait())
                    try:
                        await asyncio.wait({ended, up}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        ended.cancel()
                        up.cancel()
                if self.connected:
                    with contextlib.suppress(BridgeError):
                        await self.publish(self._status_topic, self._offline_payload, retain=True)


def _consume(future: asyncio.Future[Any]) -> None:
    """Read a finished publish's outcome, so that a failure nobody awaits any more (the session
    ended, another publish of the lot failed first) is not an "exception was never retrieved"
    traceback; :meth:`MqttBridge.publish_all` reports the loss itself."""
    if not future.cancelled():
        future.exception()


def _incoming(message: aiomqtt.Message) -> Incoming:
    response_topic = None
    correlation = None
    properties = message.properties
    if properties is not None:
        response_topic = getattr(properties, "ResponseTopic", None)
        correlation = getattr(properties, "CorrelationData", None)
    payload = message.payload
    if isinstance(payload, str):
        payload = payload.encode()
    elif not isinstance(payload, bytes | bytearray):
        payload = b"" if payload is None else str(payload).encode()
    return Incoming(
        topic=str(message.topic),
        payload=bytes(payload),
        retain=bool(message.retain),
        response_topic=response_topic,
        correlation_data=bytes(correlation) if correlation is not None else None,
    )


def _reason_value(exc: aiomqtt.MqttCodeError) -> int | None:
    rc = exc.rc
    if rc is None:
        return None
    value = getattr(rc, "value", rc)
    return int(value) if isinstance(value, int) else None
