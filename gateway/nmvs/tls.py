"""The client side of (mutual) TLS for any backend: the certificate, key and CA files the
``[nmvs]`` section names, and the :class:`ssl.SSLContext` built from them.

Errors are :class:`TlsFileError` naming the field (``cert_file``, ``key_password`` …); each
backend turns the field into the ``[nmvs]`` key its operator edits. The key of a PKCS#12 file
is handed to ``ssl`` through memory-only files, never in clear on a disk.
"""

from __future__ import annotations

import os
import secrets
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from gateway.nmvs.secret import Secret


class TlsFileError(ValueError):
    """A TLS file or passphrase is wrong: ``field`` names it, ``problem`` says how to fix it."""

    def __init__(self, field_name: str, problem: str) -> None:
        self.field = field_name
        self.problem = problem
        super().__init__(f"{field_name}: {problem}")


@dataclass(frozen=True)
class ClientTls:
    """Our certificate (PEM pair or PKCS#12), the CA to trust (None: the system store) and the
    highest TLS version to offer."""

    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: Secret | None = field(default=None, repr=False)
    pkcs12_file: Path | None = None
    pkcs12_password: Secret | None = field(default=None, repr=False)
    ca_file: Path | None = None
    tls_max_version: str = "1.2"

    @property
    def has_certificate(self) -> bool:
        return self.cert_file is not None or self.pkcs12_file is not None

    def check_fields(self) -> None:
        """The files and passwords fit together and the files exist."""
        if self.pkcs12_file is not None and (self.cert_file or self.key_file):
            raise TlsFileError(
                "pkcs12_file", "give either nmvs.pkcs12_file or nmvs.cert_file/key_file, not both"
            )
        if self.key_file is not None and self.cert_file is None:
            raise TlsFileError("cert_file", "nmvs.key_file is set but nmvs.cert_file is not")
        if self.pkcs12_password is not None and self.pkcs12_file is None:
            raise TlsFileError("pkcs12_password", "set without nmvs.pkcs12_file")
        if self.key_password is not None and self.cert_file is None:
            raise TlsFileError("key_password", "set without nmvs.cert_file")
        for name in ("cert_file", "key_file", "pkcs12_file", "ca_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise TlsFileError(name, f"file not found: {path}")

    def ssl_context(self) -> ssl.SSLContext:
        """The client TLS context: server verified against ``ca_file`` (or the system store),
        our certificate from PEM or PKCS#12. Errors name the key of the file or password to fix.
        Validity dates are not checked here (the client refuses to send with an expired one)."""
        try:
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None
            )
        except ssl.SSLError:
            raise TlsFileError(
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
                raise TlsFileError(
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
            raise TlsFileError("key_password", problem) from None
        except ValueError:
            if password:
                raise TlsFileError(
                    "key_password",
                    f"this passphrase does not decrypt the private key in {key_path}",
                ) from None
            raise TlsFileError(
                "key_file", f"cannot read the private key in {key_path} (not a PEM key)"
            ) from None

    def _read_pkcs12(
        self,
    ) -> tuple[PrivateKeyTypes, x509.Certificate, list[x509.Certificate]]:
        path = self.pkcs12_file
        assert path is not None
        data = _read_file("pkcs12_file", path)
        if not data.startswith(b"\x30"):  # every PKCS#12 file is one DER SEQUENCE
            raise TlsFileError("pkcs12_file", f"{path} is not a PKCS#12 (.p12/.pfx) file")
        password = self.pkcs12_password.reveal().encode() if self.pkcs12_password else None
        try:
            key, cert, chain = pkcs12.load_key_and_certificates(data, password)
        except ValueError:
            raise TlsFileError(
                "pkcs12_password", f"cannot open {path}: wrong password, or not PKCS#12"
            ) from None
        if key is None or cert is None:
            raise TlsFileError("pkcs12_file", f"{path} holds no private key and certificate")
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

    def check_usable(self, now: datetime) -> None:
        """Build the context once (every file, key and password is read) and refuse an
        expired client certificate: the NMVS would refuse it, only a new one helps. One not
        yet valid is let through: at boot the clock may still be wrong."""
        self.ssl_context()
        certificate = self.client_certificate()
        if certificate is not None and now > certificate.not_valid_after_utc:
            field_name = "pkcs12_file" if self.pkcs12_file is not None else "cert_file"
            raise TlsFileError(
                field_name,
                f"the client certificate in {getattr(self, field_name)} expired on "
                f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: install the new one "
                "your NMVS issued",
            )

    def client_certificate(self) -> x509.Certificate | None:
        """Our client certificate (for its validity dates), if one is set."""
        if self.pkcs12_file is not None:
            return self._read_pkcs12()[1]
        if self.cert_file is not None:
            try:
                return x509.load_pem_x509_certificate(_read_file("cert_file", self.cert_file))
            except ValueError:
                raise TlsFileError(
                    "cert_file", f"{self.cert_file} holds no PEM certificate"
                ) from None
        return None


def _read_file(field_name: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(field_name, path, exc) from None


def _unreadable(field_name: str, path: Path | None, exc: OSError) -> TlsFileError:
    return TlsFileError(field_name, f"cannot read {path}: {exc.strerror or exc}")


@contextmanager
def _memory_file(data: bytes) -> Iterator[str]:
    fd = os.memfd_create("nmvs-client-cert", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)
