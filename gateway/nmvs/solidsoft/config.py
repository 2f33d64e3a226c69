"""Settings of a Solidsoft Reply REST link (national systems of CZ, IE, SE, DK, FI, CH, …).

Two roots: the API (``api_url``, every path relative to it) and the identity server's token
endpoint (``token_url``). By default both hang off one base URL as the national systems and the
simulator serve them: ``<url>/api/`` and ``<url>/identity/connect/token``. The client secret is
held as :class:`~gateway.nmvs.secret.Secret`; a client certificate is optional (mutual TLS only
where the national system asks for it). Timeouts follow the Arvato link's reasoning: short
waits before a request is written, a generous one for the answer.

Retries (``retries``, ``retry_wait_max``): an answer the system refused without processing
(408, 429, 503) is sent again after the server's ``Retry-After`` or a doubling backoff, as long
as the wait is at most ``retry_wait_max``; a longer one goes back to the engine, which holds
every send for it. A 500/502/504 is retried only for a verify: a state change may have been
applied, and sending it again blindly is how a repeated decommission raises an alert.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from gateway.nmvs.secret import Secret
from gateway.nmvs.tls import ClientTls, TlsFileError

BacklogEndpoint = Literal["recovery", "bulk"]
API_PATH = "/api/"
TOKEN_PATH = "/identity/connect/token"  # noqa: S105 - a path, not a secret


class SolidsoftConfigError(ValueError):
    """A setting is wrong: ``key`` is the ``[nmvs]`` key to edit, ``problem`` how to fix it."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = f"nmvs.{key}"
        self.problem = problem
        super().__init__(f"{self.key}: {problem}")


@dataclass(frozen=True)
class SolidsoftConfig:
    api_url: str  # ends with "/"
    token_url: str
    client_id: str
    client_secret: Secret = field(repr=False)
    location: str | None = None  # the pharmacy's location id where it differs from client_id
    tls: ClientTls = field(default_factory=ClientTls)
    language: str = "en"
    connect_timeout: float = 2.0
    read_timeout: float = 6.0
    write_timeout: float = 6.0
    pool_timeout: float = 1.0
    total_timeout: float = 15.0
    max_connections: int = 8
    retries: int = 2
    retry_wait_max: float = 5.0
    token_renew_margin: float = 60.0  # renew this long before the token expires
    backlog_endpoint: BacklogEndpoint = "recovery"

    @property
    def undo_owner(self) -> str:
        """Solidsoft systems let only the location that made a change undo it."""
        return self.location or self.client_id

    def ssl_context(self) -> ssl.SSLContext:
        """The client TLS context; an error names the ``[nmvs]`` key of the file to fix."""
        try:
            return self.tls.ssl_context()
        except TlsFileError as exc:
            raise SolidsoftConfigError(exc.field, exc.problem) from None

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.api_url).scheme == "https"

    def __post_init__(self) -> None:
        for key in ("api_url", "token_url"):
            parts = urlsplit(getattr(self, key))
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise SolidsoftConfigError(key, f"{getattr(self, key)!r} is not an http(s) URL")
        if not self.api_url.endswith("/"):
            raise SolidsoftConfigError("api_url", "must end with '/' (paths are relative to it)")
        if not self.client_id or any(c.isspace() for c in self.client_id):
            raise SolidsoftConfigError("client_id", "must be a non-empty id without spaces")
        if not self.client_secret:
            raise SolidsoftConfigError("client_secret_file", "the client secret is empty")
        for key in ("connect_timeout", "read_timeout", "write_timeout", "pool_timeout"):
            if not 0 < getattr(self, key) <= 120:
                raise SolidsoftConfigError(key, "must be a number of seconds in (0, 120]")
        if not 0 < self.total_timeout <= 300:
            raise SolidsoftConfigError("total_timeout", "must be a number of seconds in (0, 300]")
        if not 0 <= self.retries <= 10:
            raise SolidsoftConfigError("retries", "must be an integer from 0 to 10")
        if self.backlog_endpoint not in ("recovery", "bulk"):
            raise SolidsoftConfigError("backlog_endpoint", 'must be "recovery" or "bulk"')
