"""The simulator's HTTP(S) service: one protocol face over the market — the Arvato v5 SOAP
endpoints (here) or Solidsoft Reply's REST API (:mod:`gateway.simulator.rest`) — with the
``/_sim/`` admin API and fault injection, plus :func:`running_simulator` to run one inside a
test or a demo.

SOAP requests are dispatched on the SOAP body's root element (never on SOAPAction). Every
request gets an answer shaped like the NMVS's — a ``GxxxResponse`` with a return code, or a
SOAP 1.2 Fault carrying the return code when the operation cannot be told — never a traceback.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

from aiohttp import web

from gateway.simulator.faults import (
    FaultConfigError,
    FaultInjector,
    finite_number,
    parse_faults,
)
from gateway.simulator.faultstep import (
    FAULTS_KEY,
    Exchange,
    install_faults,
    run_with_faults,
)
from gateway.simulator.faultstep import (
    RATE_LIMIT_RETRY_AFTER_SECONDS as RATE_LIMIT_RETRY_AFTER_SECONDS,  # re-exported
)
from gateway.simulator.market import (
    AlertRecord,
    Market,
    MarketData,
    MarketRules,
    MixedBulkRequest,
    Pack,
    TransactionRecord,
)
from gateway.simulator.persistence import SqliteStore
from gateway.simulator.rest import RestFace
from gateway.simulator.rest_wire import (
    API_PREFIX,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_TOKEN_LIFETIME,
    TOKEN_PATH,
    RestSettings,
)
from gateway.simulator.soap import (
    BulkCall,
    Call,
    PingCall,
    ResultCall,
    Service,
    SingleCall,
    SoapRequestError,
    parse_request,
    render_answer,
    render_fault,
    render_mixed_result,
    render_ping,
)

log = logging.getLogger(__name__)

SINGLE_PATH = "/WS_SINGLE_TRANSACTIONS_V1/SinglePackServiceV50"
BULK_PATH = "/WS_BULK_TRANSACTIONS_V1/BulkServiceV50"
MIXED_BULK_PATH = "/WS_MIXED_BULK_TRANSACTIONS_V1/MixedBulkServiceV50"
ACCEPTED_CONTENT_TYPES = frozenset({"text/xml", "application/soap+xml", "application/xml"})
RESPONSE_CONTENT_TYPE = "application/soap+xml"
MAX_REQUEST_BYTES = 64 * 1024 * 1024  # a bulk request holds up to 100 000 packs
MAX_CLOCK_OFFSET = 100 * 365.25 * 86400  # seconds; keeps every date the market computes valid

WireProtocol = Literal["arvato-soap", "solidsoft-rest"]
PROTOCOLS: tuple[WireProtocol, ...] = get_args(WireProtocol)

MARKET_KEY = web.AppKey("market", Market)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Server certificate and key, and the CA that client certificates must chain to (None:
    no client certificate is asked for)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    def context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file is not None:
            context.load_verify_locations(cafile=self.client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


# ---------------------------------------------------------------------------- SOAP service


def _soap(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=body,
        status=status,
        content_type=RESPONSE_CONTENT_TYPE,
        charset="utf-8",
        headers=headers,
    )


def _dispatch(market: Market, call: SingleCall | BulkCall | ResultCall) -> bytes:
    if isinstance(call, SingleCall):
        req = call.request
        answer = market.single(call.header, req)
        product = (req.scheme, req.product_code, req.batch, req.expiry)
        return render_answer(
            call.operation, call.header, answer, product=product, serial=req.serial
        )
    if isinstance(call, BulkCall):
        answer = market.submit_bulk(call.header, call.request)
        bulk = call.request
        if isinstance(bulk, MixedBulkRequest):
            return render_answer(call.operation, call.header, answer)
        product = (bulk.scheme, bulk.product_code, bulk.batch, bulk.expiry)
        return render_answer(call.operation, call.header, answer, product=product)
    answer, job = market.bulk_result(call.header, call.ref_nmvs_trx_id)
    if job is None:
        return render_answer(call.operation, call.header, answer)
    r = job.request
    if isinstance(r, MixedBulkRequest):
        return render_mixed_result(call.operation, call.header, answer, r)
    echo = (r.scheme, r.product_code, r.batch, r.expiry)
    return render_answer(call.operation, call.header, answer, product=echo)


def _rejection(market: Market, error: SoapRequestError) -> web.Response:
    if error.operation is None:
        market.record_rejection(None, None, error.code)
        return _soap(render_fault(error.code, error.message), status=400)
    answer = market.record_rejection(error.header, _use_case(error.operation), error.code)
    detailed = replace(answer, description=f"{answer.description} {error.message}")
    return _soap(render_answer(error.operation, error.header, detailed))


def _use_case(operation: str) -> str | None:
    use_case = operation.removesuffix("Request")
    return use_case if use_case.startswith("G") else None


def _service_handler(service: Service) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await _serve_soap(request, service)
        except web.HTTPException:
            raise  # aiohttp's own answers, e.g. 413 for an oversized body
        except Exception:
            log.exception("simulator bug while handling a %s request", service)
            return _soap(
                render_fault("NMVS_ERROR", "General technical exception", sender=False), 500
            )

    return handle


async def _serve_soap(request: web.Request, service: Service) -> web.StreamResponse:
    market = request.app[MARKET_KEY]
    if request.content_type not in ACCEPTED_CONTENT_TYPES:
        message = f"content type {request.content_type!r} is not SOAP (use text/xml or application/soap+xml)"
        return _soap(render_fault("NMVS_TE_XM_01", message), status=415)
    body = await request.read()
    try:
        call: Call = parse_request(body, service)
    except SoapRequestError as error:
        return _rejection(market, error)
    if isinstance(call, PingCall):
        return _soap(render_ping(call.operation, call.input))
    return await run_with_faults(request, _soap_exchange(market, call))


def _soap_exchange(market: Market, call: SingleCall | BulkCall | ResultCall) -> Exchange:
    use_case = _use_case(call.operation)

    def rate_limited() -> web.Response:
        answer = market.record_rejection(call.header, use_case, "NMVS_FI_SE_CLI_01")
        return _soap(render_answer(call.operation, call.header, answer), status=429)

    def timed_out() -> web.Response:
        # already recorded with its real outcome: the NMVS processed it, only the answer lies
        timeout = market.record_rejection(call.header, use_case, "NMVS_TI_TO_01", record=False)
        return _soap(render_answer(call.operation, call.header, timeout))

    return Exchange(
        process=lambda: _soap(_dispatch(market, call)),
        server_error=lambda: _soap(
            render_fault("NMVS_ERROR", "Internal server error (injected)", sender=False), 500
        ),
        rate_limited=rate_limited,
        timed_out=timed_out,
    )


# ---------------------------------------------------------------------------- admin API


def _iso(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else value


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"the body is not valid JSON: {error}"}),
            content_type="application/json",
        ) from None
    if not isinstance(raw, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "the body must be a JSON object"}),
            content_type="application/json",
        )
    return raw


def _records(records: list[TransactionRecord] | list[AlertRecord]) -> web.Response:
    return web.json_response([{**asdict(r), "at": _iso(r.at)} for r in records])


async def _alerts(request: web.Request) -> web.Response:
    return _records(request.app[MARKET_KEY].state.alerts)


async def _transactions(request: web.Request) -> web.Response:
    return _records(request.app[MARKET_KEY].state.transactions)


def pack_json(market: Market, pack: Pack) -> dict[str, Any]:
    state, reasons = market.pack_view(pack)
    return {
        "product_code": pack.product_code,
        "serial": pack.serial,
        "batch": pack.batch_id,
        "state": state,
        "reasons": list(reasons),
        "set_by_user_id": pack.set_by[1] if pack.set_by else None,
        "set_client_trx_id": pack.set_trx,
        "set_at": _iso(pack.set_at),
        "history": [
            {
                "at": _iso(h.at),
                "use_case": h.use_case,
                "client_trx_id": h.client_trx_id,
                "user_id": h.user_id,
                "return_code": h.return_code,
                "state": h.state,
                "reasons": list(h.reasons),
            }
            for h in pack.history
        ],
    }


async def _pack(request: web.Request) -> web.Response:
    market = request.app[MARKET_KEY]
    code, serial = request.match_info["product_code"], request.match_info["serial"]
    pack = market.pack(code, serial)
    if pack is None:
        return web.json_response({"error": f"no pack {serial!r} of product {code!r}"}, status=404)
    return web.json_response(pack_json(market, pack))


async def _clock(request: web.Request) -> web.Response:
    market = request.app[MARKET_KEY]
    if request.method == "POST":
        body = await _json_body(request)
        seconds = finite_number(body.get("advance_seconds"))
        if set(body) != {"advance_seconds"} or seconds is None:
            return _bad_request('expected {"advance_seconds": N} with N a number of seconds')
        if seconds < 0:
            return _bad_request(
                "advance_seconds must not be negative: the clock only moves forward"
            )
        if seconds > MAX_CLOCK_OFFSET - market.state.clock_offset.total_seconds():
            return _bad_request(
                f"advance_seconds {seconds:g} would move the clock more than"
                f" {MAX_CLOCK_OFFSET:g} s (about 100 years) ahead in all"
            )
        market.advance(seconds)
    return web.json_response({"now": _iso(market.now())})


async def _faults(request: web.Request) -> web.Response:
    injector = request.app[FAULTS_KEY]
    if request.method == "POST":
        body = await _json_body(request)
        try:
            injector.configure(parse_faults(body))
        except FaultConfigError as error:
            return _bad_request(str(error))
    return web.json_response(injector.describe())


async def _reset(request: web.Request) -> web.Response:
    request.app[MARKET_KEY].reset()
    request.app[FAULTS_KEY].configure(parse_faults({}))
    return web.json_response({"reset": True})


def build_app(
    market: Market,
    *,
    admin: bool,
    faults: FaultInjector | None = None,
    protocol: WireProtocol = "arvato-soap",
    rest: RestSettings | None = None,
) -> web.Application:
    """The app serving ``protocol``'s routes only (``rest`` configures the REST face), and the
    admin API when ``admin``."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[MARKET_KEY] = market
    install_faults(app, faults or FaultInjector())
    if protocol == "arvato-soap":
        app.router.add_post(SINGLE_PATH, _service_handler("single"))
        app.router.add_post(BULK_PATH, _service_handler("bulk"))
        app.router.add_post(MIXED_BULK_PATH, _service_handler("mixed"))
    elif protocol == "solidsoft-rest":
        RestFace(market, rest or RestSettings()).add_routes(app)
    else:
        raise ValueError(f"unknown protocol {protocol!r} (one of {', '.join(PROTOCOLS)})")
    if admin:
        app.router.add_get("/_sim/alerts", _alerts)
        app.router.add_get("/_sim/transactions", _transactions)
        app.router.add_get("/_sim/packs/{product_code}/{serial:.+}", _pack)
        app.router.add_route("*", "/_sim/clock", _clock)
        app.router.add_route("*", "/_sim/faults", _faults)
        app.router.add_post("/_sim/reset", _reset)
    return app


