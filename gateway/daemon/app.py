"""The running daemon: scanners → engine → NMVS, and the MQTT interface, under one task group.

Ownership: :func:`serve` owns the MQTT bridge task for the whole life of the process (so
``offline`` is published last); inside it, :meth:`Gateway.run_engine` owns the engine, the
scanner hub and their tasks (capture loop, outbox relay, health publisher, watchdog). Each task
is kept alive by :class:`Supervisor`: a crash is logged, counted in ``<base>/health`` and the
task restarted with backoff; a fatal error (the state database failing while running) ends the
daemon with a non-zero exit so systemd restarts it. What only the operator can fix at start (an
unusable certificate, a state database that cannot be opened) raises :class:`StartupError`.

Stopping (SIGTERM): intake stops (requests stay unacknowledged at the broker, scans are no longer
read), queued work gets ``DRAIN_GRACE`` seconds to finish and be published, the engine then waits
for any NMVS call still in flight, and ``offline`` is published before disconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from gateway import __version__
from gateway.capture.devices import InputBackend
from gateway.capture.hub import ScannerHub
from gateway.capture.scan import CapturedScan
from gateway.codes.pack import PackIdentifier
from gateway.daemon.config import Config, open_backend
from gateway.daemon.notify import Notifier
from gateway.engine import (
    Engine,
    Request,
    RequestConflictError,
    ScanRecord,
    StorageFullError,
    StoreError,
)
from gateway.engine.model import iso
from gateway.mqtt.bridge import Backoff, BridgeError, Deferred, Incoming, MqttBridge
from gateway.mqtt.contract import (
    ErrorReason,
    LgoRequest,
    RequestRejected,
    Topics,
    encode,
    error_payload,
    now_iso,
    parse_request,
    status_payload,
)
from gateway.mqtt.relay import Relay, ResponseRoutes, Route
from gateway.nmvs.backend import NmvsBackend

DRAIN_GRACE = 5.0  # seconds queued work may take to finish at shutdown
FIRST_CONNECT_WAIT = 5.0  # READY=1 is sent once connected, or after this many seconds
FATAL: tuple[type[BaseException], ...] = (StoreError,)

log = structlog.get_logger("gateway.daemon")


STORAGE_WAIT_S = 5.0  # a full state directory at start: how often to try again


class StartupError(Exception):
    """The daemon cannot start until the operator fixes something (the state database…);
    ``str()`` is the one line that says what and how. Restarting would not help."""


@dataclass
class ComponentState:
    state: str = "running"
    restarts: int = 0
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "restarts": self.restarts, "last_error": self.last_error}


class Supervisor:
    """Restarts crashed components with backoff and remembers what happened to each."""

    def __init__(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.components: dict[str, ComponentState] = {}
        self._sleep = sleep

    async def keep(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        state = self.components.setdefault(name, ComponentState())
        backoff = Backoff(initial=0.5, cap=30.0)
        while True:
            state.state = "running"
            try:
                await run()
            except FATAL:
                state.state = "stopped"
                raise
            except asyncio.CancelledError:
                state.state = "stopped"
                raise
            except Exception as exc:
                state.restarts += 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                state.state = "restarting"
                log.exception("component_crashed", component=name, restarts=state.restarts)
                await self._sleep(backoff.next())
            else:
                state.state = "stopped"
                return


class Gateway:
    """The wiring between the bridge, the engine and the scanners; see the module docstring."""

    def __init__(self, config: Config, notifier: Notifier) -> None:
        self.config = config
        self.notifier = notifier
        self.topics = Topics(config.base_topic)
        self.routes = ResponseRoutes()
        self.supervisor = Supervisor()
        self.engine: Engine | None = None
        self.hub: ScannerHub | None = None
        self.accepting = False
        self._started = asyncio.Event()
        gateway_id = config.gateway.id
        self.bridge = MqttBridge(
            config.mqtt,
            status_topic=self.topics.status,
            online_payload=lambda: status_payload(
                "online", gateway_id=gateway_id, version=__version__
            ),
            offline_payload=status_payload("offline", gateway_id=gateway_id, version=__version__),
            subscriptions=(self.topics.request,),
            handler=self.on_request,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def run_engine(
        self,
        stop: asyncio.Event,
        backend: NmvsBackend | None = None,
        input_backend: InputBackend | None = None,
    ) -> None:
        config = self.config
        async with contextlib.AsyncExitStack() as stack:
            if backend is None:
                client = open_backend(config)
                stack.push_async_callback(client.aclose)
                backend = client
            engine = await self._open_engine(stack, backend, stop)
            if engine is None:
                return
            if config.scanners:
                self.hub = await stack.enter_async_context(
                    ScannerHub(
                        config.scanners,
                        input_backend=input_backend,
                        layout_beliefs=await engine.layout_beliefs(),
                    )
                )
            self.engine = engine
            await self.bridge.announce()  # online only once the engine is open
            relay = Relay(engine, self.bridge, self.topics, self.routes)
            keep = self.supervisor.keep
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(keep("relay", relay.run)),
                    group.create_task(keep("health", self.publish_health)),
                ]
                if self.hub is not None:
                    tasks.append(group.create_task(keep("capture", self.capture)))
                if self.notifier.watchdog_interval is not None:
                    tasks.append(group.create_task(keep("watchdog", self.watchdog)))
                self.accepting = True
                self._started.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FIRST_CONNECT_WAIT):
                        await self.bridge.wait_connected()
                self.notifier.ready(self.status_line(await self.health()))
                log.info("gateway_ready", gateway_id=config.gateway.id, base=self.topics.base)
                await stop.wait()
                log.info("gateway_stopping")
                self.notifier.stopping("draining")
                self.accepting = False
                await self.drain()
                for task in tasks:
                    task.cancel()
        self.engine = None

    async def _open_engine(
        self, stack: contextlib.AsyncExitStack, backend: NmvsBackend, stop: asyncio.Event
    ) -> Engine | None:
        """Open the engine; a full state directory is waited out (None: stopped meanwhile).

        While waiting, systemd is told the daemon is up and why it does nothing (READY with a
        status, watchdog pings): it would otherwise kill it at TimeoutStartSec and start it
        again on the same full disk. MQTT shows ``offline`` and requests stay with the broker."""
        config = self.config
        waiting = False
        while True:
            try:
                return await stack.enter_async_context(
                    Engine.open(config.gateway.state_dir, backend, config.engine)
                )
            except StoreError as exc:
                raise StartupError(str(exc)) from None
            except StorageFullError as exc:
                if not waiting:
                    log.error("state_dir_full_at_start", error=str(exc))
                    waiting = True
                self.notifier.ready(f"waiting for free space: {exc}")
                self.notifier.watchdog()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STORAGE_WAIT_S)
            if stop.is_set():
                return None

    async def drain(self) -> None:
        """Let queued work finish and its events be published, within ``DRAIN_GRACE``."""
        assert self.engine is not None
        engine = self.engine
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_GRACE):
                while True:
                    busy = (await engine.health()).queue_depth or await engine.pending_events(1)
                    if not busy:
                        return
                    await asyncio.sleep(0.05)

    # -- scans -----------------------------------------------------------------------------

    async def capture(self) -> None:
        assert self.hub is not None and self.engine is not None
        async for scan in self.hub.scans():
            await self.submit_scan(scan)

    async def submit_scan(self, scan: CapturedScan) -> None:
        assert self.engine is not None
        try:
            await self._store_scan(scan)
        except StorageFullError as exc:  # the health says so too; the pharmacist rescans later
            log.error(
                "scan_not_stored", scan_id=scan.scan_id, scanner_id=scan.scanner_id, error=str(exc)
            )

    async def _store_scan(self, scan: CapturedScan) -> None:
        assert self.engine is not None
        await self.engine.submit_scan(
            ScanRecord(
                id=scan.scan_id,
                scanner_id=scan.scanner_id,
                counter=scan.counter,
                at=scan.at.timestamp(),
                decoded=scan.decoded,
                layout_belief=scan.layout_belief,
            )
        )

    # -- requests --------------------------------------------------------------------------

    async def on_request(self, message: Incoming) -> None:
        """Handle one ``<base>/request``; returning means the broker may forget it."""
        # Requests kept by the broker arrive as soon as we connect, maybe before the engine is
        # open: they wait for it (in order) rather than being left unacknowledged.
        await self._started.wait()
        engine = self.engine
        if not self.accepting or engine is None:
            raise Deferred
        if not message.payload:
            return  # an empty message is how a retained one is deleted: nothing was asked
        if message.retain:
            await self._ignore_retained(message)
            return
        try:
            request = parse_request(message.payload, max_bytes=self.config.max_request_bytes)
            pack = request.pack or await self._scan_pack(engine, request)
        except RequestRejected as rejected:
            await self._answer_rejection(rejected, message)
            return
        earlier_route = self.routes.get(request.id)
        if message.response_topic:
            self.routes.remember(
                request.id, Route(message.response_topic, message.correlation_data)
            )
        try:
            submitted = await engine.submit(
                Request(op=request.op, pack=pack, id=request.id, user=request.user)
            )
        except (StorageFullError, RequestConflictError) as exc:
            # not a transaction: the id's result and route (if any) stay as they were
            self._restore_route(request.id, earlier_route)
            if isinstance(exc, StorageFullError):
                reason: ErrorReason = "storage_full"
                fr = (
                    "le répertoire d'état de la passerelle est plein : libérez de la place ; le "
                    "travail déjà accepté reprend tout seul ; renvoyez cette requête ensuite "
                    "(même id)"
                )
            else:
                reason = "id_conflict"
                fr = (
                    f"l'identifiant de requête {request.id!r} a déjà servi pour une autre boîte "
                    "ou une autre opération ; utilisez un nouvel identifiant pour une nouvelle "
                    "requête"
                )
            refused = RequestRejected(
                str(exc), fr=fr, id=request.id, op=request.op.value, reason=reason
            )
            await self._answer_rejection(refused, message)
            return
        repeat = not submitted.new
        log.info("request_accepted", id=request.id, op=request.op.value, repeat=repeat)
        if repeat:
            view = submitted.view
            # New transactions are published by the relay; a repeated id is answered with the
            # transaction's current state now (its later changes follow through the relay).
            payload = encode(view.to_json())
            try:
                await self.bridge.publish(self.topics.result, payload)
                await self._respond(message, payload)
            except BridgeError:
                raise Deferred from None
            if view.final:
                self.routes.forget(request.id)

    @staticmethod
    async def _scan_pack(engine: Engine, request: LgoRequest) -> PackIdentifier:
        assert request.scan_id is not None
        scan = await engine.scan(request.scan_id)
        if scan is None:
            raise RequestRejected(
                f"scan_id {request.scan_id!r} is not a scan of this gateway; send the pack instead",
                fr=f"scan_id {request.scan_id!r} n'est pas un scan de cette passerelle ; "
                "envoyez la boîte elle-même",
                id=request.id,
                op=request.op.value,
            )
        pack = scan.pack
        if pack is None:
            raise RequestRejected(
                f"scan {request.scan_id!r} did not give a pack identifier; scan the pack again",
                fr=f"le scan {request.scan_id!r} n'a pas donné d'identifiant de boîte ; "
                "scannez la boîte à nouveau",
                id=request.id,
                op=request.op.value,
            )
        return pack

    def _restore_route(self, request_id: str, earlier: Route | None) -> None:
        """A request that did not become a transaction leaves the id's route as it was."""
        if earlier is None:
            self.routes.forget(request_id)
        else:
            self.routes.remember(request_id, earlier)

    async def _ignore_retained(self, message: Incoming) -> None:
        """A retained request would replay on every reconnection: it is never acted on; it is
        answered on ``<base>/error`` and deleted from the broker (an empty retained message)."""
        try:
            parsed: RequestRejected | LgoRequest = parse_request(
                message.payload, max_bytes=self.config.max_request_bytes
            )
        except RequestRejected as rejected:
            parsed = rejected
        ignored = RequestRejected(
            "the request was published retained: a retained request is never executed (it "
            "would replay at every reconnection); publish it again without retain",
            fr="la requête a été publiée en mode retenu (retain) : une telle requête n'est jamais "
            "exécutée (elle serait rejouée à chaque reconnexion) ; publiez-la à nouveau sans "
            "retain",
            id=parsed.id,
            op=parsed.op if isinstance(parsed, RequestRejected) else parsed.op.value,
            raw_id=parsed.raw_id if isinstance(parsed, RequestRejected) else None,
            reason="retained",
        )
        await self._answer_rejection(ignored, message)
        try:
            await self.bridge.publish(message.topic, b"", retain=True)
        except BridgeError:
            raise Deferred from None

    async def _answer_rejection(self, rejected: RequestRejected, message: Incoming) -> None:
        """A request that is not a transaction: answered on ``<base>/error`` (and the v5
        response topic), never with a result, whose id belongs to transactions only."""
        log.warning(
            "request_rejected", id=rejected.id, reason=rejected.reason, problem=rejected.detail
        )
        payload = encode(error_payload(rejected, message.payload))
        try:
            await self.bridge.publish(self.topics.error, payload)
            await self._respond(message, payload)
        except BridgeError:
            raise Deferred from None

    async def _respond(self, message: Incoming, payload: bytes) -> None:
        if message.response_topic:
            await self.bridge.publish(
                message.response_topic, payload, correlation_data=message.correlation_data
            )

    # -- health ----------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        assert self.engine is not None
        engine = await self.engine.health()
        # every time in the snapshot is ISO 8601, as in every other message
        scanners = [
            {**s.to_json(), "last_scan_at": iso(s.last_scan_at)}
            for s in (self.hub.health() if self.hub is not None else ())
        ]
        components = {name: c.to_json() for name, c in self.supervisor.components.items()}
        degraded = (
            bool(engine.warnings)
            or engine.paused is not None
            or engine.nmvs_online is False
            or any(s["state"] != "ready" for s in scanners)
            or any(c["state"] != "running" for c in components.values())
            or not self.bridge.connected
        )
        return {
            "gateway_id": self.config.gateway.id,
            "version": __version__,
            "at": now_iso(),
            "state": "degraded" if degraded else "ok",
            "queue": {
                "depth": engine.queue_depth,
                "reconciling": engine.reconciling,
                "oldest_age_s": engine.oldest_queued_age,
            },
            "nmvs": {
                "online": engine.nmvs_online,
                "last_contact_at": iso(engine.last_contact_at),
                "last_latency_ms": engine.last_latency_ms,
                "paused": engine.paused,
            },
            "week": {
                "alerts": engine.week_alerts,
                "sent": engine.week_sent,
                "prevented": engine.week_prevented,
            },
            "warnings": list(engine.warnings),
            "scanners": scanners,
            "components": components,
            "mqtt": self._mqtt_health(),
        }

    def _mqtt_health(self) -> dict[str, Any]:
        mqtt = self.bridge.health()
        return {**mqtt, "connected_since": iso(mqtt["connected_since"])}

    @staticmethod
    def status_line(health: dict[str, Any]) -> str:
        """The ``STATUS=`` line systemd shows, from a health snapshot."""
        nmvs = {True: "ok", False: "offline", None: "unknown"}[health["nmvs"]["online"]]
        ready = sum(1 for s in health["scanners"] if s["state"] == "ready")
        return (
            f"mqtt={'up' if health['mqtt']['connected'] else 'down'} nmvs={nmvs} "
            f"queue={health['queue']['depth']} scanners={ready}/{len(health['scanners'])}"
        )

    async def publish_health(self) -> None:
        while True:
            health = await self.health()
            await self.bridge.set_retained(self.topics.health, encode(health))
            self.notifier.status(self.status_line(health))
            await asyncio.sleep(self.config.gateway.health_interval)

    async def watchdog(self) -> None:
        """``WATCHDOG=1`` only while the engine's database thread answers (not a bare timer)."""
        interval = self.notifier.watchdog_interval
        assert interval is not None and self.engine is not None
        while True:
            async with asyncio.timeout(interval):
                await self.engine.health()
            self.notifier.watchdog()
            await asyncio.sleep(interval)


async def serve(
    config: Config,
    stop: asyncio.Event,
    notifier: Notifier,
    *,
    backend: NmvsBackend | None = None,
    input_backend: InputBackend | None = None,
) -> None:
    """Run the daemon until ``stop`` is set; fatal errors propagate (in an ``ExceptionGroup``).

    ``input_backend`` replaces ``/dev/input`` for evdev scanners (the demo's virtual scanners).
    """
    gateway = Gateway(config, notifier)
    async with asyncio.TaskGroup() as group:
        mqtt = group.create_task(gateway.supervisor.keep("mqtt", gateway.bridge.run))
        try:
            await gateway.run_engine(stop, backend, input_backend)
        finally:
            await gateway.bridge.shutdown()
            await cancel_until_done(mqtt)


async def cancel_until_done(task: asyncio.Task[Any], every: float = 0.5) -> None:
    """Cancel ``task`` until it ends: a library awaiting with ``wait_for`` on Python 3.11 can
    swallow one cancellation (when the awaited answer arrives at the same moment), which would
    leave the daemon deaf to SIGTERM."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every)
