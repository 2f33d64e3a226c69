"""The daemon's TOML configuration: ``[gateway] [mqtt] [nmvs] [policy] [[scanner]]``.

Every setting has a default except what only the pharmacy knows (its NMVS identifiers and
password). Validation happens once at start; the first problem is raised as :class:`ConfigError`
whose message names the file and the key (``gateway.toml: mqtt.port: must be …``), and the
daemon exits with 78 (``EX_CONFIG``) so systemd does not restart it in a loop.

Secrets are never read from the TOML. Every ``*_file`` key (passwords, certificates, keys, CA
bundles) is found by one rule (:meth:`_Reader.locate`): an absolute path is that file; a
relative name is the systemd credential of that name when there is one, else the file next to
the configuration; without the key, the credentials of :data:`DEFAULT_CREDENTIALS` are used when
present. Credentials are in ``$CREDENTIALS_DIRECTORY`` (the service, from ``LoadCredential=``);
without it (run by hand: ``sudo nmvs-gateway selftest``), in the credstore folders the unit's
``LoadCredential=`` reads them from (:func:`credential_dirs`). ``config/gateway.example.toml``
documents every key.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gateway.capture.config import ConfigError as ScannerConfigError
from gateway.capture.config import ScannerConfig, parse_scanners
from gateway.engine.model import Settings as EngineSettings
from gateway.engine.model import SettingsError
from gateway.mqtt.bridge import MqttSettings, TlsSetupError, tls_context
from gateway.mqtt.contract import MAX_REQUEST_BYTES
from gateway.nmvs.arvato import ArvatoConfig, ArvatoConfigError, Secret
from gateway.nmvs.arvato.soap import BULK_PATH, SINGLE_PACK_PATH

EXIT_CONFIG = 78
DEFAULT_STATE_DIR = "/var/lib/nmvs-gateway"
NMVS_BACKENDS = ("arvato-soap",)
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")
DAY = 86_400
# gateway.id goes into MQTT topics and client ids: ASCII only (no look-alike letters)
GATEWAY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")

SECTIONS = ("gateway", "mqtt", "nmvs", "policy", "scanner")
GATEWAY_KEYS = ("id", "state_dir", "log_level", "log_format", "health_interval")
MQTT_KEYS = (
    "url",
    "base_topic",
    "client_id",
    "username",
    "password_file",
    "ca_file",
    "cert_file",
    "key_file",
    "check_hostname",
    "protocol",
    "keepalive",
    "session_expiry",
    "reconnect_max_delay",
    "max_request_bytes",
)
NMVS_KEYS = (
    "backend",
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
# [policy] is the engine's tunables, named as its Settings fields (seconds for durations).
POLICY_KEYS = tuple(f.name for f in fields(EngineSettings) if f.name != "nmvs_user")
SECRET_KEYS = ("password", "key_password", "pkcs12_password")
# [policy] integers are at least 1; their upper bounds (the engine checks the rest).
POLICY_INT_MAX = {"concurrency": 256, "bulk_in_flight": 256}
POLICY_INT_MAX_DEFAULT = 100_000

# Where systemd's LoadCredential= (no path) reads credentials from, in its order.
SYSTEM_CREDSTORES = (Path("/etc/credstore"), Path("/run/credstore"), Path("/usr/lib/credstore"))
# "section.key" → the credential used when the key is absent (the unit loads these).
DEFAULT_CREDENTIALS = {
    "nmvs.password_file": "nmvs-password",
    "nmvs.cert_file": "nmvs-client.pem",
    "nmvs.key_file": "nmvs-client.key",
    "mqtt.password_file": "mqtt-password",
    "mqtt.cert_file": "mqtt-client.pem",
    "mqtt.key_file": "mqtt-client.key",
}

# The standard NMVS host names: the bulk service runs on its own host and port next to the
# single-pack one. Other markets' names come from the NMVO: set nmvs.bulk_url.
SINGLE_HOST_PREFIX = "ws-single-transactions-"
BULK_HOST_PREFIX = "ws-bulk-transactions-"
SINGLE_PORT, BULK_PORT = 8443, 8445


class ConfigError(Exception):
    """A configuration problem; ``str()`` is the whole message for the operator."""

    def __init__(self, path: Path, key: str | None, message: str) -> None:
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.key = key


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    id: str
    state_dir: Path
    log_level: str = "info"
    log_format: str = "auto"
    health_interval: float = 30.0


@dataclass(frozen=True, slots=True)
class Config:
    """The validated configuration of one daemon."""

    path: Path
    gateway: GatewaySettings
    base_topic: str
    max_request_bytes: int
    mqtt: MqttSettings
    nmvs: ArvatoConfig
    engine: EngineSettings
    scanners: tuple[ScannerConfig, ...]
    # every secret value, so the log redactor can mask it anywhere
    secrets: tuple[str, ...] = field(repr=False)


class _Reader:
    """Typed access to one table, raising :class:`ConfigError` with ``section.key``."""

    def __init__(self, path: Path, section: str, table: Mapping[str, Any], known: tuple[str, ...]):
        self.path = path
        self.section = section
        self.table = table
        for key in table:
            if key in SECRET_KEYS:
                raise self.fail(
                    key,
                    "secrets are never read from the configuration file: write it to a file "
                    f"readable only by the gateway and set {section}.{key}_file",
                )
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise self.fail(key, f"unknown setting{hint}")

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.path, f"{self.section}.{key}", message)

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.table.get(key, default)
        if value is None:
            if required:
                raise self.fail(key, "required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, not {_show(value)}")
        return value

    def required(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.table.get(key, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, not {_show(value)}")
        return str(value)

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.table.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise self.fail(key, f"must be a number from {low:g} to {high:g}, not {_show(value)}")
        return float(value)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"must be an integer from {low} to {high}, not {_show(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {_show(value)}")
        return value

    def locate(self, key: str, when_absent: bool = True) -> Path | None:
        """The file named by ``key``, by the module's one rule; ``None`` when neither the key
        nor (if ``when_absent``) its default credential is there."""
        name = self.text(key)
        if name is None:
            credential = DEFAULT_CREDENTIALS.get(f"{self.section}.{key}")
            return find_credential(credential) if credential and when_absent else None
        return find_credential(name) or self.resolve(name)

    def file(self, key: str, when_absent: bool = True) -> Path | None:
        path = self.locate(key, when_absent)
        if path is not None and not path.is_file():
            raise self.fail(key, f"file not found: {path}{self._not_a_credential(key)}")
        return path

    def _not_a_credential(self, key: str) -> str:
        name = self.table[key]
        if "/" in name:  # a path, never a credential name
            return ""
        return f" (nor a credential {name} in {', '.join(map(str, credential_dirs()))})"

    def resolve(self, name: str) -> Path:
        path = Path(name)
        if path.is_absolute():
            return path
        return self.path.parent / path

    def secret(self, key: str, when_absent: bool = True) -> str | None:
        """The secret in the file found for ``key`` (see :meth:`locate`)."""
        path = self.locate(key, when_absent)
        if path is None:
            return None
        try:
            value = path.read_text(encoding="utf-8")
        except OSError as exc:
            where = self._not_a_credential(key) if key in self.table else ""
            raise self.fail(key, f"cannot read {path}: {exc.strerror or exc}{where}") from None
        except UnicodeDecodeError:
            raise self.fail(key, f"{path} is not UTF-8 text") from None
        value = value.removesuffix("\n").removesuffix("\r")
        if not value:
            raise self.fail(key, f"{path} is empty")
        return value


def credential_dirs() -> tuple[Path, ...]:
    """Where credentials are: ``$CREDENTIALS_DIRECTORY`` in the service; run by hand (no such
    variable), the credstore folders the unit's ``LoadCredential=`` reads them from."""
    given = os.environ.get("CREDENTIALS_DIRECTORY")
    return (Path(given),) if given else SYSTEM_CREDSTORES


