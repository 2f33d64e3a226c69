"""The fault step both protocol faces run around each request they could fault.

One draw from the app's :class:`FaultInjector` (``/_sim/faults``) decides what happens to the
exchange: added latency, a TCP reset before or after processing, an injected HTTP 500 or rate
limit (nothing processed), processing followed by a lying timeout answer, or processing after
the client has already given up. The face hands over its own processing and renderings as an
:class:`Exchange`; everything else is decided here, the same way for SOAP and REST.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.simulator.faults import FaultInjector

log = logging.getLogger(__name__)

RATE_LIMIT_RETRY_AFTER_SECONDS = 2

FAULTS_KEY = web.AppKey("faults", FaultInjector)
LATE_KEY = web.AppKey("late", set[asyncio.Task[None]])  # apply_late requests still to apply


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request as a protocol face hands it to :func:`run_with_faults`.

    ``process`` runs the request on the market and renders its answer; the others render the
    injected answers: ``server_error`` (HTTP 500, nothing processed), ``rate_limited``
    (recorded as refused, nothing processed; the 429 status is the face's, the Retry-After
    header is added here) and ``timed_out`` (sent after processing).
    """

    process: Callable[[], web.Response]
    server_error: Callable[[], web.Response]
    rate_limited: Callable[[], web.Response]
    timed_out: Callable[[], web.Response]


def install_faults(app: web.Application, injector: FaultInjector) -> None:
    app[FAULTS_KEY] = injector
    app[LATE_KEY] = set()
    app.on_shutdown.append(_cancel_late)


async def run_with_faults(request: web.Request, exchange: Exchange) -> web.StreamResponse:
    injector = request.app[FAULTS_KEY]
    fault, delay = injector.draw()
    if delay:
        await asyncio.sleep(delay)
    if fault == "reset_before":
        return reset_connection(request)
    if fault == "http_500":
        return exchange.server_error()
    if fault == "rate_limit":
        response = exchange.rate_limited()
        response.headers["Retry-After"] = str(RATE_LIMIT_RETRY_AFTER_SECONDS)
        return response
    if fault == "apply_late":  # queued inside the NMVS: applied after the client gave up
        late = asyncio.create_task(_apply_later(exchange, injector.plan.apply_late_ms))
        request.app[LATE_KEY].add(late)
        late.add_done_callback(request.app[LATE_KEY].discard)
        return reset_connection(request)
    response = exchange.process()
    if fault == "reset_after":
        return reset_connection(request)
    if fault == "timeout_code":
        return exchange.timed_out()
    return response


def reset_connection(request: web.Request) -> web.Response:
    """Drop the connection with a TCP RST; the client sees a reset and no HTTP answer."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=204)  # never written: the transport is gone


async def _apply_later(exchange: Exchange, delay_ms: float) -> None:
    await asyncio.sleep(delay_ms / 1000)
    try:
        exchange.process()
    except Exception:
        log.exception("simulator bug while applying a request late")


async def _cancel_late(app: web.Application) -> None:
    late: set[asyncio.Task[None]] = app[LATE_KEY]
    pending = list(late)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
