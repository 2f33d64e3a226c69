"""An example pharmacy-software (LGO) client of nmvs-gateway, over MQTT 5 with aiomqtt.

It does what an integration needs, in a page: connect (and reconnect), follow the gateway's
``<base>/status``, send a request with a v5 response topic and correlation data, de-duplicate
results on ``id`` + ``status`` (delivery is at least once), re-send on timeout with the **same
id** (always safe: the id is an idempotency key), and tell a final result from an error::

    python examples/lgo_client.py --broker mqtt://127.0.0.1:1883 --base nmvs/counter-1 \\
        verify --pack '{"scheme": "GTIN", "product_code": "…", "batch": "…",
                        "expiry": "…", "serial": "…"}'
    python examples/lgo_client.py … dispense --scan-id 01JDB0Q6XK3T5M9W2C8H4N7R1A

It prints the final result (or the error) as one JSON line and exits 0 for a result, 2 for an
error on ``<base>/error``, 1 when no answer came. Copy it, keep the loop, change the printing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

FINAL = {"done", "rejected", "failed"}


class Lgo:
    """One connection to the broker; :meth:`ask` sends a request and waits for its answer."""

    def __init__(self, client: aiomqtt.Client, base: str, replies: str) -> None:
        self.client, self.base, self.replies = client, base, replies
        self.online = asyncio.Event()
        self.seen: set[tuple[str, str]] = set()  # (id, status) already handled
        self.waiting: dict[bytes, asyncio.Future[tuple[str, dict[str, Any]]]] = {}

    async def listen(self) -> None:
        for topic in (f"{self.base}/status", self.replies):
            await self.client.subscribe(topic, qos=1)
        async for message in self.client.messages:
            body = json.loads(message.payload) if message.payload else {}
            if message.topic.matches(f"{self.base}/status"):
                (self.online.set if body.get("state") == "online" else self.online.clear)()
                continue
            correlation = getattr(message.properties, "CorrelationData", None)
            future = self.waiting.get(bytes(correlation or b""))
            if future is None or future.done():
                continue
            if "reason" in body:  # <base>/error: the request is not a transaction
                future.set_result(("error", body))
            elif (body["id"], body["status"]) not in self.seen:
                self.seen.add((body["id"], body["status"]))
                if body["status"] in FINAL:
                    future.set_result(("result", body))

    async def ask(
        self, request: dict[str, Any], patience: float = 10.0, attempts: int = 3
    ) -> tuple[str, dict[str, Any]]:
        """The final result (``"result"``) or the error (``"error"``) for ``request``."""
        correlation = request["id"].encode()
        future = self.waiting[correlation] = asyncio.get_running_loop().create_future()
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = self.replies
        properties.CorrelationData = correlation
        try:
            for _ in range(attempts):
                await asyncio.wait_for(self.online.wait(), patience)  # the gateway is there
                payload = json.dumps(request)
                await self.client.publish(
                    f"{self.base}/request", payload, qos=1, properties=properties
                )
                try:
                    return await asyncio.wait_for(asyncio.shield(future), patience)
                except TimeoutError:
                    continue  # re-send with the same id: never a second transaction
            raise TimeoutError(f"no answer to {request['id']} after {attempts} attempts")
        finally:
            self.waiting.pop(correlation, None)


async def run(args: argparse.Namespace) -> int:
    url = urlsplit(args.broker)
    request: dict[str, Any] = {"id": args.id or f"lgo-{uuid.uuid4().hex[:16]}", "op": args.op}
    if args.pack:
        request["pack"] = json.loads(args.pack)
    else:
        request["scan_id"] = args.scan_id
    while True:  # reconnect: a broker restart is no reason to give up
        try:
            async with aiomqtt.Client(
                url.hostname or "127.0.0.1",
                url.port or 1883,
                identifier=f"lgo-example-{uuid.uuid4().hex[:8]}",
                protocol=aiomqtt.ProtocolVersion.V5,
                username=args.username,
                password=args.password,
            ) as client:
                lgo = Lgo(client, args.base, f"lgo/{uuid.uuid4().hex[:8]}/replies")
                listener = asyncio.create_task(lgo.listen())
                try:
                    kind, body = await lgo.ask(request, patience=args.timeout)
                finally:
                    listener.cancel()
                print(json.dumps(body, ensure_ascii=False))
                return 0 if kind == "result" else 2
        except aiomqtt.MqttError as error:
            print(f"broker: {error}; reconnecting", file=sys.stderr)
            await asyncio.sleep(1)
        except TimeoutError as error:
            print(error, file=sys.stderr)
            return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--base", default="nmvs/counter-1", help="the gateway's mqtt.base_topic")
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--id", help="the request id (default: a new one)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a re-send")
    parser.add_argument("op", help="verify, dispense, undo_dispense, …")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--pack", help="the pack identifier as JSON")
    target.add_argument("--scan-id", help="the id of a scan event of the gateway")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
