"""Configuration of the Arvato SOAP v5 link, and the mutual-TLS context built from it.

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

import os
import re
import secrets
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from gateway import __version__
from gateway.nmvs.arvato.secret import Secret
from gateway.nmvs.arvato.soap import BULK_PATH, Credentials

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
        if self.pkcs12_file is not None and (self.cert_file or self.key_file):
            raise ArvatoConfigError(
                "pkcs12_file", "give either nmvs.pkcs12_file or nmvs.cert_file/key_file, not both"
            )
        if self.key_file is not None and self.cert_file is None:
            raise ArvatoConfigError("cert_file", "nmvs.key_file is set but nmvs.cert_file is not")
        if self.pkcs12_password is not None and self.pkcs12_file is None:
            raise ArvatoConfigError("pkcs12_password", "set without nmvs.pkcs12_file")
        if self.key_password is not None and self.cert_file is None:
            raise ArvatoConfigError("key_password", "set without nmvs.cert_file")
        if urlsplit(self.endpoint).scheme == "https" and not (self.cert_file or self.pkcs12_file):
            raise ArvatoConfigError(
                "cert_file",
                "the NMVS requires a client certificate: set nmvs.cert_file or nmvs.pkcs12_file",
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

    def ssl_context(self) -> ssl.SSLContext:
        """The client TLS context: server verified against ``ca_file`` (or the system store),
        our certificate from PEM or PKCS#12. Errors name the key of the file or password to fix.
        Validity dates are not checked here (the client refuses to send with an expired one)."""
        try:
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None
            )
        except ssl.SSLError:
            raise ArvatoConfigError(
                "ca_file", f"{self.ca_file} holds no usable CA certificate"
            ) from None
        except OSError as exc:
            raise _unreadable("ca_file", self.ca_file, exc) from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.tls_max_version == "1.2":
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        if self.pkcs12_file is not None:
            self._load_pkcs12(context)
        elif self.cert_file is not None:
            self.client_certificate()  # a bad certificate is named as such, not as a key problem
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
                    f"cannot load the client certificate {self.cert_file} with the key "
                    f"{self.key_file or self.cert_file} ({exc.reason or 'not PEM'}): "
                    "is the key the one of nmvs.cert_file?",
                ) from None
            except OSError as exc:
                raise _unreadable("key_file", self.key_file or self.cert_file, exc) from None
        return context

    def _check_key_password(self, password: str | None) -> None:
        """Tell a wrong or missing passphrase apart from a wrong key (ssl says "PEM lib")."""
        key_path = self.key_file or self.cert_file
        assert key_path is not None  # only called with cert_file set
        data = _read_file("key_file" if self.key_file else "cert_file", key_path)
        if b"PRIVATE KEY-----" not in data:
            return  # no key in this file: load_cert_chain reports it
        try:
            serialization.load_pem_private_key(data, password.encode() if password else None)
        except TypeError:
            problem = (
                f"the private key in {key_path} is encrypted: "
                "set this to a file holding its passphrase"
                if not password
                else f"set, but the private key in {key_path} is not encrypted: remove it"
            )
            raise ArvatoConfigError("key_password", problem) from None
        except ValueError:
            if password:
                raise ArvatoConfigError(
                    "key_password",
                    f"this passphrase does not decrypt the private key in {key_path}",
                ) from None
            raise ArvatoConfigError(
                "key_file", f"cannot read the private key in {key_path} (not a PEM key)"
            ) from None

    def _read_pkcs12(
        self,
    ) -> tuple[PrivateKeyTypes, x509.Certificate, list[x509.Certificate]]:
        path = self.pkcs12_file
        assert path is not None
        data = _read_file("pkcs12_file", path)
        if not data.startswith(b"\x30"):  # every PKCS#12 file is one DER SEQUENCE
            raise ArvatoConfigError("pkcs12_file", f"{path} is not a PKCS#12 (.p12/.pfx) file")
        password = self.pkcs12_password.reveal().encode() if self.pkcs12_password else None
        try:
            key, cert, chain = pkcs12.load_key_and_certificates(data, password)
        except ValueError:
            raise ArvatoConfigError(
                "pkcs12_password", f"cannot open {path}: wrong password, or not PKCS#12"
            ) from None
        if key is None or cert is None:
            raise ArvatoConfigError("pkcs12_file", f"{path} holds no private key and certificate")
        return key, cert, list(chain or ())

    def _load_pkcs12(self, context: ssl.SSLContext) -> None:
        key, cert, chain = self._read_pkcs12()
        # Python's ssl loads keys only from files: hand it the key re-encrypted under a one-time
        # passphrase, through memory-only files (memfd), so the key never touches a disk in clear.
        one_time = secrets.token_urlsafe(32).encode()
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(one_time),
        )
        certs_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, *chain))
        with _memory_file(certs_pem) as cert_path, _memory_file(key_pem) as key_path:
            context.load_cert_chain(cert_path, key_path, password=one_time)

    def client_certificate(self) -> x509.Certificate | None:
        """Our client certificate (for its validity dates), if one is set."""
        if self.pkcs12_file is not None:
            return self._read_pkcs12()[1]
        if self.cert_file is not None:
            try:
                return x509.load_pem_x509_certificate(_read_file("cert_file", self.cert_file))
            except ValueError:
                raise ArvatoConfigError(
                    "cert_file", f"{self.cert_file} holds no PEM certificate"
                ) from None
        return None


def _read_file(field_name: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(field_name, path, exc) from None


def _unreadable(field_name: str, path: Path | None, exc: OSError) -> ArvatoConfigError:
    return ArvatoConfigError(field_name, f"cannot read {path}: {exc.strerror or exc}")


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