def find_credential(name: str) -> Path | None:
    """The credential file ``name`` (a plain file name), or ``None``."""
    if "/" in name:
        return None
    for directory in credential_dirs():
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


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


def _show(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def load_config(path: Path | str) -> Config:
    """Read and validate ``path``; raises :class:`ConfigError` naming the first problem."""
    path = Path(path)
    return parse_config(path, _read(path))


def load_gateway_settings(path: Path | str) -> GatewaySettings:
    """Only the ``[gateway]`` table of ``path`` (the state directory…), for the commands that
    read the database and need no secret (``report``, ``status``)."""
    path = Path(path)
    data = _read(path)
    _check_sections(path, data)
    return _gateway(path, data.get("gateway", {}))


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            path, None, f"cannot read the configuration: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, "the configuration is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"not valid TOML: {exc}") from None


def _check_sections(path: Path, data: Mapping[str, Any]) -> None:
    for name, value in data.items():
        if name not in SECTIONS:
            close = difflib.get_close_matches(name, SECTIONS, n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else ""
            raise ConfigError(path, name, f"unknown section{hint}")
        expected = list if name == "scanner" else dict
        if not isinstance(value, expected):
            shape = "[[scanner]] tables" if name == "scanner" else f"a [{name}] table"
            raise ConfigError(path, name, f"must be {shape}")


def parse_config(path: Path, data: Mapping[str, Any]) -> Config:
    _check_sections(path, data)
    gateway = _gateway(path, data.get("gateway", {}))
    secrets: list[str] = []
    mqtt, base_topic, max_request_bytes = _mqtt(path, data.get("mqtt", {}), gateway.id, secrets)
    if "nmvs" not in data:
        raise ConfigError(path, "nmvs", "required: the [nmvs] section (url, client_login_id, …)")
    nmvs = _nmvs(path, data["nmvs"], secrets)
    engine = _policy(path, data.get("policy", {}), nmvs.user_id)
    try:
        scanners = parse_scanners(data.get("scanner", []))
    except ScannerConfigError as exc:
        raise ConfigError(path, None, str(exc)) from None
    return Config(
        path=path,
        gateway=gateway,
        base_topic=base_topic,
        max_request_bytes=max_request_bytes,
        mqtt=mqtt,
        nmvs=nmvs,
        engine=engine,
        scanners=scanners,
        secrets=tuple(secrets),
    )


def _gateway(path: Path, table: Mapping[str, Any]) -> GatewaySettings:
    r = _Reader(path, "gateway", table, GATEWAY_KEYS)
    gateway_id = r.required("id")
    if not GATEWAY_ID.fullmatch(gateway_id):
        raise r.fail(
            "id",
            f"use at most 64 ASCII letters, digits, '-', '_' or '.' (it is part of the MQTT "
            f"topics), not {gateway_id!r}",
        )
    state_text = r.text("state_dir", os.environ.get("STATE_DIRECTORY", DEFAULT_STATE_DIR))
    assert state_text is not None
    state_dir = r.resolve(state_text)
    if state_dir.exists() and not state_dir.is_dir():
        raise r.fail(
            "state_dir",
            f"{state_dir} is not a directory: move it aside, or set gateway.state_dir to a "
            "directory",
        )
    return GatewaySettings(
        id=gateway_id,
        state_dir=state_dir,
        log_level=r.choice("log_level", LOG_LEVELS, "info"),
        log_format=r.choice("log_format", LOG_FORMATS, "auto"),
        health_interval=r.number("health_interval", 30.0, 1.0, 3600.0),
    )


def _mqtt(
    path: Path, table: Mapping[str, Any], gateway_id: str, secrets: list[str]
) -> tuple[MqttSettings, str, int]:
    r = _Reader(path, "mqtt", table, MQTT_KEYS)
    url = r.text("url", "mqtt://127.0.0.1:1883")
    assert url is not None
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise r.fail("url", f"must look like mqtt://host:1883 or mqtts://host:8883, not {url!r}")
    if parts.password is not None or parts.username is not None:
        raise r.fail(
            "url", "put no user or password in the URL: use mqtt.username and mqtt.password_file"
        )
    if parts.path not in ("", "/"):
        raise r.fail("url", "must not have a path; the topics are set by mqtt.base_topic")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise r.fail("url", f"the port in {url!r} is not a number from 1 to 65535") from None
    base_topic = r.text("base_topic", f"nmvs/{gateway_id}")
    assert base_topic is not None
    if (
        any(c in base_topic for c in "+#\x00")
        or base_topic.startswith("/")
        or base_topic.endswith("/")
    ):
        raise r.fail("base_topic", "must not contain + or # nor start or end with /")
    tls = parts.scheme == "mqtts"
    for key in ("ca_file", "cert_file", "key_file"):
        if key in table and not tls:
            raise r.fail(key, "set only with an mqtts:// url")
    cert_file = r.file("cert_file", when_absent=tls)
    # the default key goes with the default certificate only
    key_file = r.file("key_file", when_absent="cert_file" not in table and cert_file is not None)
    if key_file is not None and cert_file is None:
        raise r.fail("key_file", "set but mqtt.cert_file is missing")
    username = r.text("username")
    password = r.secret("password_file", when_absent=username is not None)
    if password is not None:
        if username is None:
            raise r.fail("password_file", "a password needs mqtt.username")
        secrets.append(password)
    client_id = r.text("client_id", f"nmvs-gateway-{gateway_id}")
    assert client_id is not None
    settings = MqttSettings(
        host=parts.hostname,
        port=port,
        client_id=client_id,
        tls=tls,
        ca_file=r.file("ca_file"),
        cert_file=cert_file,
        key_file=key_file,
        check_hostname=r.boolean("check_hostname", True),
        username=username,
        password=password,
        protocol=r.choice("protocol", ("auto", "5", "3.1.1"), "auto"),  # type: ignore[arg-type]
        keepalive=r.integer("keepalive", 30, 5, 3600),
        session_expiry=r.integer("session_expiry", 7 * DAY, DAY, 365 * DAY),
        reconnect_max_delay=r.number("reconnect_max_delay", 30.0, 1.0, 600.0),
    )
    max_bytes = r.integer("max_request_bytes", MAX_REQUEST_BYTES, 1024, 1024 * 1024)
    if tls:
        _check_mqtt_tls(r, settings)
    return settings, base_topic, max_bytes


def _check_mqtt_tls(r: _Reader, settings: MqttSettings) -> None:
    """Load the TLS material now, so a bad file is a configuration error (``--check`` too)."""
    try:
        tls_context(replace(settings, cert_file=None, key_file=None))
    except TlsSetupError as exc:
        raise r.fail("ca_file", str(exc)) from None
    try:
        tls_context(settings)
    except TlsSetupError as exc:
        raise r.fail("cert_file", str(exc)) from None


def _nmvs(path: Path, table: Mapping[str, Any], secrets: list[str]) -> ArvatoConfig:
    r = _Reader(path, "nmvs", table, NMVS_KEYS)
    r.choice("backend", NMVS_BACKENDS, "arvato-soap")
    url = _base_url(r, "url", r.required("url"), "single-pack")
    bulk_url = _base_url(r, "bulk_url", r.text("bulk_url", default_bulk_url(url)), "bulk")
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
            check_nmvs_tls(config, datetime.now(UTC))
    except ArvatoConfigError as exc:
        raise nmvs_config_error(path, exc) from None
    return config


def nmvs_config_error(path: Path, exc: ArvatoConfigError) -> ConfigError:
    """``exc`` as a :class:`ConfigError` of ``path`` (it already names the ``[nmvs]`` key)."""
    return ConfigError(path, exc.key, exc.problem)


def check_nmvs_tls(config: ArvatoConfig, now: datetime) -> None:
    """Build the NMVS TLS context once (every file, key and password is read) and refuse an
    expired client certificate: the NMVS would refuse it, only a new one helps. A certificate
    not yet valid is let through: at boot the clock may still be wrong (the client refuses to
    send with it, saying so, until the clock is right)."""
    config.ssl_context()
    certificate = config.client_certificate()
    if certificate is not None and now > certificate.not_valid_after_utc:
        field_name = "pkcs12_file" if config.pkcs12_file is not None else "cert_file"
        raise ArvatoConfigError(
            field_name,
            f"the client certificate in {getattr(config, field_name)} expired on "
            f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: install the new one "
            "your NMVS issued",
        )


def _base_url(r: _Reader, key: str, url: str | None, service: str) -> str:
    assert url is not None
    url = url.rstrip("/")
    parts = urlsplit(url)
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number from 1 to 65535
        valid = False
    if not valid:
        raise r.fail(key, f"must be the http(s) base URL of the {service} host, not {url!r}")
    return url


def _policy(path: Path, table: Mapping[str, Any], nmvs_user: str) -> EngineSettings:
    r = _Reader(path, "policy", table, POLICY_KEYS)
    values: dict[str, Any] = {"nmvs_user": nmvs_user}
    defaults = EngineSettings(nmvs_user=nmvs_user)
    for key in POLICY_KEYS:
        if key not in table:
            continue
        default = getattr(defaults, key)
        if key == "on_scan":
            values[key] = r.choice(key, ("verify", "dispense", "none"), default)
        elif isinstance(default, bool):
            values[key] = r.boolean(key, default)
        elif isinstance(default, int):
            values[key] = r.integer(
                key, default, 1, POLICY_INT_MAX.get(key, POLICY_INT_MAX_DEFAULT)
            )
        else:
            values[key] = r.number(key, default, 0.0, 365.0 * DAY)
    try:
        return EngineSettings(**values)
    except SettingsError as exc:  # rules across fields, e.g. bulk_min_group ≤ bulk_max_group
        raise r.fail(exc.field, str(exc).split(": ", 1)[-1]) from None
