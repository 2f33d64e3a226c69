"""The Arvato SOAP v5 backend: one pooled HTTPS connection set, every failure classified.

Outcomes (see :mod:`gateway.nmvs.backend` for the error contract):

* any ``ReturnCode`` the catalogue treats as a business outcome → :class:`NmvsResult`
  (``NMVS_SUCCESS``, alerts, refusals, data errors, unknown codes — the engine reads the
  catalogue entry of the code);
* OPERATOR codes (credentials, lock, password, T&C, PKI, configuration) and our own schema
  errors (``NMVS_TE_XM_*``) → :class:`NmvsPermanentError`; after ``NMVS_FE_AU_01``/``_06`` the
  client sends nothing more until :meth:`ArvatoClient.reconfigure` (an unattended gateway must
  not lock the account);
* ``NMVS_FI_SE_CLI_01`` or HTTP 429 → :class:`NmvsRateLimitedError`; other transient codes the
  NMVS answered without processing (``TI_AU_01``, ``FI_BAT_01``, ``WF_NC_*``) →
  :class:`NmvsNotSentError`; ambiguous codes (``NMVS_ERROR``, ``TI_TO_01``, ``TI_RT_*``,
  ``TI_XM_01``) → :class:`NmvsAmbiguousError`;
* transport failures as :mod:`gateway.nmvs.http` classifies them (not sent, ambiguous, or a
  certificate or URL an operator must fix);
* an answer we cannot read: ambiguous for a state change (it may have been applied — verify
  first), permanent otherwise (resending a read cannot help; the server or we are broken).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import NoReturn

import httpx
import structlog

from gateway.codes.pack import PackIdentifier
from gateway.nmvs import http
from gateway.nmvs.arvato import soap
from gateway.nmvs.arvato.config import ArvatoConfig
from gateway.nmvs.arvato.returncodes import CodeClass, lookup
from gateway.nmvs.backend import (
    BulkPackResult,
    BulkResult,
    BulkTicket,
    NmvsAmbiguousError,
    NmvsBackend,
    NmvsError,
    NmvsInvalidRequestError,
    NmvsNotSentError,
    NmvsPermanentError,
    NmvsRateLimitedError,
    NmvsResult,
    Notification,
    PingResult,
)
from gateway.vocabulary import Operation, PackState

log = structlog.get_logger("gateway.nmvs.arvato")

MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a G188 result for 100 000 packs is about 15 MB
HINTS = http.Hints(certificate="nmvs.cert_file/pkcs12_file", url="nmvs.url")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ArvatoClient:
    """:class:`~gateway.nmvs.backend.NmvsBackend` over Arvato's SOAP v5 web services.

    ``transport`` replaces the network (tests of malformed answers); everything else uses a
    real pooled HTTPS client built from ``config``.
    """

    def __init__(
        self,
        config: ArvatoConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._transport = transport
        self._clock = clock
        self._halted_by: str | None = None
        self._config = config
        self._http = self._build_http(config)
        self._certificate_validity = self._validity(config)

    def _scrub(self, text: str) -> str:
        """Server text with our secrets masked: an NMVS may echo a field it refused."""
        config = self._config
        for secret in (config.password, config.key_password, config.pkcs12_password):
            if secret:
                text = text.replace(secret.reveal(), "***")
        return text

    @staticmethod
    def _validity(config: ArvatoConfig) -> tuple[datetime, datetime] | None:
        certificate = config.client_certificate() if config.uses_tls else None
        if certificate is None:
            return None
        return certificate.not_valid_before_utc, certificate.not_valid_after_utc

    @property
    def certificate_expires_at(self) -> datetime | None:
        """When our client certificate expires (for the self-test's early warning)."""
        return None if self._certificate_validity is None else self._certificate_validity[1]

    def _check_certificate(self, use_case: str) -> None:
        """Refuse to send with a certificate the NMVS will refuse: the error is then clear and
        certain (not sent), instead of whatever the server's TLS stack makes of it."""
        if self._certificate_validity is None:
            return
        not_before, not_after = self._certificate_validity
        now = self._clock()
        if now > not_after:
            raise NmvsPermanentError(
                f"{use_case}: not sent, the client certificate expired on "
                f"{not_after:%Y-%m-%d %H:%M} UTC: renew nmvs.cert_file/pkcs12_file"
            )
        if now < not_before:
            raise NmvsPermanentError(
                f"{use_case}: not sent, the client certificate is valid only from "
                f"{not_before:%Y-%m-%d %H:%M} UTC: check the system clock or the certificate"
            )

    def _build_http(self, config: ArvatoConfig) -> httpx.AsyncClient:
        verify: ssl.SSLContext | bool = config.ssl_context() if config.uses_tls else True
        return http.pooled_client(
            config,
            verify=verify,
            transport=self._transport,
            headers={"Content-Type": soap.CONTENT_TYPE},
        )

    def __repr__(self) -> str:
        return f"ArvatoClient(endpoint={self._config.endpoint!r}, user_id={self._config.user_id!r})"

    @property
    def config(self) -> ArvatoConfig:
        return self._config

    @property
    def halted_by(self) -> str | None:
        """The return code that stopped all sending (AU_01/AU_06), until :meth:`reconfigure`."""
        return self._halted_by

    async def reconfigure(self, config: ArvatoConfig) -> None:
        """Take new settings (e.g. a corrected password) and allow sending again."""
        old = self._http
        self._http = self._build_http(config)
        self._config = config
        self._certificate_validity = self._validity(config)
        self._halted_by = None
        await old.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ArvatoClient:
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
        if ref_client_trx_id is not None and not operation.is_undo:
            raise NmvsInvalidRequestError(f"ref_client_trx_id is only for an undo, not {operation}")
        use_case = soap.USE_CASE[operation]
        body = soap.single_pack_request(
            use_case, self._config.credentials(), pack, client_trx_id, ref_client_trx_id
        )
        return await self._single(use_case, operation.changes_state, body, client_trx_id)

    async def execute_manual(
        self,
        operation: Operation,
        scheme: str,
        product_code: str,
        serial: str,
        *,
        client_trx_id: str,
    ) -> NmvsResult:
        use_case = soap.MANUAL_USE_CASE.get(operation)
        if use_case is None:
            raise NmvsInvalidRequestError(
                f"manual entry exists for dispense and stolen only, not {operation}"
            )
        body = soap.manual_entry_request(
            use_case, self._config.credentials(), scheme, product_code, serial, client_trx_id
        )
        return await self._single(use_case, True, body, client_trx_id)

    async def submit_bulk(
        self, operation: Operation, packs: Sequence[PackIdentifier], *, client_trx_id: str
    ) -> BulkTicket:
        use_case = soap.BULK_USE_CASE[operation]
        body = soap.bulk_request(use_case, self._config.credentials(), packs, client_trx_id)
        answer = await self._exchange(
            self._config.bulk_url, use_case, operation.changes_state, body, client_trx_id
        )
        if not answer.nmvs_trx_id:
            self._malformed(use_case, operation.changes_state, "bulk answer without NMVSTrxId")
        return BulkTicket(
            nmvs_trx_id=answer.nmvs_trx_id,
            client_trx_id=client_trx_id,
            return_code=answer.return_code,
            description=self._scrub(answer.description),
        )

    async def bulk_result(self, ticket: BulkTicket, *, client_trx_id: str) -> BulkResult:
        use_case = soap.BULK_RESULT_USE_CASE
        body = soap.bulk_result_request(
            self._config.credentials(), ticket.nmvs_trx_id, client_trx_id
        )
        answer = await self._exchange(self._config.bulk_url, use_case, False, body, client_trx_id)
        return BulkResult(
            ready=bulk_ready(answer.return_code),
            return_code=answer.return_code,
            description=self._scrub(answer.description),
            packs=tuple(
                bulk_pack(p.serial, p.return_code, p.state, p.reasons, ticket)
                for p in answer.bulk_packs
            ),
            server_time=answer.timestamp,
            notifications=answer.notifications,
        )

    async def ping(self) -> PingResult:
        """``SinglePackPingRequest``: reachability and TLS, no credentials (allowed when halted)."""
        self._check_certificate("SinglePackPing")
        started = time.perf_counter()
        response = await self._post(
            self._config.single_pack_url,
            "SinglePackPing",
            False,
            soap.ping_request("SinglePackPingRequest", "nmvs-gateway ping"),
        )
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            output = soap.parse_ping(response.body, "SinglePackPingResponse")
        except soap.MalformedAnswerError as exc:
            self._malformed("SinglePackPing", False, str(exc), response.status)
        return PingResult(
            output=output, latency_ms=latency_ms, server_time=http.http_date(response.headers)
        )

    # --- one exchange ------------------------------------------------------------------------

    async def _single(
        self, use_case: str, changes_state: bool, body: bytes, client_trx_id: str
    ) -> NmvsResult:
        answer = await self._exchange(
            self._config.single_pack_url, use_case, changes_state, body, client_trx_id
        )
        return classified(
            answer.return_code,
            self._scrub(answer.description),
            state=answer.state,
            reasons=answer.reasons,
            nmvs_trx_id=answer.nmvs_trx_id,
            client_trx_id=answer.client_trx_id or client_trx_id,
            server_time=answer.timestamp,
            notifications=answer.notifications,
            intermarket=answer.intermarket,
        )

    async def _exchange(
        self, url: str, use_case: str, changes_state: bool, body: bytes, client_trx_id: str
    ) -> soap.Answer:
        if self._halted_by is not None:
            raise NmvsPermanentError(
                f"sending stopped after {self._halted_by} (user or password refused): "
                "fix nmvs.user_id/password_file, then reconfigure",
                return_code=self._halted_by,
            )
        self._check_certificate(use_case)
        log.debug("nmvs.send", use_case=use_case, client_trx_id=client_trx_id)
        started = time.perf_counter()
        response = await self._post(url, use_case, changes_state, body)
        try:
            answer = soap.parse_answer(response.body, f"{use_case}Response")
        except soap.MalformedAnswerError as exc:
            if response.status == 429:
                self._rate_limited(use_case, response, None)
            self._malformed(use_case, changes_state, str(exc), response.status)
        if answer.client_trx_id is not None and answer.client_trx_id != client_trx_id:
            self._malformed(
                use_case,
                changes_state,
                f"answer echoes ClientTrxId {answer.client_trx_id!r}, sent {client_trx_id!r}",
                response.status,
            )
        log.info(
            "nmvs.answer",
            use_case=use_case,
            client_trx_id=client_trx_id,
            nmvs_trx_id=answer.nmvs_trx_id,
            return_code=answer.return_code,
            http_status=response.status,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        self._raise_for_code(use_case, answer.return_code, answer.description, response)
        return answer

    def _raise_for_code(
        self, use_case: str, code: str, description: str, response: http.Reply
    ) -> None:
        if lookup(code).rate_limited or response.status == 429:
            self._rate_limited(use_case, response, code)
        failure = failure_for(
            code, f"{use_case} answered {code} ({self._scrub(description)[:200]!r})"
        )
        if failure is None:
            return
        if lookup(code).stop_sending:
            self._halted_by = code
            log.error("nmvs.halted", use_case=use_case, return_code=code)
        raise failure

    def _rate_limited(self, use_case: str, response: http.Reply, code: str | None) -> NoReturn:
        retry_after = http.retry_after(response.headers)
        log.warning("nmvs.rate_limited", use_case=use_case, retry_after=retry_after)
        raise NmvsRateLimitedError(
            f"{use_case}: the NMVS limits the request rate (HTTP {response.status}"
            f"{', ' + code if code else ''}); retry after {retry_after or 'a backoff'} s",
            retry_after=retry_after,
            return_code=code or "NMVS_FI_SE_CLI_01",
        )

    def _malformed(
        self, use_case: str, changes_state: bool, problem: str, status: int | None = None
    ) -> NoReturn:
        http.unreadable(use_case, changes_state, self._scrub(problem), status, HINTS)

    async def _post(self, url: str, use_case: str, changes_state: bool, body: bytes) -> http.Reply:
        try:
            return await http.exchange(
                self._http,
                "POST",
                url,
                label=use_case,
                hints=HINTS,
                total_timeout=self._config.total_timeout,
                max_bytes=MAX_ANSWER_BYTES,
                content=body,
            )
        except http.AnswerTooLarge as exc:
            self._malformed(use_case, changes_state, str(exc))


def as_backend(client: ArvatoClient) -> NmvsBackend:
    """The client seen through the interface the engine uses (mypy checks the conformance)."""
    return client


def classified(
    return_code: str,
    description: str,
    *,
    state: PackState | None,
    reasons: tuple[str, ...],
    nmvs_trx_id: str | None,
    client_trx_id: str,
    server_time: datetime | None,
    notifications: tuple[Notification, ...] = (),
    intermarket: bool = False,
) -> NmvsResult:
    """An Arvato answer in the gateway's terms, from the return-code catalogue."""
    info = lookup(return_code)
    return NmvsResult(
        answer_class=info.answer_class,
        return_code=return_code,
        description=description,
        message=info.en,
        message_fr=info.fr,
        alert=info.alert,
        hub_code=info.hub_code,
        state=state,
        reasons=reasons,
        nmvs_trx_id=nmvs_trx_id,
        client_trx_id=client_trx_id,
        server_time=server_time,
        notifications=notifications,
        intermarket=intermarket,
        retryable=info.retryable,
        may_have_applied=info.ambiguous,
        needs_operator=info.needs_operator,
    )


def bulk_ready(code: str) -> bool:
    """Whether a G188 answer with ``code`` is the bulk's result (not "still processing")."""
    return lookup(code).code_class is not CodeClass.PENDING


def bulk_pack(
    serial: str,
    return_code: str,
    state: PackState | None,
    reasons: tuple[str, ...],
    ticket: BulkTicket,
) -> BulkPackResult:
    """One pack of a G188 result, classified like a single answer."""
    return BulkPackResult(
        serial=serial,
        result=classified(
            return_code,
            lookup(return_code).en,
            state=state,
            reasons=reasons,
            nmvs_trx_id=ticket.nmvs_trx_id,
            client_trx_id=ticket.client_trx_id,
            server_time=None,  # when the bulk was processed is not in the result
        ),
        send_alone=return_code == "NMVS_NC_PC_01",  # bulk never routes intermarket
    )


def failure_for(code: str, detail: str) -> NmvsError | None:
    """The error an answer with ``code`` is raised as, or None when it is returned as a result
    (a business outcome, or a code we do not know: :func:`classified` marks it for an
    operator). A rate limit is raised by the caller, which knows the server's Retry-After."""
    info = lookup(code)
    if not info.known:
        return None
    detail = f"{detail}: {info.en}"
    if info.rate_limited:
        return NmvsRateLimitedError(detail, return_code=code)
    if (
        info.stop_sending
        or info.code_class is CodeClass.OPERATOR
        or code.startswith(("NMVS_TE_XM_", "NMVS_TE_JS_"))
    ):
        return NmvsPermanentError(detail, return_code=code)
    if info.ambiguous:
        return NmvsAmbiguousError(detail, return_code=code)
    if info.code_class is CodeClass.TRANSIENT:
        return NmvsNotSentError(detail, return_code=code)
    return None
