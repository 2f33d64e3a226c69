"""Configuration of the Arvato SOAP v5 link, and the mutual-TLS context built from it.

:class:`ArvatoConfig` is what the daemon fills from its TOML ``[nmvs.arvato]`` table (see
:meth:`ArvatoConfig.from_mapping`). Every check names the field to fix. Secrets are held as
:class:`Secret` and never printed.

Default timeouts (the NMVS answers within 300 ms, 900 ms for an intermarket transaction,
nmvs-protocol.md §12): a failure before the body is sent costs only a resend, one after it
costs a reconcile-by-verify, so connect and pool waits are short (2 s, 1 s) and the read wait
is generous (6 s ≈ 6× the IMT budget plus a slow pharmacy line) — long enough that a slow but
successful answer is rarely turned into an ambiguous failure, short enough for a counter.

TLS 1.2 by default (``tls_max_version``): in TLS 1.2 the server checks our certificate inside
the handshake, so a refused certificate fails the connection before one byte of the request is
sent (a clear permanent error). TLS 1.3 moves that check after the client's Finished message:
the refusal arrives after the request was written and looks exactly like a connection loss
(ambiguous), which would send the engine into reconcile loops instead of calling the operator.
Set ``tls_max_version = "1.3"`` if the NMVO requires it (inferred: Arvato accepts TLS 1.2).
"""

from __future__ import annotations

import os
import re
import secrets
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from gateway import __version__
from gateway.nmvs.arvato.secret import Secret
from gateway.nmvs.arvato.soap import BULK_PATH, Credentials

_ID = re.compile(r"[A-Za-z0-9-]+")


