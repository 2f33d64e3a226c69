"""The TOML configuration file's shared parts: :class:`ConfigError` (the one error every owner
of a section raises, naming the file and ``section.key``), :class:`TableReader` (typed access
to one section) and how ``*_file`` keys find their file or systemd credential.

Each owner of a section reads it with a :class:`TableReader`: the daemon its own sections, each
NMVS backend its ``[nmvs]`` (:mod:`gateway.nmvs.registry`). The rule for files: an absolute
path is that file; a relative name is the systemd credential of that name when there is one,
else the file next to the configuration; without the key, the owner's default credential for
it is used when present. Credentials are in ``$CREDENTIALS_DIRECTORY`` (the service, from
``LoadCredential=``); without it (run by hand: ``sudo nmvs-gateway selftest``), in the
credstore folders the unit's ``LoadCredential=`` reads them from (:func:`credential_dirs`).
Secrets are never read from the TOML itself.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SECRET_KEYS = ("password", "key_password", "pkcs12_password", "client_secret")
# Where systemd's LoadCredential= (no path) reads credentials from, in its order.
SYSTEM_CREDSTORES = (Path("/etc/credstore"), Path("/run/credstore"), Path("/usr/lib/credstore"))


class ConfigError(ValueError):
    """A configuration problem; ``str()`` is the whole message for the operator:
    ``<file>: <section.key>: <problem>``. ``path`` is None for settings parsed without their
    file (a scanner list given on a command line, a test): :meth:`in_file` adds it."""

    def __init__(self, path: Path | None, key: str | None, message: str) -> None:
        where = "".join(f"{part}: " for part in (path, key) if part is not None)
        super().__init__(where + message)
        self.path = path
        self.key = key
        self.problem = message

    def in_file(self, path: Path) -> ConfigError:
        return ConfigError(path, self.key, self.problem)


class TableReader:
    """Typed access to one table, raising :class:`ConfigError` with ``section.key``."""

    def __init__(
        self,
        path: Path,
        section: str,
        table: Mapping[str, Any],
        known: tuple[str, ...],
        default_credentials: Mapping[str, str] | None = None,
    ):
        self.path = path
        self.section = section
        self.table = table
        self.default_credentials = default_credentials or {}
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
            raise self.fail(key, f"must be a non-empty string, not {show(value)}")
        return value

    def required(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.table.get(key, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, not {show(value)}")
        return str(value)

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.table.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise self.fail(key, f"must be a number from {low:g} to {high:g}, not {show(value)}")
        return float(value)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"must be an integer from {low} to {high}, not {show(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {show(value)}")
        return value

    def http_url(self, key: str, default: str | None, what: str) -> str:
        """An http(s) URL with a host (``default`` when absent; required when both are
        missing), without a trailing ``/``; ``what`` names the service in the error."""
        url = self.text(key, default, required=True)
        assert url is not None
        url = url.rstrip("/")
        parts = urlsplit(url)
        try:
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is not a number from 1 to 65535
            valid = False
        if not valid:
            raise self.fail(key, f"must be the http(s) {what}, not {url!r}")
        return url

    def locate(self, key: str, when_absent: bool = True) -> Path | None:
        """The file named by ``key``, by the module's one rule; ``None`` when neither the key
        nor (if ``when_absent``) its default credential is there."""
        name = self.text(key)
        if name is None:
            credential = self.default_credentials.get(key)
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


def show(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)
