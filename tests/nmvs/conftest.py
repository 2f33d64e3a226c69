"""Certificates for the NMVS link tests: a server CA and client certificates (good, expired,
from an unknown CA), written as PEM, encrypted PEM and PKCS#12."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

KEY_PASSPHRASE = "key-Passphrase-7!"
P12_PASSWORD = "p12-Password-9?"


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    ca_file: Path
    server: trustme.LeafCert
    client_cert: Path
    client_key: Path
    client_key_encrypted: Path
    client_p12: Path
    expired_cert: Path
    expired_key: Path
    stranger_cert: Path  # issued by a CA the server does not trust
    stranger_key: Path
    unknown_ca_file: Path  # a CA that did not sign the server certificate


def _write_leaf(directory: Path, name: str, leaf: trustme.LeafCert) -> tuple[Path, Path]:
    cert = directory / f"{name}.crt"
    key = directory / f"{name}.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return cert, key


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA(organization_name="Test NMVS CA")
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.cert_pem.bytes())
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client.pharmacy.test", common_name="PHARMA01")
    client_cert, client_key = _write_leaf(directory, "client", client)

    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), password=None)
    encrypted = directory / "client-encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSPHRASE.encode()),
        )
    )
    p12 = directory / "client.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"client",
            key,  # type: ignore[arg-type]
            x509.load_pem_x509_certificate(client.cert_chain_pems[0].bytes()),
            None,
            serialization.BestAvailableEncryption(P12_PASSWORD.encode()),
        )
    )
    now = datetime.now(UTC)
    expired = ca.issue_cert(
        "expired.pharmacy.test",
        not_before=now - timedelta(days=400),
        not_after=now - timedelta(days=1),
    )
    expired_cert, expired_key = _write_leaf(directory, "expired", expired)
    stranger = trustme.CA().issue_cert("stranger.pharmacy.test")
    stranger_cert, stranger_key = _write_leaf(directory, "stranger", stranger)
    unknown_ca_file = directory / "unknown-ca.pem"
    unknown_ca_file.write_bytes(trustme.CA().cert_pem.bytes())
    return Pki(
        ca=ca,
        ca_file=ca_file,
        server=server,
        client_cert=client_cert,
        client_key=client_key,
        client_key_encrypted=encrypted,
        client_p12=p12,
        expired_cert=expired_cert,
        expired_key=expired_key,
        stranger_cert=stranger_cert,
        stranger_key=stranger_key,
        unknown_ca_file=unknown_ca_file,
    )
