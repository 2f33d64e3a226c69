"""The broker adapter against a real mosquitto: availability, retained state, PUBACK publishing,
persistent session, request delivery, v5 properties, protocol fallback, TLS and passwords."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
import trustme

from gateway.mqtt.bridge import (
    BridgeError,
    Incoming,
    MqttBridge,
    MqttSettings,
    Outgoing,
    TlsSetupError,
    _consume,
)
from tests.brokers import Broker, MqttProbe, eventually, free_port

STATUS = "nmvs/t1/status"
REQUEST = "nmvs/t1/request"
ONLINE = b'{"state":"online"}'
OFFLINE = b'{"state":"offline"}'


def settings_for(broker: Broker, **overrides: object) -> MqttSettings:
    base: dict[str, object] = {"host": broker.host, "port": broker.port, "client_id": "gw-t1"}
    base.update(overrides)
    return MqttSettings(**base)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(bridge: MqttBridge, *, wait: bool = True) -> AsyncIterator[MqttBridge]:
    await bridge.announce()  # the owner is ready from the start here
    task = asyncio.create_task(bridge.run())
    try:
        if wait:
            async with asyncio.timeout(10):
                await bridge.wait_connected()
        yield bridge
    finally:
        await bridge.shutdown()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def make_bridge(
    settings: MqttSettings, received: list[Incoming] | None = None, **kw: object
) -> MqttBridge:
    async def handler(message: Incoming) -> None:
        assert received is not None
        received.append(message)

    return MqttBridge(
        settings,
        status_topic=STATUS,
        online_payload=lambda: ONLINE,
        offline_payload=OFFLINE,
        subscriptions=(REQUEST,) if received is not None else (),
        handler=handler if received is not None else None,
        **kw,  # type: ignore[arg-type]
    )


async def test_online_is_retained_and_shutdown_leaves_offline_retained(broker: Broker) -> None:
    async with running(make_bridge(settings_for(broker))), MqttProbe(broker, (STATUS,)) as late:
        got = await late.wait_for(lambda r: len(r) >= 1)
        assert got[0].payload == ONLINE and got[0].retain
    async with MqttProbe(broker, (STATUS,)) as after:
        got = await after.wait_for(lambda r: len(r) >= 1)
        assert got[0].payload == OFFLINE and got[0].retain


@pytest.mark.parametrize("delay_ms", [0, 1, 2, 3, 5, 8, 12, 20])
async def test_a_stop_during_the_connect_publishes_leaves_offline_retained(
    broker: Broker, delay_ms: int
) -> None:
    """The stop lands at some moment of the session's start (subscribe, online, retained
    republish): whatever the moment, what stays retained is offline, never online."""
    bridge = make_bridge(settings_for(broker))
    await bridge.set_retained("nmvs/t1/health", b'{"n":1}')
    await bridge.announce()
    task = asyncio.create_task(bridge.run())
    await asyncio.sleep(delay_ms / 1000)
    await bridge.shutdown()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    async with MqttProbe(broker, (STATUS,)) as after:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await after.wait_for(lambda r: len(r) >= 1)
        assert [m.payload for m in after.on(STATUS)] in ([], [OFFLINE])


async def test_will_is_offline_when_the_connection_dies(broker: Broker) -> None:
    bridge = make_bridge(settings_for(broker, keepalive=2))
    async with running(bridge), MqttProbe(broker, (STATUS,)) as probe:
        await probe.wait_for(lambda r: any(m.payload == ONLINE for m in r))
        # Drop the TCP connection without DISCONNECT, as a crash or a cable pull would.
        sock = bridge._client._client.socket()  # type: ignore[union-attr]
        sock.shutdown(2)
        await probe.wait_for(lambda r: r[-1].payload == OFFLINE)
        # ... and it comes back by itself, online again.
        await probe.wait_for(lambda r: r[-1].payload == ONLINE)


async def test_retained_state_is_republished_after_the_broker_lost_it(broker: Broker) -> None:
    bridge = make_bridge(settings_for(broker))
    async with running(bridge):
        await bridge.set_retained("nmvs/t1/health", b'{"n":1}')
        broker.restart()  # persistence is off: the broker forgets every retained message
        await eventually(lambda: bridge.connected and bridge.health()["connects"] >= 2)
        async with MqttProbe(broker, (STATUS, "nmvs/t1/health")) as probe:
            got = await probe.wait_for(lambda r: len(r) >= 2)
            assert {(m.topic, m.payload, m.retain) for m in got} == {
                (STATUS, ONLINE, True),
                ("nmvs/t1/health", b'{"n":1}', True),
            }


async def test_deliver_waits_for_the_broker_and_returns_after_puback(broker: Broker) -> None:
    may_reconnect = asyncio.Event()

    async def gated_sleep(delay: float) -> None:
        await may_reconnect.wait()

    bridge = make_bridge(settings_for(broker), sleep=gated_sleep)
    async with running(bridge):
        broker.stop()
        with pytest.raises(BridgeError):
            async with asyncio.timeout(5):
                while True:  # publish raises as soon as the loss is noticed
                    await bridge.publish("nmvs/t1/result", b"x")
                    await asyncio.sleep(0.05)
        pending = asyncio.create_task(
            bridge.deliver_all([Outgoing("nmvs/t1/result", b'{"id":"r1"}')])
        )
        await asyncio.sleep(0.3)
        assert not pending.done()
        broker.start()
        async with MqttProbe(broker, ("nmvs/t1/result",)) as probe:
            may_reconnect.set()
            async with asyncio.timeout(15):
                await pending
            got = await probe.wait_for(lambda r: len(r) >= 1)
            assert got[0].payload == b'{"id":"r1"}'
            assert not got[0].retain


async def test_requests_arrive_in_order_with_v5_properties_and_the_retain_flag(
    broker: Broker,
) -> None:
    received: list[Incoming] = []
    async with MqttProbe(broker, ()) as careless:
        # Retained before the gateway subscribes: it replays on every (re)subscription.
        await careless.publish(REQUEST, b'{"id":"old"}', retain=True)
    bridge = make_bridge(settings_for(broker), received)
    async with running(bridge), MqttProbe(broker, ()) as lgo:
        for n in range(20):
            await lgo.publish(REQUEST, f'{{"id":"r{n}"}}'.encode())
        await lgo.publish(
            REQUEST, b'{"id":"v5"}', response_topic="lgo/replies", correlation_data=b"\x00\x01"
        )
        await lgo.publish(REQUEST, b'{"id":"live-kept"}', retain=True)
        await eventually(lambda: len(received) >= 23, within=10)
    ids = [json.loads(m.payload)["id"] for m in received]
    assert ids == ["old"] + [f"r{n}" for n in range(20)] + ["v5", "live-kept"]
    # the handler decides what a retained request means: the flag reaches it, live ones too
    # (MQTT 5 Retain-As-Published)
    assert [m.retain for m in received] == [True] + [False] * 21 + [True]
    assert received[-2].response_topic == "lgo/replies"
    assert received[-2].correlation_data == b"\x00\x01"
    assert received[1].response_topic is None


async def test_requests_sent_while_the_gateway_is_down_are_kept_by_its_session(
    broker: Broker,
) -> None:
    received: list[Incoming] = []
    async with running(make_bridge(settings_for(broker), received)):
        pass  # first connect creates the persistent session and its subscription
    async with MqttProbe(broker, ()) as lgo:
        for n in range(5):
            await lgo.publish(REQUEST, f'{{"id":"q{n}"}}'.encode())
    async with running(make_bridge(settings_for(broker), received)):
        await eventually(lambda: len(received) >= 5, within=10)
    assert [json.loads(m.payload)["id"] for m in received] == [f"q{n}" for n in range(5)]


async def test_messages_the_handler_fails_on_are_acknowledged_so_they_cannot_block_the_queue(
    broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    # More failing messages than mosquitto's in-flight window (20): were they left
    # unacknowledged, "after" would never be delivered, and they would return on every connect.
    seen: list[bytes] = []

    async def handler(message: Incoming) -> None:
        seen.append(message.payload)
        if message.payload.startswith(b"boom"):
            raise ValueError("handler bug")

    def bridge() -> MqttBridge:
        return MqttBridge(
            settings_for(broker),
            status_topic=STATUS,
            online_payload=lambda: ONLINE,
            offline_payload=OFFLINE,
            subscriptions=(REQUEST,),
            handler=handler,
        )

    booms = [f"boom{n}".encode() for n in range(25)]
    first = bridge()
    async with running(first), MqttProbe(broker, ()) as lgo:
        for boom in booms:
            await lgo.publish(REQUEST, boom)
        await lgo.publish(REQUEST, b"after")
        await eventually(lambda: b"after" in seen, within=15)
        assert first.health()["handler_failures"] == 25
    assert seen == [*booms, b"after"]
    assert capsys.readouterr().out.count("mqtt_handler_failed") == 25
    async with MqttProbe(broker, ()) as lgo:
        await lgo.publish(REQUEST, b"while away")  # kept by the persistent session
    async with running(bridge()):
        await eventually(lambda: b"while away" in seen, within=15)
    assert seen == [*booms, b"after", b"while away"]  # nothing failed came back


async def _only_3_1_1_proxy(target: Broker) -> tuple[asyncio.Server, int]:
    """A broker front that refuses MQTT v5 CONNECTs like a 3.1.1-only broker (CONNACK rc 1)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        header = await reader.readexactly(1)
        length, multiplier, raw_length = 0, 1, b""
        while True:
            byte = await reader.readexactly(1)
            raw_length += byte
            length += (byte[0] & 0x7F) * multiplier
            multiplier *= 128
            if not byte[0] & 0x80:
                break
        body = await reader.readexactly(length)
        if body[6] == 5:  # protocol level after the 2-byte length and "MQTT"
            writer.write(b"\x20\x02\x00\x01")
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(target.host, target.port)
        up_writer.write(header + raw_length + body)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    return server, port