class ArvatoConfigError(ValueError):
    """A configuration value is wrong; ``field`` names it, the message says how to fix it."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"nmvs.arvato.{field_name}: {problem}")
        self.field = field_name


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
        if self.pkcs12_file is not None and (self.cert_file or self.key_file):
            raise ArvatoConfigError(
                "pkcs12_file", "give either pkcs12_file or cert_file/key_file, not both"
            )
        if self.key_file is not None and self.cert_file is None:
            raise ArvatoConfigError("cert_file", "key_file is set but cert_file is missing")
        if self.pkcs12_password is not None and self.pkcs12_file is None:
            raise ArvatoConfigError("pkcs12_password", "set without pkcs12_file")
        if self.key_password is not None and self.cert_file is None:
            raise ArvatoConfigError("key_password", "set without cert_file")
        if urlsplit(self.endpoint).scheme == "https" and not (self.cert_file or self.pkcs12_file):
            raise ArvatoConfigError(
                "cert_file", "the NMVS requires a client certificate: set cert_file or pkcs12_file"
            )
        for name in ("cert_file", "key_file", "pkcs12_file", "ca_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ArvatoConfigError(name, f"file not found: {path}")

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

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> ArvatoConfig:
        """Build from a TOML table; unknown keys and wrong types are named in the error."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise ArvatoConfigError(unknown[0], f"unknown setting (known: {', '.join(known)})")
        missing = [
            name
            for name in ("endpoint", "client_login_id", "user_id", "password", "software_supplier")
            if name not in table
        ]
        if missing:
            raise ArvatoConfigError(missing[0], "required")
        values: dict[str, Any] = {}
        for name, value in table.items():
            if name in ("password", "key_password", "pkcs12_password"):
                if not isinstance(value, str):
                    raise ArvatoConfigError(name, "must be a string")
                values[name] = Secret(value)
            elif name in ("cert_file", "key_file", "pkcs12_file", "ca_file"):
                if not isinstance(value, str):
                    raise ArvatoConfigError(name, "must be a file path string")
                values[name] = Path(value)
            elif name.endswith("_timeout") or name == "max_connections":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ArvatoConfigError(name, "must be a number")
                values[name] = value
            else:
                if not isinstance(value, str):
                    raise ArvatoConfigError(name, "must be a string")
                values[name] = value
        return cls(**values)

    def ssl_context(self) -> ssl.SSLContext:
        """The client TLS context: server verified against ``ca_file`` (or the system store),
        our certificate from PEM or PKCS#12. Errors name the file or password to fix."""
        try:
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None
            )
        except ssl.SSLError:
            raise ArvatoConfigError(
                "ca_file", f"{self.ca_file} holds no usable CA certificate"
            ) from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.tls_max_version == "1.2":
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        if self.pkcs12_file is not None:
            self._load_pkcs12(context, self.pkcs12_file)
        elif self.cert_file is not None:
            password = self.key_password.reveal() if self.key_password is not None else None
            self._check_key_password(password)
            try:
                context.load_cert_chain(
                    str(self.cert_file),
                    str(self.key_file) if self.key_file is not None else None,
                    password=password or None,
                )
            except ssl.SSLError as exc:
                raise ArvatoConfigError(
                    "key_file",
                    f"cannot load the client certificate and key ({exc.reason or 'not PEM'}): "
                    "is the key the one of cert_file?",
                ) from None
        return context

    def _check_key_password(self, password: str | None) -> None:
        """Tell a wrong or missing passphrase apart from a wrong key (ssl says "PEM lib")."""
        key_path = self.key_file or self.cert_file
        assert key_path is not None  # only called with cert_file set
        data = key_path.read_bytes()
        if b"PRIVATE KEY-----" not in data:
            return  # no key in this file: load_cert_chain reports it
        try:
            serialization.load_pem_private_key(data, password.encode() if password else None)
        except TypeError:
            problem = (
                "the key is encrypted: set key_password"
                if not password
                else ("key_password is set but the key is not encrypted")
            )
            raise ArvatoConfigError("key_password", problem) from None
        except ValueError:
            field_name = "key_password" if password else "key_file"
            raise ArvatoConfigError(
                field_name, f"cannot decrypt or read the private key in {key_path}"
            ) from None

    def _load_pkcs12(self, context: ssl.SSLContext, path: Path) -> None:
        password = self.pkcs12_password.reveal().encode() if self.pkcs12_password else None
        try:
            key, cert, chain = pkcs12.load_key_and_certificates(path.read_bytes(), password)
        except ValueError:
            raise ArvatoConfigError(
                "pkcs12_password", f"cannot open {path} (wrong password or not PKCS#12)"
            ) from None
        if key is None or cert is None:
            raise ArvatoConfigError("pkcs12_file", f"{path} holds no private key and certificate")
        # Python's ssl loads keys only from files: hand it the key re-encrypted under a one-time
        # passphrase, through memory-only files (memfd), so the key never touches a disk in clear.
        one_time = secrets.token_urlsafe(32).encode()
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(one_time),
        )
        certs_pem = b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in (cert, *(chain or ()))
        )
        with _memory_file(certs_pem) as cert_path, _memory_file(key_pem) as key_path:
            context.load_cert_chain(cert_path, key_path, password=one_time)

    def client_certificate(self) -> x509.Certificate | None:
        """Our client certificate (for expiry monitoring by the self-test), if one is set."""
        if self.pkcs12_file is not None:
            password = self.pkcs12_password.reveal().encode() if self.pkcs12_password else None
            try:
                return pkcs12.load_key_and_certificates(self.pkcs12_file.read_bytes(), password)[1]
            except ValueError:
                raise ArvatoConfigError("pkcs12_password", "cannot open the PKCS#12 file") from None
        if self.cert_file is not None:
            try:
                return x509.load_pem_x509_certificate(self.cert_file.read_bytes())
            except ValueError:
                raise ArvatoConfigError("cert_file", "not a PEM certificate") from None
        return None


def _check_id(name: str, value: object, min_len: int, max_len: int) -> None:
    if not (isinstance(value, str) and min_len <= len(value) <= max_len and _ID.fullmatch(value)):
        raise ArvatoConfigError(name, f"must be {min_len}-{max_len} characters A-Z a-z 0-9 -")


@contextmanager
def _memory_file(data: bytes) -> Iterator[str]:
    fd = os.memfd_create("nmvs-client-cert", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)
