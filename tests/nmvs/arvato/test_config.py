"""ArvatoConfig: validation naming the field, secrets kept out of text, TLS material loading."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from gateway.nmvs.arvato import ArvatoConfig, ArvatoConfigError, Secret
from tests.nmvs.conftest import KEY_PASSPHRASE, P12_PASSWORD, Pki

PASSWORD = "Very-Secret-Pw1!"
# fields set by a differently named key of the daemon's [nmvs] table
RENAMED = {
    "endpoint": "url",
    "password": "password_file",
    "pkcs12_password": "pkcs12_password_file",
}


def table(pki: Pki, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "endpoint": "https://127.0.0.1:8443/WS_SINGLE_TRANSACTIONS_V1/SinglePackServiceV50",
        "client_login_id": "PHARMA01",
        "user_id": "SITE0001",
        "password": PASSWORD,
        "software_supplier": "Example LGO",
        "cert_file": str(pki.client_cert),
        "key_file": str(pki.client_key),
        "ca_file": str(pki.ca_file),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


SECRETS = ("password", "key_password", "pkcs12_password")
FILES = ("cert_file", "key_file", "pkcs12_file", "ca_file")


def build(values: dict[str, Any]) -> ArvatoConfig:
    """The class from plain values, as the ``[nmvs]`` loader hands them over (secrets read,
    file names made paths): unknown keys and types are the loader's to refuse."""
    return ArvatoConfig(
        **{
            name: Secret(value) if name in SECRETS else Path(value) if name in FILES else value
            for name, value in values.items()
        }
    )


def test_a_complete_table_loads(pki: Pki) -> None:
    config = build(table(pki, sub_user_id="till-2", language="fra"))
    assert config.password == Secret(PASSWORD)
    assert config.cert_file == pki.client_cert
    assert config.sub_user_id == "till-2"
    assert config.bulk_url == "https://127.0.0.1:8443/WS_BULK_TRANSACTIONS_V1/BulkServiceV50"
    assert (config.connect_timeout, config.read_timeout) == (2.0, 6.0)
    assert config.software_version == "0.1.0"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"endpoint": "ftp://x/y"}, "endpoint", "'ftp://x/y' is not an http(s) URL"),
        ({"client_login_id": "PHARMA 01"}, "client_login_id", "must be 1-20 characters"),
        ({"user_id": "abc"}, "user_id", "must be 4-20 characters A-Z a-z 0-9 -"),
        ({"password": "short"}, "password", "must be 8-60 characters"),
        ({"software_version": "1.2.0-rc1+g1a2b"}, "software_version",
         "must be 1-10 characters (NMVS schema), '1.2.0-rc1+g1a2b' has 15"),
        ({"software_supplier": ""}, "software_supplier", "must be 1-255 characters"),
        ({"language": "en"}, "language", "must be 3 letters (ISO 639-3), not 'en'"),
        ({"read_timeout": 0}, "read_timeout", "must be a number of seconds in (0, 120]"),
        ({"max_connections": 0}, "max_connections", "must be an integer 1-100"),
        ({"cert_file": "/nonexistent/client.crt"}, "cert_file",
         "file not found: /nonexistent/client.crt"),
        ({"ca_file": "/nonexistent/ca.pem"}, "ca_file", "file not found"),
        ({"cert_file": None, "key_file": None}, "cert_file",
         "the NMVS requires a client certificate: set nmvs.cert_file or nmvs.pkcs12_file"),
        ({"pkcs12_file": "x.p12"}, "pkcs12_file",
         "give either nmvs.pkcs12_file or nmvs.cert_file/key_file"),
        ({"pkcs12_password": "x"}, "pkcs12_password", "set without nmvs.pkcs12_file"),
    ],
)  # fmt: skip
def test_every_error_names_the_field(
    pki: Pki, changes: dict[str, Any], field: str, message: str
) -> None:
    raw = table(pki)
    raw.update(changes)
    with pytest.raises(ArvatoConfigError) as caught:
        build({k: v for k, v in raw.items() if v is not None})
    assert caught.value.field == field
    key = f"nmvs.{RENAMED.get(field, field)}"
    assert caught.value.key == key
    assert str(caught.value) == f"{key}: {caught.value.problem}"
    assert message in caught.value.problem


def test_plain_http_needs_no_certificate(pki: Pki) -> None:
    config = build(table(pki, endpoint="http://127.0.0.1:1/x", cert_file=None, key_file=None))
    assert not config.uses_tls


def test_secrets_never_appear_in_text(pki: Pki) -> None:
    config = build(
        table(
            pki,
            key_file=str(pki.client_key_encrypted),
            key_password=KEY_PASSPHRASE,
        )
    )
    for text in (repr(config), str(config), f"{config.password}", str(config.credentials())):
        assert PASSWORD not in text
        assert KEY_PASSPHRASE not in text
    assert repr(config.password) == "Secret('***')"
    p12 = build(p12_table(pki, P12_PASSWORD))
    assert P12_PASSWORD not in repr(p12) + str(p12)


