"""The backend interface every NMVS protocol implements, and the typed results it returns.

The rest of the gateway (the engine, the self-test) only sees this module, whichever backend
the registry opened (Arvato SOAP, Solidsoft REST). Business outcomes (any NMVS return
code, alerts included) come back as :class:`NmvsResult`; failures to get an answer are raised as
one of the :class:`NmvsError` subclasses, which tell the engine whether the request may have
reached the NMVS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from gateway.codes.pack import PackIdentifier
from gateway.vocabulary import AnswerClass, Operation, PackState


@dataclass(frozen=True, slots=True)
class Notification:
    """A notice the NMVS attaches to an answer (e.g. the password expires in N days)."""

    code: str
    description: str


@dataclass(frozen=True, slots=True)
class NmvsResult:
    """The NMVS's answer to one single-pack request (success or not), classified by the backend.

    The engine decides from ``answer_class``, ``alert`` and the three handling flags alone; the
    protocol's own ``return_code`` is kept for logs, reports and MQTT. ``description`` is the
    NMVS's text, ``message`` / ``message_fr`` the gateway's wording for the pharmacist.

    - ``retryable``: a transient failure; sending again may succeed;
    - ``may_have_applied``: a state change answered so may still have been applied (the engine
      verifies before anything else is sent for the pack);
    - ``needs_operator``: nothing can succeed until someone acts (credentials, certificate,
      terms, configuration): the engine pauses.
    """

    answer_class: AnswerClass
    return_code: str
    description: str
    message: str
    message_fr: str
    alert: bool
    hub_code: str | None
    state: PackState | None
    reasons: tuple[str, ...]
    nmvs_trx_id: str | None
    client_trx_id: str
    server_time: datetime | None
    notifications: tuple[Notification, ...] = ()
    intermarket: bool = False
    retryable: bool = False
    may_have_applied: bool = False
    needs_operator: bool = False
    alert_id: str | None = None  # the NMVS's id of the alert it raised, where it gives one

    @property
    def success(self) -> bool:
        return self.answer_class is AnswerClass.SUCCESS


@dataclass(frozen=True, slots=True)
class BulkTicket:
    """Acknowledgement of a bulk submission; poll with its ``nmvs_trx_id`` (the backend's
    handle: Arvato's NMVSTrxId, Solidsoft's result location)."""

    nmvs_trx_id: str
    client_trx_id: str
    return_code: str
    description: str


@dataclass(frozen=True, slots=True)
class BulkPackResult:
    """One pack of a processed bulk, answered like a single request. ``send_alone``: the bulk
    could not handle this pack (e.g. a product of another market, which only single requests
    route) and nothing was applied: send it on its own."""

    serial: str
    result: NmvsResult
    send_alone: bool = False


@dataclass(frozen=True, slots=True)
class BulkResult:
    """A bulk's result. ``ready`` is False while the NMVS still processes it."""

    ready: bool
    return_code: str
    description: str
    packs: tuple[BulkPackResult, ...] = field(default=())
    server_time: datetime | None = None
    notifications: tuple[Notification, ...] = ()


@dataclass(frozen=True, slots=True)
class PingResult:
    output: str
    latency_ms: float
    server_time: datetime | None


class NmvsError(Exception):
    """No usable NMVS answer. Messages never contain secrets.

    ``return_code`` is set when the NMVS answered with a code that is raised rather than
    returned (a timeout, a refused login): the backend's raw code, for logs only.
    """

    def __init__(self, message: str, *, return_code: str | None = None) -> None:
        super().__init__(message)
        self.return_code = return_code


class NmvsNotSentError(NmvsError):
    """The request certainly did not reach the NMVS (DNS, connect refused, TLS handshake, pool
    timeout). Safe to resend as is."""


class NmvsRateLimitedError(NmvsNotSentError):
    """The NMVS refused the request for rate limiting (HTTP 429, or the protocol's own code); it was
    not processed. Back off at least ``retry_after`` seconds (None: the server gave no hint)."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, return_code: str | None = None
    ) -> None:
        super().__init__(message, return_code=return_code)
        self.retry_after = retry_after


class NmvsInvalidRequestError(NmvsError, ValueError):
    """Refused before sending: a field breaks the NMVS schema (the message names it). Nothing was
    sent; resending unchanged cannot help — the scan or the caller is wrong, not the link."""


class NmvsAmbiguousError(NmvsError):
    """The request may have been processed (timeout or connection loss after the body was sent,
    5xx without an answer, an answer saying the NMVS timed out…). A state change must be reconciled by a
    verify before any resend."""


class NmvsPermanentError(NmvsError):
    """Sending again cannot help until someone acts: bad credentials, certificate expired or
    rejected, schema error, T&C not accepted. The engine pauses and tells the operator."""


class NmvsBackend(Protocol):
    """What the engine needs from a national system. Implementations own their connections."""

    async def execute(
        self,
        operation: Operation,
        pack: PackIdentifier,
        *,
        client_trx_id: str,
        ref_client_trx_id: str | None = None,
    ) -> NmvsResult:
        """Run one single-pack operation (verify, set or undo)."""
        ...

    async def execute_manual(
        self,
        operation: Operation,
        scheme: str,
        product_code: str,
        serial: str,
        *,
        client_trx_id: str,
    ) -> NmvsResult:
        """Manual-entry variant (dispense G122, stolen G182): product code and serial only."""
        ...

    async def submit_bulk(
        self, operation: Operation, packs: Sequence[PackIdentifier], *, client_trx_id: str
    ) -> BulkTicket:
        """Submit one bulk transaction (all packs of one product and batch)."""
        ...

    async def bulk_result(self, ticket: BulkTicket, *, client_trx_id: str) -> BulkResult: ...

    async def ping(self) -> PingResult: ...

    async def aclose(self) -> None: ...
