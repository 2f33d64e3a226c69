"""Configuration of the Arvato SOAP v5 link (its TLS files are :mod:`gateway.nmvs.tls`'s).

:class:`ArvatoConfig` is what the daemon's loader (``gateway/daemon/config.py``) fills from the
``[nmvs]`` table of ``gateway.toml``, secrets read from their ``*_file`` keys. Every error names
the ``[nmvs]`` key the operator edits (:data:`TOML_KEYS` maps a field to it), never a field name
the operator cannot see. Secrets are held as :class:`Secret` and never printed.

Default timeouts (the NMVS answers within 300 ms, 900 ms for an intermarket transaction): a
failure before the body is sent costs only a resend, one after it costs a reconcile-by-verify,
so connect and pool waits are short (2 s, 1 s) and the read wait is generous (6 s ≈ 6× the IMT
budget plus a slow pharmacy line) — long enough that a slow but successful answer is rarely
turned into an ambiguous failure, short enough for a counter.

TLS 1.2 by default (``tls_max_version``): in TLS 1.2 the server checks our certificate inside
the handshake, so a refused certificate fails the connection before one byte of the request is
sent (a clear permanent error). TLS 1.3 moves that check after the client's Finished message:
the refusal arrives after the request was written and looks exactly like a connection loss
(ambiguous), which would send the engine into reconcile loops instead of calling the operator.
Set ``tls_max_version = "1.3"`` if the NMVO requires it (inferred: Arvato accepts TLS 1.2).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509

from gateway import __version__
from gateway.nmvs.arvato.soap import BULK_PATH, Credentials
from gateway.nmvs.secret import Secret
from gateway.nmvs.tls import ClientTls, TlsFileError

_ID = re.compile(r"[A-Za-z0-9-]+")

# The [nmvs] key of gateway.toml that sets a field, where its name differs from the field's.
TOML_KEYS = {
    "endpoint": "url",
    "bulk_endpoint": "bulk_url",
    "password": "password_file",
    "key_password": "key_password_file",
    "pkcs12_password": "pkcs12_password_file",
}


def toml_key(field_name: str) -> str:
    """``nmvs.<key>``: what the operator edits to change ``field_name``."""
    return f"nmvs.{TOML_KEYS.get(field_name, field_name)}"


class ArvatoConfigError(ValueError):
    """A configuration value is wrong: ``field`` names it, ``key`` is the TOML key that sets it
    (``nmvs.key_password_file`` for ``key_password``), ``problem`` says how to fix it;
    ``str()`` is ``"<key>: <problem>"``."""

    def __init__(self, field_name: str, problem: str) -> None:
        self.field = field_name
        self.key = toml_key(field_name)
        self.problem = problem
        super().__init__(f"{self.key}: {problem}")


@dataclass(frozen=True)
class ArvatoConfig:
    endpoint: str
    client_login_id: str
    user_id: str
    password: Secret = field(repr=False)
    software_supplier: str
    sub_user_id: str | None = None
    bulk_endpoint: str | None = None  # None: the bulk path on the single-pack host
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: Secret | None = field(default=None, repr=False)
    pkcs12_file: Path | None = None
    pkcs12_password: Secret | None = field(default=None, repr=False)
    ca_file: Path | None = None  # None: the system trust store
    connect_timeout: float = 2.0
    read_timeout: float = 6.0
    write_timeout: float = 6.0
    pool_timeout: float = 1.0
    total_timeout: float = 15.0  # a whole exchange, against servers that trickle bytes
    max_connections: int = 8
    tls_max_version: str = "1.2"  # see the module docstring
    software_name: str = "nmvs-gateway"
    software_version: str = __version__
    language: str = "eng"

    @property
    def undo_owner(self) -> str:
        """Arvato systems let only the NMVS user who made a change undo it (PCK_21)."""
        return self.user_id

    def __post_init__(self) -> None:
        for name in ("endpoint", "bulk_endpoint"):
            url = getattr(self, name)
            if url is not None:
                parts = urlsplit(url)
                if parts.scheme not in ("https", "http") or not parts.hostname:
                    raise ArvatoConfigError(name, f"{url!r} is not an http(s) URL")
        _check_id("client_login_id", self.client_login_id, 1, 20)
        _check_id("user_id", self.user_id, 4, 20)
        if not isinstance(self.password, Secret) or not 8 <= len(self.password.reveal()) <= 60:
            raise ArvatoConfigError("password", "must be 8-60 characters")
        if self.sub_user_id is not None and not (
            1 <= len(self.sub_user_id) <= 255 and not set(self.sub_user_id) & set("\r\n\t")
        ):
            raise ArvatoConfigError(
                "sub_user_id", "must be 1-255 characters without tabs or line breaks"
            )
        for name, limit in (("software_name", 255), ("software_supplier", 255)):
            if not 1 <= len(getattr(self, name)) <= limit:
                raise ArvatoConfigError(name, f"must be 1-{limit} characters")
        if not 1 <= len(self.software_version) <= 10:
            raise ArvatoConfigError(
                "software_version",
                f"must be 1-10 characters (NMVS schema), {self.software_version!r} has "
                f"{len(self.software_version)}",
            )
        if not (len(self.language) == 3 and self.language.isascii() and self.language.isalpha()):
            raise ArvatoConfigError(
                "language", f"must be 3 letters (ISO 639-3), not {self.language!r}"
            )
        for name in (
            "connect_timeout",
            "read_timeout",
            "write_timeout",
            "pool_timeout",
            "total_timeout",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value <= 120):
                raise ArvatoConfigError(
                    name, f"must be a number of seconds in (0, 120], not {value!r}"
                )
        if self.tls_max_version not in ("1.2", "1.3"):
            raise ArvatoConfigError(
                "tls_max_version", f'must be "1.2" or "1.3", not {self.tls_max_version!r}'
            )
        if not (isinstance(self.max_connections, int) and 1 <= self.max_connections <= 100):
            raise ArvatoConfigError("max_connections", "must be an integer 1-100")
        self._check_certificate_fields()

    def _check_certificate_fields(self) -> None:
        with named_by_key():
            self.tls.check_fields()
        if urlsplit(self.endpoint).scheme == "https" and not (self.cert_file or self.pkcs12_file):
            raise ArvatoConfigError(
                "cert_file",
                "the NMVS requires a client certificate: set nmvs.cert_file or nmvs.pkcs12_file",
            )

    @property
    def single_pack_url(self) -> str:
        return self.endpoint

    @property
    def bulk_url(self) -> str:
        if self.bulk_endpoint is not None:
            return self.bulk_endpoint
        parts = urlsplit(self.endpoint)
        return urlunsplit((parts.scheme, parts.netloc, BULK_PATH, "", ""))

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.endpoint).scheme == "https"

    def credentials(self) -> Credentials:
        return Credentials(
            client_login_id=self.client_login_id,
            user_id=self.user_id,
            password=self.password,
            sub_user_id=self.sub_user_id,
            software_name=self.software_name,
            software_supplier=self.software_supplier,
            software_version=self.software_version,
            language=self.language,
        )

    @property
    def tls(self) -> ClientTls:
        return ClientTls(
            cert_file=self.cert_file,
            key_file=self.key_file,
            key_password=self.key_password,
            pkcs12_file=self.pkcs12_file,
            pkcs12_password=self.pkcs12_password,
            ca_file=self.ca_file,
            tls_max_version=self.tls_max_version,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """The client TLS context (see :meth:`ClientTls.ssl_context`); errors name the key."""
        with named_by_key():
            return self.tls.ssl_context()

    def client_certificate(self) -> x509.Certificate | None:
        """Our client certificate (for its validity dates), if one is set."""
        with named_by_key():
            return self.tls.client_certificate()


@contextmanager
def named_by_key() -> Iterator[None]:
    """A TLS file error as the configuration error naming the ``[nmvs]`` key."""
    try:
        yield
    except TlsFileError as exc:
        raise ArvatoConfigError(exc.field, exc.problem) from None


def _check_id(name: str, value: object, min_len: int, max_len: int) -> None:
    if not (isinstance(value, str) and min_len <= len(value) <= max_len and _ID.fullmatch(value)):
        raise ArvatoConfigError(name, f"must be {min_len}-{max_len} characters A-Z a-z 0-9 -")