def test_pem_certificate_and_plain_key(pki: Pki) -> None:
    context = build(table(pki)).ssl_context()
    assert context.verify_mode.name == "CERT_REQUIRED"


def test_encrypted_key_with_its_passphrase(pki: Pki) -> None:
    config = build(table(pki, key_file=str(pki.client_key_encrypted), key_password=KEY_PASSPHRASE))
    config.ssl_context()


def test_wrong_key_passphrase_names_the_field_without_echoing_it(pki: Pki) -> None:
    config = build(
        table(pki, key_file=str(pki.client_key_encrypted), key_password="Wrong-Passphrase")
    )
    with pytest.raises(ArvatoConfigError) as caught:
        config.ssl_context()
    assert str(caught.value) == (
        "nmvs.key_password_file: this passphrase does not decrypt the private key in "
        f"{pki.client_key_encrypted}"
    )


def test_encrypted_key_without_passphrase(pki: Pki) -> None:
    config = build(table(pki, key_file=str(pki.client_key_encrypted)))
    with pytest.raises(ArvatoConfigError) as caught:
        config.ssl_context()
    assert str(caught.value) == (
        f"nmvs.key_password_file: the private key in {pki.client_key_encrypted} is encrypted: "
        "set this to a file holding its passphrase"
    )


def test_key_not_matching_the_certificate(pki: Pki) -> None:
    config = build(table(pki, key_file=str(pki.stranger_key)))
    with pytest.raises(ArvatoConfigError) as caught:
        config.ssl_context()
    assert caught.value.field == "key_file"


def p12_table(pki: Pki, password: str | None) -> dict[str, Any]:
    return table(
        pki,
        cert_file=None,
        key_file=None,
        pkcs12_file=str(pki.client_p12),
        pkcs12_password=password,
    )


def test_pkcs12_with_password_loads_without_writing_the_key(pki: Pki) -> None:
    before = set(os.listdir(tempfile.gettempdir()))
    config = build(p12_table(pki, P12_PASSWORD))
    context = config.ssl_context()
    assert context.verify_mode.name == "CERT_REQUIRED"
    assert set(os.listdir(tempfile.gettempdir())) == before
    certificate = config.client_certificate()
    assert certificate is not None
    assert "CN=PHARMA01" in certificate.subject.rfc4514_string()


def test_wrong_pkcs12_password_names_the_field(pki: Pki) -> None:
    config = build(p12_table(pki, "Wrong-P12-Password"))
    with pytest.raises(ArvatoConfigError) as caught:
        config.ssl_context()
    assert str(caught.value) == (
        f"nmvs.pkcs12_password_file: cannot open {pki.client_p12}: wrong password, or not PKCS#12"
    )


def test_a_file_that_is_not_pkcs12(pki: Pki, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.p12"
    bogus.write_bytes(b"not a keystore")
    config = build({**p12_table(pki, P12_PASSWORD), "pkcs12_file": str(bogus)})
    with pytest.raises(ArvatoConfigError) as caught:
        config.ssl_context()
    assert str(caught.value) == f"nmvs.pkcs12_file: {bogus} is not a PKCS#12 (.p12/.pfx) file"


def test_a_ca_file_that_holds_no_certificate(pki: Pki, tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("nothing here\n")
    with pytest.raises(ArvatoConfigError) as caught:
        build(table(pki, ca_file=str(bogus))).ssl_context()
    assert caught.value.field == "ca_file"


@pytest.mark.parametrize(
    ("field", "label", "problem"),
    [
        ("cert_file", "CERTIFICATE", "{} holds no PEM certificate"),  # named before the key
        ("key_file", "PRIVATE KEY", "cannot read the private key in {} (not a PEM key)"),
    ],
)
def test_pem_garbage_is_named_by_its_key(
    pki: Pki, tmp_path: Path, field: str, label: str, problem: str
) -> None:
    bogus = tmp_path / "garbage.pem"
    bogus.write_text(f"-----BEGIN {label}-----\ngarbage\n-----END {label}-----\n")
    config = build(table(pki, **{field: str(bogus)}))
    with pytest.raises(ArvatoConfigError) as caught:
        config.ssl_context()
    assert str(caught.value) == f"nmvs.{field}: {problem.format(bogus)}"


def test_a_passphrase_for_a_key_that_has_none(pki: Pki) -> None:
    config = build(table(pki, key_password=KEY_PASSPHRASE))
    with pytest.raises(ArvatoConfigError) as caught:
        config.ssl_context()
    assert str(caught.value) == (
        f"nmvs.key_password_file: set, but the private key in {pki.client_key} is not encrypted: "
        "remove it"
    )
