"""The Solidsoft Reply REST backend: an OAuth2 client-credentials token, one pooled HTTP(S)
client, and every answer classified.

Outcomes (see :mod:`gateway.nmvs.backend` for the error contract):

* a pack's answer (200, 403, 404, 409, and 422 on the pack's data) → :class:`NmvsResult`,
  classified by :mod:`gateway.nmvs.solidsoft.codes`, ``alertId`` kept;
* the token refused (``invalid_client``…) → :class:`NmvsPermanentError`, and nothing more is
  sent until :meth:`SolidsoftClient.reconfigure` (an unattended gateway must not lock the
  account); a 401 on an API call renews the token once (nothing was processed) and resends;
* 408, 429 and 503 are answers the system gave without processing: sent again after the
  server's ``Retry-After`` (or a doubling backoff) while the wait is at most
  ``retry_wait_max``, then :class:`NmvsRateLimitedError` (429, with the server's delay) or
  :class:`NmvsNotSentError`. 500, 502 and 504 may have been processed: a verify is asked again
  the same way, a state change never is — :class:`NmvsAmbiguousError`, and the engine verifies;
* transport failures as :mod:`gateway.nmvs.http` classifies them;
* a pack the system would refuse as malformed → :class:`NmvsInvalidRequestError`, unsent.

Solidsoft's own Java library waits a fixed interval and retries every status alike (a
decommission answered 500 is resent, which raises an alert if it had been applied), and never
reads ``Retry-After``; this client does neither.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import structlog

from gateway.codes.pack import PackIdentifier
from gateway.nmvs import http
from gateway.nmvs.backend import (
    BulkResult,
    BulkTicket,
    NmvsAmbiguousError,
    NmvsBackend,
    NmvsInvalidRequestError,
    NmvsNotSentError,
    NmvsPermanentError,
    NmvsRateLimitedError,
    NmvsResult,
    PingResult,
)
from gateway.nmvs.solidsoft import request
from gateway.nmvs.solidsoft.answers import (
    Token,
    UnreadableAnswer,
    bulk_packs,
    json_object,
    result_of,
    token_of,
)
from gateway.nmvs.solidsoft.codes import REQUEST_BROKEN, parse_code
from gateway.nmvs.solidsoft.config import SolidsoftConfig
from gateway.vocabulary import Operation

log = structlog.get_logger("gateway.nmvs.solidsoft")

MAX_ANSWER_BYTES = 64 * 1024 * 1024
HINTS = http.Hints(certificate="nmvs.cert_file/pkcs12_file", url="nmvs.url/api_url")
TOKEN_HINTS = http.Hints(certificate="nmvs.cert_file/pkcs12_file", url="nmvs.url/token_url")
NOT_PROCESSED = frozenset({408, 429, 503})  # refused before processing: safe to send again
MAYBE_PROCESSED = frozenset({500, 502, 504})
PACK_ANSWERS = frozenset({200, 403, 404, 409, 422})
FIRST_BACKOFF = 0.5


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Held:
    token: Token
    renew_at: float  # monotonic


class SolidsoftClient:
    """:class:`~gateway.nmvs.backend.NmvsBackend` over a Solidsoft Reply REST system.

    ``transport`` replaces the network (tests of malformed answers); ``sleep`` and
    ``monotonic`` are injected so that tests of retries and token expiry need not wait."""

    def __init__(
        self,
        config: SolidsoftConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._transport = transport
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._config = config
        self._http = self._build_http(config)
        self._held: _Held | None = None
        self._token_lock = asyncio.Lock()
        self._halted_by: str | None = None
        self.tokens_fetched = 0

    def _build_http(self, config: SolidsoftConfig) -> httpx.AsyncClient:
        verify: ssl.SSLContext | bool = config.ssl_context() if config.uses_tls else True
        return http.pooled_client(
            config, verify=verify, transport=self._transport, headers={"Accept": "application/json"}
        )

    def __repr__(self) -> str:
        return f"SolidsoftClient(api_url={self._config.api_url!r}, client_id={self._config.client_id!r})"

    @property
    def config(self) -> SolidsoftConfig:
        return self._config

    @property
    def halted_by(self) -> str | None:
        """Why all sending stopped (the token was refused), until :meth:`reconfigure`."""
        return self._halted_by

    async def reconfigure(self, config: SolidsoftConfig) -> None:
        """Take new settings (e.g. a corrected secret) and allow sending again."""
        old = self._http
        self._http = self._build_http(config)
        self._config = config
        self._held = None
        self._halted_by = None
        await old.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> SolidsoftClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- the NmvsBackend operations --------------------------------------------------------

    async def execute(
        self,
        operation: Operation,
        pack: PackIdentifier,
        *,
        client_trx_id: str,
        ref_client_trx_id: str | None = None,
    ) -> NmvsResult:
        """``ref_client_trx_id`` is not sent: a reactivation names the pack, not a transaction
        (the system checks the location and the 10 days itself)."""
        if ref_client_trx_id is not None and not operation.is_undo:
            raise NmvsInvalidRequestError(f"ref_client_trx_id is only for an undo, not {operation}")
        problem = request.refusal(pack)
        if problem is not None:
            raise NmvsInvalidRequestError(f"{operation}: not sent, {problem}")
        method = "PATCH" if operation.changes_state else "GET"
        body = request.state_body(operation) if operation.changes_state else None
        return await self._single(
            operation,
            request.pack_path(pack),
            method,
            body,
            request.entry_mode(pack),
            client_trx_id,
        )

    async def execute_manual(
        self,
        operation: Operation,
        scheme: str,
        product_code: str,
        serial: str,
        *,
        client_trx_id: str,
    ) -> NmvsResult:
        """Product code and serial typed in, no batch or expiry: ``manual`` data entry."""
        if operation not in (Operation.DISPENSE, Operation.STOLEN):
            raise NmvsInvalidRequestError(
                f"manual entry exists for dispense and stolen only, not {operation}"
            )
        if scheme not in request.SCHEME:
            raise NmvsInvalidRequestError(f"{operation}: not sent, unknown scheme {scheme!r}")
        path = request.manual_path(scheme, product_code, serial)
        body = request.state_body(operation)
        return await self._single(operation, path, "PATCH", body, "manual", client_trx_id)

    async def submit_bulk(
        self, operation: Operation, packs: Sequence[PackIdentifier], *, client_trx_id: str
    ) -> BulkTicket:
        """The engine's backlog replay: ``recovery/packs`` (store and forward) by default,
        ``product/packs`` with ``backlog_endpoint = "bulk"``. The ticket's id is the absolute
        result location the system gave."""
        label = f"bulk {operation}"
        for pack in packs:
            problem = request.refusal(pack)
            if problem is not None:
                raise NmvsInvalidRequestError(f"{label}: not sent, {problem}")
        if self._config.backlog_endpoint == "recovery":
            path, body = "recovery/packs", request.recovery_body(operation, packs)
        else:
            path, body = "product/packs", request.bulk_body(operation, packs)
        status, data, headers = await self._call(
            "POST", path, label=label, changes_state=operation.changes_state, body=body
        )
        if status == 422:
            raise NmvsInvalidRequestError(f"{label}: refused, {self._said(data, status)}")
        if status != 202:
            self._unreadable(
                label, True, f"expected 202 Accepted, got {self._said(data, status)}", status
            )
        location = self._result_location(headers.get("location"), label)
        code = parse_code(data.get("operationCode"))
        return BulkTicket(
            nmvs_trx_id=location,
            client_trx_id=client_trx_id,
            return_code=code.raw if code is not None else "HTTP_202",
            description=str(data.get("information") or "accepted"),
        )

    async def bulk_result(self, ticket: BulkTicket, *, client_trx_id: str) -> BulkResult:
        """Not ready while the system answers 409 or carries an ``eta``; a location it no
        longer knows (404) is a result without packs: each is then verified."""
        label = "bulk result"
        status, data, headers = await self._call(
            "GET", ticket.nmvs_trx_id, label=label, changes_state=False
        )
        code = parse_code(data.get("operationCode"))
        raw = code.raw if code is not None else f"HTTP_{status}"
        said = self._said(data, status)
        server_time = http.http_date(headers)
        if status == 409 or (status in (200, 202) and "eta" in data):
            return BulkResult(False, raw, said, server_time=server_time)
        if status == 404:
            return BulkResult(True, raw, said, server_time=server_time)
        if status != 200:
            self._unreadable(label, False, f"unexpected answer {said}", status)
        try:
            packs = bulk_packs(data, ticket.client_trx_id)
        except UnreadableAnswer as exc:
            self._unreadable(label, False, str(exc), status)
        return BulkResult(True, raw, said, packs=packs, server_time=server_time)

    async def ping(self) -> PingResult:
        """A verify of a product code no system issues (see ``request.PROBE_PATH``): it proves
        the token and the API host, raises no alert, and times one authenticated round trip."""
        started = time.perf_counter()
        status, data, headers = await self._call(
            "GET", request.PROBE_PATH, label="ping", changes_state=False, manual="non-manual"
        )
        latency_ms = (time.perf_counter() - started) * 1000
        return PingResult(
            output=self._said(data, status),
            latency_ms=latency_ms,
            server_time=http.http_date(headers),
        )

    async def authenticate(self) -> float:
        """Fetch a new token now (the self-test's credentials check); its round trip in ms."""
        started = time.perf_counter()
        async with self._token_lock:
            self._held = None
        await self._bearer("authenticate")
        return (time.perf_counter() - started) * 1000

    # --- exchanges ---------------------------------------------------------------------------

    async def _single(
        self,
        operation: Operation,
        path: str,
        method: str,
        body: dict[str, str] | None,
        mode: str,
        client_trx_id: str,
    ) -> NmvsResult:
        label = str(operation)
        log.debug("nmvs.send", use_case=label, client_trx_id=client_trx_id)
        status, data, headers = await self._call(
            method, path, label=label, changes_state=operation.changes_state, body=body, manual=mode
        )
        code = parse_code(data.get("operationCode"))
        if status == 422 and code is not None and code.raw in REQUEST_BROKEN:
            raise NmvsPermanentError(
                f"{label}: the system refused the request itself ({self._said(data, status)}): "
                "a gateway fault, report it"
            )
        if status not in PACK_ANSWERS:
            self._unreadable(
                label,
                operation.changes_state,
                f"unexpected answer {self._said(data, status)}",
                status,
            )
        result = result_of(
            status, data, client_trx_id=client_trx_id, server_time=http.http_date(headers)
        )
        log.info(
            "nmvs.answer",
            use_case=label,
            client_trx_id=client_trx_id,
            return_code=result.return_code,
            http_status=status,
            alert_id=result.alert_id,
        )
        return result

    async def _call(
        self,
        method: str,
        path: str,
        *,
        label: str,
        changes_state: bool,
        body: dict[str, Any] | None = None,
        manual: str = "non-manual",
    ) -> tuple[int, dict[str, Any], httpx.Headers]:
        """One API request with its token, its retries, and its answer's JSON object."""
        url = urljoin(self._config.api_url, path)
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        renewed = False
        attempt = 0
        while True:
            token = await self._bearer(label)
            headers = {
                "Authorization": f"Bearer {token}",
                "emvs-data-entry-mode": manual,
                "accept-language": self._config.language,
                "Content-Type": "application/json",
            }
            reply = await self._exchange(method, url, label, changes_state, content, headers)
            if reply.status == 401 and not renewed:  # refused before processing
                renewed = True
                self._held = None
                continue
            if reply.status == 401:
                raise NmvsPermanentError(
                    f"{label}: the system refuses a fresh token for {self._config.client_id!r} "
                    "(HTTP 401): check nmvs.client_id and that the account may use this interface"
                )
            retryable = reply.status in NOT_PROCESSED or (
                reply.status in MAYBE_PROCESSED and not changes_state
            )
            if retryable:
                wait = http.retry_after(reply.headers)
                wait = FIRST_BACKOFF * 2**attempt if wait is None else wait
                if attempt < self._config.retries and wait <= self._config.retry_wait_max:
                    attempt += 1
                    log.info("nmvs.retry", use_case=label, http_status=reply.status, wait=wait)
                    await self._sleep(wait)
                    continue
                self._gave_up(label, reply)
            if reply.status in MAYBE_PROCESSED or reply.status >= 500:
                raise NmvsAmbiguousError(
                    f"{label}: HTTP {reply.status} after the request was sent; "
                    "it may have been processed"
                )
            try:
                return reply.status, json_object(reply.body), reply.headers
            except UnreadableAnswer as exc:
                self._unreadable(label, changes_state, str(exc), reply.status)

    def _gave_up(self, label: str, reply: http.Reply) -> NoReturn:
        delay = http.retry_after(reply.headers)
        if reply.status == 429:
            log.warning("nmvs.rate_limited", use_case=label, retry_after=delay)
            raise NmvsRateLimitedError(
                f"{label}: the system limits the request rate (HTTP 429); "
                f"retry after {delay if delay is not None else 'a backoff'} s",
                retry_after=delay,
            )
        if reply.status in NOT_PROCESSED:
            raise NmvsNotSentError(f"{label}: HTTP {reply.status}, not processed; try later")
        raise NmvsAmbiguousError(f"{label}: HTTP {reply.status} after the retries")

    async def _exchange(
        self,
        method: str,
        url: str,
        label: str,
        changes_state: bool,
        content: bytes | None,
        headers: dict[str, str],
        hints: http.Hints = HINTS,
    ) -> http.Reply:
        try:
            return await http.exchange(
                self._http,
                method,
                url,
                label=label,
                hints=hints,
                total_timeout=self._config.total_timeout,
                max_bytes=MAX_ANSWER_BYTES,
                content=content,
                headers=headers,
            )
        except http.AnswerTooLarge as exc:
            self._unreadable(label, changes_state, str(exc), None)

    # --- the token ---------------------------------------------------------------------------

    async def _bearer(self, label: str) -> str:
        """The access token, fetched when there is none or it is about to expire."""
        if self._halted_by is not None:
            raise NmvsPermanentError(
                f"{label}: sending stopped after the identity server refused the client "
                f"({self._halted_by}): fix nmvs.client_id/client_secret_file, then reconfigure"
            )
        async with self._token_lock:
            held = self._held
            if held is None or self._monotonic() >= held.renew_at:
                held = await self._fetch_token(label)
                self._held = held
        return held.token.value

    async def _fetch_token(self, label: str) -> _Held:
        config = self._config
        form = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": config.client_id,
                "client_secret": config.client_secret.reveal(),
            }
        ).encode()
        where = f"{label}: token"
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            reply = await self._exchange(
                "POST", config.token_url, where, False, form, headers, TOKEN_HINTS
            )
        except NmvsAmbiguousError as exc:  # only a token was asked: the call itself is unsent
            raise NmvsNotSentError(f"{where}: {exc}") from exc
        try:
            data = json_object(reply.body)
        except UnreadableAnswer as exc:
            data = {"error": f"unreadable ({exc})"}
        if reply.status == 200:
            try:
                token = token_of(data)
            except UnreadableAnswer as exc:
                raise NmvsPermanentError(f"{where}: {exc}: check nmvs.token_url") from None
            self.tokens_fetched += 1
            margin = min(config.token_renew_margin, token.lifetime / 10)
            return _Held(token, self._monotonic() + token.lifetime - margin)
        error = str(data.get("error") or f"HTTP {reply.status}")
        if reply.status in NOT_PROCESSED or reply.status >= 500:
            raise NmvsNotSentError(f"{where}: identity server answered HTTP {reply.status}")
        if error in ("invalid_client", "unauthorized_client", "invalid_grant"):
            self._halted_by = error
            log.error("nmvs.halted", use_case=label, error=error)
            raise NmvsPermanentError(
                f"{where} refused ({error}): check nmvs.client_id and the client secret file; "
                "nothing more is sent until they are fixed"
            )
        raise NmvsPermanentError(
            f"{where}: HTTP {reply.status} ({error[:100]}): check nmvs.token_url"
        )

    # --- helpers -----------------------------------------------------------------------------

    def _result_location(self, location: str | None, label: str) -> str:
        """The absolute result URL; refused unless on the API's own host (it gets our token)."""
        if not location:
            raise NmvsAmbiguousError(f"{label}: accepted without a result location")
        absolute = urljoin(self._config.api_url, location)
        ours, theirs = urlsplit(self._config.api_url), urlsplit(absolute)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            raise NmvsAmbiguousError(
                f"{label}: accepted, but the result location {absolute!r} is on another host"
            )
        return absolute

    def _said(self, data: dict[str, Any], status: int) -> str:
        code = parse_code(data.get("operationCode"))
        text = data.get("information") or data.get("warning") or ""
        shown = code.raw if code is not None else "no code"
        return f"HTTP {status} {shown} {self._scrub(str(text))[:200]!r}"

    def _scrub(self, text: str) -> str:
        return text.replace(self._config.client_secret.reveal(), "***")

    def _unreadable(
        self, label: str, changes_state: bool, problem: str, status: int | None
    ) -> NoReturn:
        http.unreadable(label, changes_state, self._scrub(problem), status, HINTS)


def as_backend(client: SolidsoftClient) -> NmvsBackend:
    """The client seen through the interface the engine uses (mypy checks the conformance)."""
    return client
