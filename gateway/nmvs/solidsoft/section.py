"""The ``[nmvs]`` section of the Solidsoft REST backend: its keys, how they are read, and the
checks a start makes (the TLS context is built once when a client certificate is set, an
expired one refused).

``url`` is the system's base URL: the API is ``<url>/api/`` and the token endpoint
``<url>/identity/connect/token`` unless ``api_url`` / ``token_url`` say otherwise (systems that
serve them on other hosts or ports)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.configfile import ConfigError, TableReader, credential_dirs
from gateway.nmvs.backend import NmvsBackend
from gateway.nmvs.secret import Secret
from gateway.nmvs.solidsoft.client import SolidsoftClient
from gateway.nmvs.solidsoft.config import (
    API_PATH,
    TOKEN_PATH,
    SolidsoftConfig,
    SolidsoftConfigError,
)
from gateway.nmvs.tls import ClientTls, TlsFileError

KEYS = (
    "url",
    "api_url",
    "token_url",
    "client_id",
    "client_secret_file",
    "location",
    "cert_file",
    "key_file",
    "key_password_file",
    "pkcs12_file",
    "pkcs12_password_file",
    "ca_file",
    "tls_max_version",
    "language",
    "connect_timeout",
    "read_timeout",
    "write_timeout",
    "pool_timeout",
    "total_timeout",
    "max_connections",
    "retries",
    "retry_wait_max",
    "backlog_endpoint",
)
# key → the systemd credential used when the key is absent (the unit loads these)
DEFAULT_CREDENTIALS = {
    "client_secret_file": "nmvs-client-secret",
    "cert_file": "nmvs-client.pem",
    "key_file": "nmvs-client.key",
}


def parse_section(r: TableReader, secrets: list[str]) -> SolidsoftConfig:
    """The ``[nmvs]`` section for this backend (its keys are :data:`KEYS`); every secret read
    is appended to ``secrets`` for the log redactor."""
    table = r.table
    base = r.http_url("url", None, "base URL of the national system")
    api_url = r.http_url("api_url", base + API_PATH, "URL of the API") + "/"
    token_url = r.http_url("token_url", base + TOKEN_PATH, "URL of the token endpoint")
    secret = r.secret("client_secret_file")
    if secret is None:
        raise r.fail(
            "client_secret_file",
            "required: a file holding the client secret (or the credential nmvs-client-secret "
            f"in {', '.join(map(str, credential_dirs()))})",
        )
    secrets.append(secret)
    tls: dict[str, Any] = {
        "cert_file": r.file("cert_file", when_absent="pkcs12_file" not in table),
        "pkcs12_file": r.file("pkcs12_file"),
        "ca_file": r.file("ca_file"),
        "tls_max_version": r.choice("tls_max_version", ("1.2", "1.3"), "1.2"),
    }
    tls["key_file"] = r.file(
        "key_file", when_absent="cert_file" not in table and bool(tls["cert_file"])
    )
    for key in ("key_password", "pkcs12_password"):
        value = r.secret(f"{key}_file")
        if value is not None:
            tls[key] = Secret(value)
            secrets.append(value)
    values: dict[str, Any] = {
        "api_url": api_url,
        "token_url": token_url,
        "client_id": r.required("client_id"),
        "client_secret": Secret(secret),
        "location": r.text("location"),
        "language": r.text("language", "en"),
        "max_connections": r.integer("max_connections", 8, 1, 100),
        "retries": r.integer("retries", 2, 0, 10),
        "retry_wait_max": r.number("retry_wait_max", 5.0, 0, 60),
        "backlog_endpoint": r.choice("backlog_endpoint", ("recovery", "bulk"), "recovery"),
    }
    for key, default in (
        ("connect_timeout", 2.0),
        ("read_timeout", 6.0),
        ("write_timeout", 6.0),
        ("pool_timeout", 1.0),
    ):
        values[key] = r.number(key, default, 0.001, 120)
    values["total_timeout"] = r.number("total_timeout", 15.0, 0.001, 300)
    try:
        client_tls = ClientTls(**tls)
        client_tls.check_fields()
        config = SolidsoftConfig(tls=client_tls, **values)
        if config.uses_tls:
            client_tls.check_usable(datetime.now(UTC))
    except TlsFileError as exc:
        raise ConfigError(r.path, f"nmvs.{exc.field}", exc.problem) from None
    except SolidsoftConfigError as exc:
        raise ConfigError(r.path, exc.key, exc.problem) from None
    return config


def open_client(config: SolidsoftConfig, path: Path) -> NmvsBackend:
    try:
        return SolidsoftClient(config)
    except SolidsoftConfigError as exc:
        raise ConfigError(path, exc.key, exc.problem) from None
