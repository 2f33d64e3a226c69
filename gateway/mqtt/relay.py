"""The outbox relay: publishes the engine's durable events (scans, results) in order, and marks
them published only after the broker's PUBACK.

The engine hands committed events over in memory and stores acknowledgements with its next
commit (within half a second), so neither is a database round trip on the way to the broker. A
crash between the PUBACK and that write republishes the event at the next start — at-least-once
delivery; LGOs de-duplicate on ``id`` + ``status``. Results of
requests that asked for an MQTT v5 response topic are also sent there, with their correlation
data, until the final status.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.engine.model import Event
from gateway.mqtt.bridge import MqttBridge, Outgoing
from gateway.mqtt.contract import Topics, encode

BATCH = 100
FINAL = frozenset({"done", "rejected", "failed"})


class EventSource(Protocol):
    """What the relay needs from the engine."""

    async def pending_events(self, limit: int = ...) -> list[Event]: ...
    async def ack_events(self, ids: list[int]) -> None: ...
    async def wait_events(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Route:
    topic: str
    correlation_data: bytes | None


class ResponseRoutes:
    """Request id → v5 response topic, kept in memory (bounded) until the final result.

    After a daemon restart the routes are gone; an LGO that re-sends its request (always safe)
    gets its answer on the response topic again.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._routes: OrderedDict[str, Route] = OrderedDict()
        self._capacity = capacity

    def remember(self, request_id: str, route: Route) -> None:
        self._routes[request_id] = route
        self._routes.move_to_end(request_id)
        while len(self._routes) > self._capacity:
            self._routes.popitem(last=False)

    def get(self, request_id: str) -> Route | None:
        return self._routes.get(request_id)

    def forget(self, request_id: str) -> None:
        self._routes.pop(request_id, None)


class Relay:
    """Run :meth:`run` as a task; it never returns on its own."""

    def __init__(
        self, source: EventSource, bridge: MqttBridge, topics: Topics, routes: ResponseRoutes
    ) -> None:
        self._source = source
        self._bridge = bridge
        self._topics = topics
        self._routes = routes

    async def run(self) -> None:
        while True:
            events = await self._source.pending_events(BATCH)
            if not events:
                await self._source.wait_events()
                continue
            await self.publish(events)

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish a batch (pipelined, in order), then mark it published."""
        messages: list[Outgoing] = []
        finished: list[str] = []
        for event in events:
            payload = encode(event.payload)
            if event.kind == "scan":
                messages.append(Outgoing(self._topics.scan, payload))
                continue
            messages.append(Outgoing(self._topics.result, payload))
            request_id = event.payload.get("id")
            route = self._routes.get(request_id) if isinstance(request_id, str) else None
            if route is not None and isinstance(request_id, str):
                messages.append(Outgoing(route.topic, payload, False, route.correlation_data))
                if event.payload.get("status") in FINAL:
                    finished.append(request_id)
        await self._bridge.deliver_all(messages)
        await self._source.ack_events([event.id for event in events])
        for request_id in finished:
            self._routes.forget(request_id)
