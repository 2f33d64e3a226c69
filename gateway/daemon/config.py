"""The daemon's TOML configuration: ``[gateway] [mqtt] [nmvs] [policy] [[scanner]]``.

Every setting has a default except what only the pharmacy knows (its NMVS identifiers and
password). Validation happens once at start; the first problem is raised as :class:`ConfigError`
whose message names the file and the key (``gateway.toml: mqtt.port: must be …``), and the
daemon exits with 78 (``EX_CONFIG``) so systemd does not restart it in a loop.

Secrets are never read from the TOML; every ``*_file`` key finds its file or systemd credential
by the rule of :mod:`gateway.configfile`. The ``[nmvs]`` section belongs to the backend its
``backend`` key names (:mod:`gateway.nmvs.registry`). ``config/gateway.example.toml`` documents
every key.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.capture.config import ScannerConfig, parse_scanners
from gateway.configfile import ConfigError, TableReader, show
from gateway.engine.model import Settings as EngineSettings
from gateway.engine.model import SettingsError
from gateway.mqtt.bridge import MqttSettings, TlsSetupError, tls_context
from gateway.mqtt.contract import MAX_REQUEST_BYTES
from gateway.nmvs import registry
from gateway.nmvs.backend import NmvsBackend

EXIT_CONFIG = 78
DEFAULT_STATE_DIR = "/var/lib/nmvs-gateway"
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
# [policy] is the engine's tunables, named as its Settings fields (seconds for durations).
POLICY_KEYS = tuple(f.name for f in fields(EngineSettings) if f.name != "nmvs_user")
# [policy] integers are at least 1; their upper bounds (the engine checks the rest).
POLICY_INT_MAX = {"concurrency": 256, "bulk_in_flight": 256}
POLICY_INT_MAX_DEFAULT = 100_000

# "section.key" → the credential used when the key is absent (the unit loads these)
MQTT_CREDENTIALS = {
    "password_file": "mqtt-password",
    "cert_file": "mqtt-client.pem",
    "key_file": "mqtt-client.key",
}
DEFAULT_CREDENTIALS = {
    **{
        f"nmvs.{key}": name
        for kind in registry.BACKENDS.values()
        for key, name in kind.default_credentials.items()
    },
    **{f"mqtt.{key}": name for key, name in MQTT_CREDENTIALS.items()},
}


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
    nmvs_backend: str  # a name in gateway.nmvs.registry.BACKENDS
    nmvs: registry.BackendSettings  # that backend's own settings class
    engine: EngineSettings
    scanners: tuple[ScannerConfig, ...]
    # every secret value, so the log redactor can mask it anywhere
    secrets: tuple[str, ...] = field(repr=False)


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
    backend, nmvs = _nmvs(path, data["nmvs"], secrets)
    engine = _policy(path, data.get("policy", {}), nmvs.undo_owner)
    try:
        scanners = parse_scanners(data.get("scanner", []))
    except ConfigError as exc:
        raise exc.in_file(path) from None
    return Config(
        path=path,
        gateway=gateway,
        base_topic=base_topic,
        max_request_bytes=max_request_bytes,
        mqtt=mqtt,
        nmvs_backend=backend.name,
        nmvs=nmvs,
        engine=engine,
        scanners=scanners,
        secrets=tuple(secrets),
    )


def _gateway(path: Path, table: Mapping[str, Any]) -> GatewaySettings:
    r = TableReader(path, "gateway", table, GATEWAY_KEYS)
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
    r = TableReader(path, "mqtt", table, MQTT_KEYS, MQTT_CREDENTIALS)
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


def _check_mqtt_tls(r: TableReader, settings: MqttSettings) -> None:
    """Load the TLS material now, so a bad file is a configuration error (``--check`` too)."""
    try:
        tls_context(replace(settings, cert_file=None, key_file=None))
    except TlsSetupError as exc:
        raise r.fail("ca_file", str(exc)) from None
    try:
        tls_context(settings)
    except TlsSetupError as exc:
        raise r.fail("cert_file", str(exc)) from None


def _nmvs(
    path: Path, table: Mapping[str, Any], secrets: list[str]
) -> tuple[registry.BackendKind, Any]:
    """The ``[nmvs]`` section, read by the backend its ``backend`` key names."""
    name = table.get("backend", registry.DEFAULT)
    kind = registry.BACKENDS.get(name) if isinstance(name, str) else None
    if kind is None:
        names = ", ".join(registry.BACKENDS)
        raise ConfigError(path, "nmvs.backend", f"must be one of {names}, not {show(name)}")
    reader = TableReader(path, "nmvs", table, ("backend", *kind.keys), kind.default_credentials)
    return kind, kind.parse(reader, secrets)


def open_backend(config: Config) -> NmvsBackend:
    """The configured NMVS backend (a file changed since the load is named as a ConfigError)."""
    return registry.BACKENDS[config.nmvs_backend].open(config.nmvs, config.path)


def _policy(path: Path, table: Mapping[str, Any], nmvs_user: str) -> EngineSettings:
    r = TableReader(path, "policy", table, POLICY_KEYS)
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