async def test_falls_back_to_3_1_1_when_the_broker_refuses_v5(broker: Broker) -> None:
    server, port = await _only_3_1_1_proxy(broker)
    received: list[Incoming] = []
    async with server:
        bridge = make_bridge(MqttSettings(host="127.0.0.1", port=port, client_id="gw"), received)
        async with running(bridge):
            assert bridge.health()["protocol"] == "3.1.1"
            async with MqttProbe(broker, ()) as lgo:
                await lgo.publish(REQUEST, b'{"id":"via-311"}')
            await eventually(lambda: bool(received), within=10)
        assert received[0].payload == b'{"id":"via-311"}'


async def test_v5_is_used_when_the_broker_speaks_it(broker: Broker) -> None:
    async with running(make_bridge(settings_for(broker))) as bridge:
        assert bridge.health()["protocol"] == "5"


async def test_tls_with_password_connects_and_publishes(tls_broker: Broker) -> None:
    assert tls_broker.tls is not None
    settings = settings_for(
        tls_broker,
        tls=True,
        ca_file=tls_broker.tls.ca_file,
        cert_file=tls_broker.tls.client_cert_file,
        key_file=tls_broker.tls.client_key_file,
        username="gateway",
        password="s3cret-pw",
    )
    bridge = make_bridge(settings)
    async with running(bridge), MqttProbe(tls_broker, ("nmvs/t1/result",)) as probe:
        await bridge.publish("nmvs/t1/result", b"over tls")
        got = await probe.wait_for(lambda r: len(r) >= 1)
        assert got[0].payload == b"over tls"


