"""Scanner configuration: one frozen ``ScannerConfig`` per ``[[scanner]]`` table of the daemon's TOML.

Parsing is strict: an unknown key, a wrong type or an impossible value raises ``ConfigError``
whose message names the key (``scanner[1].terminator: must be one of CR, LF, CRLF, EOT, none``)
so a technician can fix the file without reading code. Indexes are 0-based, as in the TOML array.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from evdev import ecodes

from gateway.capture.framing import HIDPOS_LAYOUTS
from gateway.codes.decode import DecodeSettings
from gateway.codes.gs1 import DEFAULT_SPLIT_AIS, SPLIT_AIS
from gateway.codes.keyboard import LAYOUTS, KeyboardSettings
from gateway.codes.validation import SET_82
from gateway.configfile import ConfigError


class Kind(StrEnum):
    EVDEV = "evdev"
    SERIAL = "serial"
    HIDPOS = "hidpos"


class Terminator(StrEnum):
    CR = "CR"
    LF = "LF"
    CRLF = "CRLF"
    EOT = "EOT"
    NONE = "none"

    @property
    def data(self) -> bytes:
        return _TERMINATOR_BYTES[self]


_TERMINATOR_BYTES = {
    Terminator.CR: b"\r",
    Terminator.LF: b"\n",
    Terminator.CRLF: b"\r\n",
    Terminator.EOT: b"\x04",
    Terminator.NONE: b"",
}


class MatchKind(StrEnum):
    PATH = "path"
    VIDPID = "vid:pid"
    NAME = "name"
    ANY = "any"


# Scanners type at ~1 ms per character; Bluetooth and HID POS reports come slower.
DEFAULT_GAP_MS = {Kind.EVDEV: 100, Kind.SERIAL: 50, Kind.HIDPOS: 100}

_VIDPID = re.compile(r"([0-9a-fA-F]{4}):([0-9a-fA-F]{4})")
MATCH_HELP = (
    'a device path such as "/dev/input/by-id/usb-…-event-kbd", "vid:pid" such as "0c2e:0b61", '
    '"name:Honeywell*", or "any" (any device that looks like a scanner)'
)


@dataclass(frozen=True, slots=True)
class DeviceMatch:
    """How an evdev scanner is recognised among the input devices."""

    kind: MatchKind
    text: str  # as written in the configuration
    vendor: int = 0
    product: int = 0
    pattern: str = ""  # path, or name glob (case-insensitive)

    @classmethod
    def parse(cls, text: str) -> DeviceMatch:
        if text == "any":
            return cls(MatchKind.ANY, text)
        if text.startswith("/"):
            return cls(MatchKind.PATH, text, pattern=text)
        if text.startswith("name:") and len(text) > len("name:"):
            return cls(MatchKind.NAME, text, pattern=text[len("name:") :])
        found = _VIDPID.fullmatch(text)
        if found:
            return cls(MatchKind.VIDPID, text, int(found[1], 16), int(found[2], 16))
        raise ValueError(f"must be {MATCH_HELP}")

    def matches_name(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name.casefold(), self.pattern.casefold())


@dataclass(frozen=True, slots=True)
class ScannerConfig:
    """One scanner: its identity, its transport and its own decode settings."""

    id: str
    kind: Kind
    index: int = 0
    counter: str | None = None
    # transport
    path: str | None = None  # serial port or hidraw node
    match: DeviceMatch | None = None  # evdev
    baud: int = 115200
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    terminator: Terminator = Terminator.CR
    gap_ms: int | None = None  # None: the kind's default (DEFAULT_GAP_MS)
    max_scan_bytes: int = 4096
    hidpos_layout: str = "pos"
    hidpos_enable: bool = False  # send Honeywell/Youjie feature report 254 = [0x01] on open
    grab_wait_ms: int = 2000  # evdev: how long to wait for keys to be released before grabbing
    decode: DecodeSettings = field(default_factory=DecodeSettings)

    @property
    def gap_s(self) -> float:
        """The inter-byte / inter-key gap that ends (or cuts short) a scan, in seconds."""
        return (self.gap_ms or DEFAULT_GAP_MS[self.kind]) / 1000

    @property
    def label(self) -> str:
        return f"scanner[{self.index}]"

    @classmethod
    def from_toml(cls, table: Mapping[str, Any], index: int) -> ScannerConfig:
        return _Parser(table, index).parse()


def parse_scanners(tables: Sequence[Mapping[str, Any]]) -> tuple[ScannerConfig, ...]:
    """All ``[[scanner]]`` tables, with ids checked for uniqueness."""
    configs = tuple(ScannerConfig.from_toml(table, i) for i, table in enumerate(tables))
    seen: dict[str, int] = {}
    for config in configs:
        if config.id in seen:
            raise ConfigError(
                None,
                f"{config.label}.id",
                f"{config.id!r} is already used by scanner[{seen[config.id]}]",
            )
        seen[config.id] = config.index
    return configs


_PARITIES = {
    "N": "N",
    "E": "E",
    "O": "O",
    "M": "M",
    "S": "S",
    "none": "N",
    "even": "E",
    "odd": "O",
    "mark": "M",
    "space": "S",
}
# Keys that mean something for some kinds only: a misplaced one is a misunderstanding to report.
_KEY_KINDS: dict[str, tuple[Kind, ...]] = {
    **dict.fromkeys(("baud", "bytesize", "parity", "stopbits", "terminator"), (Kind.SERIAL,)),
    **dict.fromkeys(("hidpos_layout", "hidpos_enable"), (Kind.HIDPOS,)),
    **dict.fromkeys(
        (
            "match",
            "layout",
            "auto_layouts",
            "suffix_keys",
            "function_keys",
            "caps_lock",
            "max_scan_keys",
            "grab_wait_ms",
        ),
        (Kind.EVDEV,),
    ),
    "path": (Kind.SERIAL, Kind.HIDPOS),
}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class _Parser:
    def __init__(self, table: Mapping[str, Any], index: int) -> None:
        self._table = table
        self._index = index
        self._used: set[str] = set()
        self._gap_ms = 0

    def fail(self, key: str, why: str) -> ConfigError:
        return ConfigError(None, f"scanner[{self._index}].{key}", why)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        self._used.add(key)
        if key not in self._table:
            return default
        value = self._table[key]
        expected = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in expected:
            raise self.fail(key, f"must be {_type_name(expected)}, not {value!r}")
        if not isinstance(value, expected):
            raise self.fail(key, f"must be {_type_name(expected)}, not {value!r}")
        return value

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}")
        return str(value)

    def bounded(self, key: str, default: Any, low: int, high: int) -> Any:
        value = self.get(key, int, default)
        if value is not None and not low <= value <= high:
            raise self.fail(key, f"must be between {low} and {high}, not {value}")
        return value

    def parse(self) -> ScannerConfig:
        if not isinstance(self._table, Mapping):
            raise ConfigError(None, f"scanner[{self._index}]", "must be a table")
        ident = self.get("id", str)
        if ident is None:
            raise self.fail(
                "id", 'is required (the scanner\'s name in scan events, e.g. "counter-1-a")'
            )
        if not _ID.fullmatch(ident):
            raise self.fail(
                "id",
                "must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            )
        if "kind" not in self._table:
            raise self.fail("kind", "is required: one of evdev, serial, hidpos")
        kind = Kind(self.choice("kind", [k.value for k in Kind], "evdev"))
        counter = self.get("counter", str)
        path = self.get("path", str)
        match_text = self.get("match", str)
        match = None
        if kind is Kind.EVDEV:
            if match_text is None:
                raise self.fail("match", f"is required for an evdev scanner: {MATCH_HELP}")
            try:
                match = DeviceMatch.parse(match_text)
            except ValueError as exc:
                raise self.fail("match", str(exc)) from None
            if path is not None:
                raise self.fail(
                    "path", "is not used by an evdev scanner: put the device in 'match'"
                )
        else:
            if path is None:
                where = "/dev/serial/by-id/…" if kind is Kind.SERIAL else "/dev/hidrawN"
                raise self.fail("path", f"is required for a {kind.value} scanner (e.g. {where})")
            if not path.startswith("/"):
                raise self.fail("path", f"must be an absolute device path, not {path!r}")
            if match_text is not None:
                raise self.fail(
                    "match", f"is only for evdev scanners; a {kind.value} scanner uses 'path'"
                )
        for key, kinds in _KEY_KINDS.items():
            if key in self._table and kind not in kinds:
                only = " and ".join(k.value for k in kinds)
                raise self.fail(key, f"is only for {only} scanners, not {kind.value}")
        terminator = Terminator(self.choice("terminator", [t.value for t in Terminator], "CR"))
        parity = self.get("parity", str, "N")
        if parity not in _PARITIES:
            raise self.fail(
                "parity", "must be one of N, E, O, M, S (or none, even, odd, mark, space)"
            )
        stopbits = self.get("stopbits", (int, float), 1)
        if stopbits not in (1, 1.5, 2):
            raise self.fail("stopbits", "must be 1, 1.5 or 2")
        gap_ms = self.bounded("gap_ms", None, 1, 10_000)
        self._gap_ms = gap_ms or DEFAULT_GAP_MS[kind]
        config = ScannerConfig(
            id=ident,
            kind=kind,
            index=self._index,
            counter=counter,
            path=path,
            match=match,
            baud=self.bounded("baud", 115200, 50, 4_000_000),
            bytesize=self.bounded("bytesize", 8, 5, 8),
            parity=_PARITIES[parity],
            stopbits=float(stopbits),
            terminator=terminator,
            gap_ms=gap_ms,
            max_scan_bytes=self.bounded("max_scan_bytes", 4096, 16, 1_048_576),
            hidpos_layout=self.choice("hidpos_layout", list(HIDPOS_LAYOUTS), "pos"),
            hidpos_enable=self.get("hidpos_enable", bool, False),
            grab_wait_ms=self.bounded("grab_wait_ms", 2000, 0, 60_000),
            decode=self.decode_settings(kind),
        )
        unknown = sorted(set(self._table) - self._used)
        if unknown:
            known = sorted(k for k in self._used if kind in _KEY_KINDS.get(k, (kind,)))
            raise self.fail(
                unknown[0], f"unknown key (keys of a {kind.value} scanner: {', '.join(known)})"
            )
        return config

    def decode_settings(self, kind: Kind) -> DecodeSettings:
        gs_substitute = self.get("gs_substitute", str)
        if gs_substitute is not None and (len(gs_substitute) != 1 or gs_substitute in SET_82):
            raise self.fail(
                "gs_substitute",
                f'must be one character outside GS1 set 82, such as "$" (a set-82 character could '
                f"be data), not {gs_substitute!r}",
            )
        suffix_keys = self.get("suffix_keys", list)
        if suffix_keys is not None and not all(isinstance(k, str) for k in suffix_keys):
            raise self.fail(
                "suffix_keys", 'must be a list of key names, e.g. ["KEY_ENTER", "KEY_TAB"]'
            )
        function_keys = self.get("function_keys", Mapping, {})
        keyboard: dict[str, Any] = {
            "layout": self.get("layout", str, "auto" if kind is Kind.EVDEV else "us"),
            "gap_ms": self._gap_ms,
            "function_keys": {
                self.key_code(f"function_keys.{name}", name): self.control(
                    f"function_keys.{name}", meaning
                )
                for name, meaning in function_keys.items()
            },
        }
        keyboard["caps_lock"] = self.get("caps_lock", bool, False)
        keyboard["max_scan_keys"] = self.bounded("max_scan_keys", 1024, 16, 65536)
        if suffix_keys is not None:
            keyboard["suffix_keys"] = frozenset(
                self.key_code("suffix_keys", k) for k in suffix_keys
            )
        try:
            keyboard_settings = KeyboardSettings(**keyboard)
        except ValueError as exc:
            raise self.fail("layout", str(exc)) from None
        auto_layouts = self.get("auto_layouts", list)
        extra: dict[str, Any] = {}
        if auto_layouts is not None:
            unknown = [name for name in auto_layouts if name not in LAYOUTS]
            if unknown or not auto_layouts:
                raise self.fail(
                    "auto_layouts",
                    f"must list layouts among {', '.join(LAYOUTS)}, not {unknown or 'none'}",
                )
            extra["auto_layouts"] = tuple(auto_layouts)
        split_ais = self.get("split_ais", str, DEFAULT_SPLIT_AIS)
        if split_ais not in SPLIT_AIS:
            raise self.fail(
                "split_ais",
                f"must be {' or '.join(map(repr, SPLIT_AIS))} (the AIs a code whose separators "
                f"were all dropped may be cut at), not {split_ais!r}",
            )
        return DecodeSettings(
            **extra,
            keyboard=keyboard_settings,
            prefix=self.get("prefix", str, ""),
            suffix=self.get("suffix", str, ""),
            gs_substitute=gs_substitute,
            split_ais=split_ais,
        )

    def key_code(self, key: str, name: str) -> int:
        code = ecodes.ecodes.get(name)
        if not name.startswith("KEY_") or not isinstance(code, int):
            raise self.fail(
                key, f"unknown key name {name!r} (use evdev names such as KEY_ENTER, KEY_F12)"
            )
        return code

    def control(self, key: str, meaning: Any) -> str:
        if meaning not in _CONTROL_NAMES:
            raise self.fail(key, f"must be one of {', '.join(_CONTROL_NAMES)}, not {meaning!r}")
        return _CONTROL_NAMES[meaning]


_CONTROL_NAMES = {"GS": "\x1d", "RS": "\x1e", "EOT": "\x04", "FS": "\x1c", "US": "\x1f"}


def _type_name(kinds: tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        Mapping: "a table",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)
