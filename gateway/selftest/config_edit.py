"""Writing calibration results into one ``[[scanner]]`` table of the TOML file, as a text edit.

Only the lines of the keys that change are touched: comments, blank lines, key order and every
other table stay as the technician wrote them (a trailing comment on a replaced line is kept).
The edited text is parsed again and must equal the original document with exactly the intended
changes, and its scanners must pass the daemon's validation; otherwise nothing is written and
:class:`ConfigEditError` says what to change by hand. The file is replaced atomically.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.capture.config import parse_scanners
from gateway.configfile import ConfigError

_HEADER = re.compile(r"^\s*\[")
_SCANNER_HEADER = re.compile(r"^\s*\[\[\s*scanner\s*\]\]\s*(#.*)?$")
_VALUE = r"""("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|\{[^{}\n]*\}|\[[^\[\]\n]*\]|[^#\s"'{\[][^#\s]*)"""


class ConfigEditError(Exception):
    """The file could not be updated safely; the message says what to do instead."""


def toml_value(value: Any) -> str:
    """A TOML literal for a string, bool, int or a table of strings (inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        out = []
        for char in value:
            if char in '"\\':
                out.append("\\" + char)
            elif ord(char) < 0x20 or ord(char) == 0x7F:
                out.append(f"\\u{ord(char):04X}")
            else:
                out.append(char)
        return '"' + "".join(out) + '"'
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _scanner_index(data: Mapping[str, Any], scanner_id: str) -> int:
    tables = data.get("scanner", [])
    for index, table in enumerate(tables if isinstance(tables, list) else []):
        if isinstance(table, Mapping) and table.get("id") == scanner_id:
            return index
    raise ConfigEditError(f"no [[scanner]] table with id = {scanner_id!r} in the configuration")


def update_scanner(text: str, scanner_id: str, changes: Mapping[str, Any]) -> str:
    """``text`` with the ``[[scanner]]`` table of ``scanner_id`` updated: each key of ``changes``
    set to its value, or removed when the value is None."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigEditError(f"the configuration is not valid TOML: {exc}") from None
    index = _scanner_index(data, scanner_id)
    lines = text.splitlines(keepends=True)
    headers = [i for i, line in enumerate(lines) if _SCANNER_HEADER.match(line)]
    if len(headers) != len(data["scanner"]):
        raise ConfigEditError(
            "the [[scanner]] tables are not written as plain [[scanner]] headers; "
            f"edit the table of {scanner_id!r} by hand"
        )
    start = headers[index]
    end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    region = lines[start:end]
    for key, value in changes.items():
        region = _set_key(region, key, value)
    edited = "".join([*lines[:start], *region, *lines[end:]])
    _verify(edited, data, index, changes, scanner_id)
    return edited


def _set_key(region: list[str], key: str, value: Any) -> list[str]:
    pattern = re.compile(rf"^(\s*){re.escape(key)}\s*=\s*{_VALUE}\s*(#.*)?$")
    for position, line in enumerate(region):
        if not re.match(rf"^\s*{re.escape(key)}\s*=", line):
            continue
        found = pattern.match(line.rstrip("\r\n"))
        if found is None:
            raise ConfigEditError(f"the value of {key} spans several lines; edit it by hand")
        if value is None:
            return [*region[:position], *region[position + 1 :]]
        comment = f"  {found[3]}" if found[3] else ""
        newline = line[len(line.rstrip("\r\n")) :] or "\n"
        replaced = f"{found[1]}{key} = {toml_value(value)}{comment}{newline}"
        return [*region[:position], replaced, *region[position + 1 :]]
    if value is None:
        return region
    last = max(
        (i for i, line in enumerate(region) if line.strip() and not line.lstrip().startswith("#")),
        default=0,
    )
    if not region[last].endswith("\n"):
        region = [*region[:last], region[last] + "\n", *region[last + 1 :]]
    return [*region[: last + 1], f"{key} = {toml_value(value)}\n", *region[last + 1 :]]


def _verify(
    edited: str, before: dict[str, Any], index: int, changes: Mapping[str, Any], scanner_id: str
) -> None:
    try:
        after = tomllib.loads(edited)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigEditError(
            f"updating the table of {scanner_id!r} would break the file ({exc}); edit it by hand"
        ) from None
    expected_table = dict(before["scanner"][index])
    for key, value in changes.items():
        if value is None:
            expected_table.pop(key, None)
        else:
            expected_table[key] = dict(value) if isinstance(value, Mapping) else value
    expected = {**before, "scanner": list(before["scanner"])}
    expected["scanner"][index] = expected_table
    if after != expected:
        raise ConfigEditError(
            f"the table of {scanner_id!r} is written in a form this tool cannot edit safely "
            "(dotted keys or a sub-table?); set the printed keys by hand"
        )
    try:
        parse_scanners(after["scanner"])
    except ConfigError as exc:
        raise ConfigEditError(f"the calibrated settings are not accepted: {exc}") from None


def write_scanner_settings(path: Path, scanner_id: str, changes: Mapping[str, Any]) -> None:
    """Update ``path`` in place (atomically, keeping its permissions)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigEditError(f"cannot read {path}: {exc.strerror}") from None
    edited = update_scanner(text, scanner_id, changes)
    if edited == text:
        return
    mode = path.stat().st_mode & 0o7777
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(edited)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as exc:
        raise ConfigEditError(
            f"cannot write {path} ({exc.strerror}): run as a user who may edit it, or set the "
            "printed keys by hand"
        ) from None
