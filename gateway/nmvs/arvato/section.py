"""The ``[nmvs]`` section of the Arvato SOAP backend: its keys, how they are read, and the
checks a start makes (the TLS context is built once, an expired client certificate refused).

The URLs are base URLs (scheme, host, port): the service paths are the backend's own. The bulk
service's host is derived from the single-pack one when it follows the standard names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gateway.configfile import ConfigError, TableReader, credential_dirs
from gateway.nmvs.arvato.client import ArvatoClient
from gateway.nmvs.arvato.config import ArvatoConfig, ArvatoConfigError, named_by_key
from gateway.nmvs.arvato.soap import BULK_PATH, SINGLE_PACK_PATH
from gateway.nmvs.backend import NmvsBackend
from gateway.nmvs.secret import Secret

KEYS = (
    "url",
    "client_login_id",
    "user_id",
    "password_file",
    "sub_user_id",
    "software_supplier",
    "cert_file",
    "key_file",
    "key_password_file",
    "pkcs12_file",
    "pkcs12_password_file",
    "ca_file",
    "bulk_url",
    "tls_max_version",
    "connect_timeout",
    "read_timeout",
    "write_timeout",
    "pool_timeout",
    "total_timeout",
    "max_connections",
    "language",
)
# key → the systemd credential used when the key is absent (the unit loads these)
DEFAULT_CREDENTIALS = {
    "password_file": "nmvs-password",
    "cert_file": "nmvs-client.pem",
    "key_file": "nmvs-client.key",
}

# The standard NMVS host names: the bulk service runs on its own host and port next to the
# single-pack one. Other markets' names come from the NMVO: set nmvs.bulk_url.
SINGLE_HOST_PREFIX = "ws-single-transactions-"
BULK_HOST_PREFIX = "ws-bulk-transactions-"
SINGLE_PORT, BULK_PORT = 8443, 8445


def parse_section(r: TableReader, secrets: list[str]) -> ArvatoConfig:
    """The ``[nmvs]`` section for this backend (its keys are :data:`KEYS`); every secret read
    is appended to ``secrets`` for the log redactor."""
    table = r.table
    url = r.http_url("url", None, "base URL of the single-pack host")
    bulk_url = r.http_url("bulk_url", default_bulk_url(url), "base URL of the bulk host")
    password = r.secret("password_file")
    if password is None:
        raise r.fail(
            "password_file",
            "required: a file holding the NMVS password (or the credential nmvs-password in "
            f"{', '.join(map(str, credential_dirs()))})",
        )
    values: dict[str, Any] = {
        "endpoint": url + SINGLE_PACK_PATH,
        "bulk_endpoint": bulk_url + BULK_PATH,
        "client_login_id": r.required("client_login_id"),
        "user_id": r.required("user_id"),
        "password": Secret(password),
        "software_supplier": r.text("software_supplier", "nmvs-gateway"),
        "tls_max_version": r.choice("tls_max_version", ("1.2", "1.3"), "1.2"),
    }
    secrets.append(password)
    for key in ("key_password", "pkcs12_password"):
        value = r.secret(f"{key}_file")
        if value is not None:
            values[key] = Secret(value)
            secrets.append(value)
    https = urlsplit(url).scheme == "https"
    cert_file = r.file("cert_file", when_absent=https and "pkcs12_file" not in table)
    files = {
        "cert_file": cert_file,
        # the default key goes with the default certificate only
        "key_file": r.file("key_file", when_absent="cert_file" not in table and bool(cert_file)),
        "pkcs12_file": r.file("pkcs12_file"),
        "ca_file": r.file("ca_file"),
    }
    values |= {key: file for key, file in files.items() if file is not None}
    for key in ("sub_user_id", "language"):
        if key in table:
            values[key] = r.text(key)
    for key in (
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "pool_timeout",
        "total_timeout",
    ):
        if key in table:
            values[key] = r.number(key, 0, 0.001, 120)
    if "max_connections" in table:
        values["max_connections"] = r.integer("max_connections", 8, 1, 100)
    try:
        config = ArvatoConfig(**values)
        if config.uses_tls:
            with named_by_key():
                config.tls.check_usable(datetime.now(UTC))
    except ArvatoConfigError as exc:
        raise config_error(r.path, exc) from None
    return config


def config_error(path: Path, exc: ArvatoConfigError) -> ConfigError:
    """``exc`` as a :class:`ConfigError` of ``path`` (it already names the ``[nmvs]`` key)."""
    return ConfigError(path, exc.key, exc.problem)


def default_bulk_url(url: str) -> str:
    """The bulk service's base URL for the single-pack base ``url``: the standard bulk host and
    port for a standard single-pack host (``ws-single-transactions-<env>…:8443`` →
    ``ws-bulk-transactions-<env>…:8445``), else ``url`` itself (one host serves both, like the
    simulator or a proxy)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host.startswith(SINGLE_HOST_PREFIX):
        return url
    netloc = BULK_HOST_PREFIX + host.removeprefix(SINGLE_HOST_PREFIX)
    port = BULK_PORT if parts.port == SINGLE_PORT else parts.port
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def open_client(config: ArvatoConfig, path: Path) -> NmvsBackend:
    """The client for ``config``; a certificate or key file changed since the configuration
    was read is named as the loader names it."""
    try:
        return ArvatoClient(config)
    except ArvatoConfigError as exc:
        raise config_error(path, exc) from None