# ---------------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator serving ``protocol`` on ``url``; ``core`` is its :class:`Market` (inspect or
    drive it). The ``*_url`` properties are the SOAP endpoints, ``api_url`` and ``token_url``
    the REST ones."""

    url: str
    core: Market
    faults: FaultInjector
    protocol: WireProtocol = "arvato-soap"

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def single_url(self) -> str:
        return self.url + SINGLE_PATH

    @property
    def bulk_url(self) -> str:
        return self.url + BULK_PATH

    @property
    def mixed_bulk_url(self) -> str:
        return self.url + MIXED_BULK_PATH


def open_market(
    data: MarketData | None,
    *,
    rules: MarketRules | None = None,
    state_file: Path | None = None,
    time_source: Callable[[], Any] | None = None,
) -> tuple[Market, SqliteStore | None]:
    """The market to serve: in memory, or kept in (and restored from) ``state_file``."""
    extra: dict[str, Any] = {"time_source": time_source} if time_source is not None else {}
    if state_file is None:
        if data is None:
            raise ValueError("a market is needed when there is no state file")
        return Market(data, rules=rules, **extra), None
    store = SqliteStore(state_file)
    loaded, state = store.load(data)
    return Market(loaded, rules=rules, store=store, state=state, **extra), store


@asynccontextmanager
async def running_simulator(
    market: MarketData | Market,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    plain_http: bool = False,
    admin: bool = True,
    tls: TlsSettings | ssl.SSLContext | None = None,
    faults: FaultInjector | None = None,
    protocol: WireProtocol = "arvato-soap",
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME,
) -> AsyncIterator[RunningSimulator]:
    """Serve ``market`` with ``protocol`` until the block exits. Give ``tls`` (settings or a
    server context) or ``plain_http=True``. ``client_id``, ``client_secret`` and
    ``token_lifetime`` (seconds) configure the REST face's token endpoint."""
    core = market if isinstance(market, Market) else Market(market)
    if plain_http == (tls is not None):
        raise ValueError("give either tls or plain_http=True")
    context = tls.context() if isinstance(tls, TlsSettings) else tls
    injector = faults or FaultInjector()
    rest = RestSettings(client_id, client_secret, token_lifetime)
    app = build_app(core, admin=admin, faults=injector, protocol=protocol, rest=rest)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=context)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        scheme = "http" if context is None else "https"
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield RunningSimulator(f"{scheme}://{shown}:{bound_port}", core, injector, protocol)
    finally:
        await runner.cleanup()
