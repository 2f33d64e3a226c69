"""What every HTTP-based backend shares: one bounded exchange, and its failures classified.

A backend sends through :func:`exchange` and gets a :class:`Reply` read in full (never more
than its size limit), or one of the :class:`~gateway.nmvs.backend.NmvsError` subclasses that
say whether the request may have reached the NMVS:

* failures before the request could be written (DNS, refused, connect or pool timeout, TLS
  handshake) → not sent;
* failures after (read/write timeout, reset, server disconnect, no complete answer within the
  total timeout) → ambiguous, whatever the server really did;
* a TLS failure caused by a certificate (ours refused or expired, theirs untrusted) →
  permanent, in whichever phase TLS 1.3 reports it;
* a URL or protocol we cannot send to → permanent.

Also here: the server's clock from ``Date`` and its ``Retry-After`` delay.
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn, Protocol

import httpx
import structlog

from gateway.nmvs.backend import (
    NmvsAmbiguousError,
    NmvsNotSentError,
    NmvsPermanentError,
)

log = structlog.get_logger("gateway.nmvs.http")

# OpenSSL reasons that mean "a certificate was refused" (ours by the server, or theirs by us).
_CERTIFICATE_REASONS = frozenset(
    {
        "CERTIFICATE_VERIFY_FAILED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "WRONG_VERSION_NUMBER",  # plain HTTP server at an https:// endpoint: a config error
    }
)

# The server hung up in the middle of the TLS handshake (no alert): in mutual TLS this is how
# many servers refuse a client certificate. Reported only for failures while connecting.
_HANDSHAKE_HANGUP = frozenset({"UNEXPECTED_EOF_WHILE_READING", "SSLEOFError", "SSLZeroReturnError"})


@dataclass(frozen=True, slots=True)
class Hints:
    """The settings to name when an exchange fails for a reason an operator must fix."""

    certificate: str  # e.g. "nmvs.cert_file/pkcs12_file"
    url: str  # e.g. "nmvs.url"


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer read in full."""

    status: int
    headers: httpx.Headers
    body: bytes


class AnswerTooLarge(Exception):
    """The answer was longer than the limit; the caller decides what that means."""


class PoolSettings(Protocol):
    """The settings of a backend's connection pool (each backend's config has them)."""

    @property
    def connect_timeout(self) -> float: ...
    @property
    def read_timeout(self) -> float: ...
    @property
    def write_timeout(self) -> float: ...
    @property
    def pool_timeout(self) -> float: ...
    @property
    def max_connections(self) -> int: ...


def pooled_client(
    settings: PoolSettings,
    *,
    verify: ssl.SSLContext | bool,
    transport: httpx.AsyncBaseTransport | None,
    headers: Mapping[str, str],
) -> httpx.AsyncClient:
    """One persistent pool to the national system; redirects are never followed (a request
    carrying credentials goes only where it was configured to)."""
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.write_timeout,
        pool=settings.pool_timeout,
    )
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
    )
    return httpx.AsyncClient(
        verify=verify,
        timeout=timeout,
        limits=limits,
        transport=transport,
        headers=dict(headers),
        follow_redirects=False,
    )


def _ssl_reason(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen.reason or type(seen).__name__
        seen = seen.__cause__ or seen.__context__
    return None


def http_date(headers: httpx.Headers) -> datetime | None:
    """The server's clock from the HTTP ``Date`` header (for the self-test's clock check)."""
    try:
        when = email.utils.parsedate_to_datetime(headers.get("date", ""))
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def retry_after(headers: httpx.Headers) -> float | None:
    """The server's ``Retry-After`` in seconds (delay or HTTP date), None when absent or bad."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def exchange(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    label: str,
    hints: Hints,
    total_timeout: float,
    max_bytes: int,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """Send one request and read its answer in full within ``total_timeout`` seconds.

    Raises :class:`AnswerTooLarge` past ``max_bytes``, or the classified
    :class:`~gateway.nmvs.backend.NmvsError` when no answer came."""
    try:
        async with (
            asyncio.timeout(total_timeout),
            http.stream(method, url, content=content, headers=headers) as response,
        ):
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise AnswerTooLarge(f"answer larger than {max_bytes} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        transport_failure(label, exc, hints)
    except TimeoutError:
        log.warning("nmvs.transport_error", use_case=label, error="total_timeout")
        raise NmvsAmbiguousError(
            f"{label}: no complete answer within total_timeout ({total_timeout} s); "
            "it may have been processed"
        ) from None
    return Reply(response.status_code, response.headers, b"".join(chunks))


def transport_failure(label: str, exc: httpx.HTTPError, hints: Hints) -> NoReturn:
    """Raise what a failed exchange means: not sent, ambiguous, or an operator's to fix."""
    kind = type(exc).__name__
    reason = _ssl_reason(exc)
    log.warning("nmvs.transport_error", use_case=label, error=kind, tls=reason)
    if reason in _CERTIFICATE_REASONS:
        raise NmvsPermanentError(
            f"{label}: TLS refused ({reason}): check {hints.certificate} "
            "(expired or not accepted by the NMVS) and nmvs.ca_file"
        ) from exc
    if isinstance(exc, httpx.ConnectError) and reason in _HANDSHAKE_HANGUP:
        raise NmvsPermanentError(
            f"{label}: not sent, the server closed the connection during the TLS "
            f"handshake: it most likely refused our certificate; check {hints.certificate}"
        ) from exc
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.InvalidURL):
        raise NmvsPermanentError(f"{label}: cannot send ({kind}): check {hints.url}") from exc
    if isinstance(
        exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.ProxyError
    ):
        raise NmvsNotSentError(
            f"{label}: not sent ({kind}{', ' + reason if reason else ''})"
        ) from exc
    raise NmvsAmbiguousError(
        f"{label}: {kind} after the request was sent; it may have been processed"
    ) from exc


def unreadable(
    label: str, changes_state: bool, problem: str, status: int | None, hints: Hints
) -> NoReturn:
    """Raise what an answer we cannot read means. A state change may have been applied (verify
    first); a 3xx/4xx means we talk to the wrong place; resending a read cannot help."""
    where = f"{label}: unreadable answer" + (f" (HTTP {status})" if status else "")
    log.warning("nmvs.unreadable_answer", use_case=label, http_status=status, problem=problem)
    if status is not None and 300 <= status < 500 and status != 408:
        raise NmvsPermanentError(f"{where}: check {hints.url} ({problem})")
    if changes_state or (status is not None and status >= 500) or status == 408:
        raise NmvsAmbiguousError(f"{where}, the request may have been processed: {problem}")
    raise NmvsPermanentError(f"{where}: {problem}")