async def test_wrong_password_is_reported_and_retried_not_fatal(tls_broker: Broker) -> None:
    assert tls_broker.tls is not None
    settings = settings_for(
        tls_broker,
        tls=True,
        ca_file=tls_broker.tls.ca_file,
        username="gateway",
        password="wrong",
    )
    sleeps: list[float] = []

    async def fast_sleep(delay: float) -> None:
        sleeps.append(delay)
        await asyncio.sleep(0.01)

    bridge = make_bridge(settings, sleep=fast_sleep)
    async with running(bridge, wait=False):
        await eventually(lambda: len(sleeps) >= 3, within=10)
        assert not bridge.connected
        assert "refused" in bridge.health()["last_error"]
        assert "wrong" not in bridge.health()["last_error"]
    assert sleeps[:3] == [0.5, 1.0, 2.0]


async def test_untrusted_server_certificate_is_not_accepted(
    tls_broker: Broker, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    settings = settings_for(
        tls_broker, tls=True, ca_file=other_ca, username="gateway", password="s3cret-pw"
    )

    async def fast_sleep(delay: float) -> None:
        await asyncio.sleep(0.01)

    bridge = make_bridge(settings, sleep=fast_sleep)
    async with running(bridge, wait=False):
        await eventually(lambda: bridge.health()["last_error"] is not None, within=10)
    assert "CERTIFICATE_VERIFY_FAILED" in bridge.health()["last_error"]
    assert not bridge.connected


async def test_missing_or_bad_certificate_files_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(TlsSetupError) as info:
        make_bridge(MqttSettings(tls=True, ca_file=missing))
    assert str(info.value) == f"cannot load the CA file {missing}: No such file or directory"
    garbage = tmp_path / "client.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(TlsSetupError) as info:
        make_bridge(MqttSettings(tls=True, cert_file=garbage, key_file=garbage))
    assert str(info.value).startswith(
        f"cannot load the client certificate {garbage} with key {garbage}: "
    )


async def test_a_pipelined_batch_arrives_complete_and_in_order(broker: Broker) -> None:
    bridge = make_bridge(settings_for(broker))
    async with running(bridge), MqttProbe(broker, ("nmvs/t1/#",)) as probe:
        batch = [
            Outgoing("nmvs/t1/result" if n % 3 else "nmvs/t1/scan", f"{n}".encode())
            for n in range(250)  # more than paho keeps in flight at once
        ]
        await bridge.publish_all(batch)
        await probe.wait_for(lambda r: len(r) >= 251)  # the retained status, then the batch
        got = [(m.topic, m.payload) for m in probe.received if m.topic != STATUS]
        assert got == [(m.topic, m.payload) for m in batch]


async def test_a_failed_publish_nobody_awaits_any_more_is_not_a_stray_traceback() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        for consumed in (True, False):
            future: asyncio.Future[None] = loop.create_future()
            if consumed:
                future.add_done_callback(_consume)
            future.set_exception(aiomqtt.MqttError("the connection dropped"))
            await asyncio.sleep(0)  # the done callbacks run
            del future
            gc.collect()
            assert len(reported) == (0 if consumed else 1)  # the unread one is what it prevents
    finally:
        loop.set_exception_handler(None)
