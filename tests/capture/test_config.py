"""``[[scanner]]`` tables → ScannerConfig, and the exact error messages a technician sees."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from gateway.capture.config import (
    DeviceMatch,
    Kind,
    MatchKind,
    ScannerConfig,
    Terminator,
    parse_scanners,
)
from gateway.configfile import ConfigError

EXAMPLE = """
[[scanner]]
id = "counter-1-a"
kind = "serial"          # "evdev" | "serial" | "hidpos"
path = "/dev/ttyACM0"    # serial: the port; hidpos: the hidraw node
baud = 115200
terminator = "CR"        # "CR" | "LF" | "CRLF" | "EOT" | "none" (then gap_ms ends a scan)
[[scanner]]
id = "counter-1-b"
kind = "evdev"
match = "/dev/input/by-id/usb-Honeywell_Imaging-event-kbd"   # or "vid:pid" like "0c2e:0b61", or "name:Honeywell*"
layout = "fr"            # or "auto"
"""


def test_the_documented_example_parses_as_written() -> None:
    serial, wedge = parse_scanners(tomllib.loads(EXAMPLE)["scanner"])
    assert (serial.id, serial.kind, serial.path, serial.baud, serial.terminator) == (
        "counter-1-a",
        Kind.SERIAL,
        "/dev/ttyACM0",
        115200,
        Terminator.CR,
    )
    assert (wedge.id, wedge.kind, wedge.decode.keyboard.layout) == ("counter-1-b", Kind.EVDEV, "fr")
    assert wedge.match == DeviceMatch(
        MatchKind.PATH,
        "/dev/input/by-id/usb-Honeywell_Imaging-event-kbd",
        pattern="/dev/input/by-id/usb-Honeywell_Imaging-event-kbd",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0c2e:0b61", DeviceMatch(MatchKind.VIDPID, "0c2e:0b61", 0x0C2E, 0x0B61)),
        ("0C2E:0B61", DeviceMatch(MatchKind.VIDPID, "0C2E:0B61", 0x0C2E, 0x0B61)),
        ("name:Honeywell*", DeviceMatch(MatchKind.NAME, "name:Honeywell*", pattern="Honeywell*")),
        ("any", DeviceMatch(MatchKind.ANY, "any")),
    ],
)
def test_match_forms(text: str, expected: DeviceMatch) -> None:
    assert DeviceMatch.parse(text) == expected


def test_name_patterns_ignore_case() -> None:
    match = DeviceMatch.parse("name:honeywell*")
    assert match.matches_name("Honeywell Imaging & Mobility 1950")
    assert not match.matches_name("Logitech USB Keyboard")


def test_every_terminator_and_its_bytes() -> None:
    table = {"id": "s", "kind": "serial", "path": "/dev/ttyUSB0"}
    got = {
        t: ScannerConfig.from_toml({**table, "terminator": t}, 0).terminator.data
        for t in ("CR", "LF", "CRLF", "EOT", "none")
    }
    assert got == {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n", "EOT": b"\x04", "none": b""}


def test_defaults() -> None:
    config = ScannerConfig.from_toml({"id": "h", "kind": "hidpos", "path": "/dev/hidraw3"}, 4)
    assert (config.index, config.label, config.gap_s, config.max_scan_bytes) == (
        4,
        "scanner[4]",
        0.1,
        4096,
    )
    assert (config.hidpos_layout, config.hidpos_enable, config.counter) == ("pos", False, None)
    serial = ScannerConfig.from_toml({"id": "s", "kind": "serial", "path": "/dev/ttyACM0"}, 0)
    assert (serial.baud, serial.bytesize, serial.parity, serial.stopbits, serial.gap_s) == (
        115200,
        8,
        "N",
        1,
        0.05,
    )


SERIAL = {"id": "counter-1-a", "kind": "serial", "path": "/dev/ttyACM0"}
WEDGE = {"id": "counter-1-b", "kind": "evdev", "match": "0c2e:0b61"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {**SERIAL, "terminator": "ETX"},
            "scanner[1].terminator: must be one of CR, LF, CRLF, EOT, none",
        ),
        ({**SERIAL, "kind": "usb"}, "scanner[1].kind: must be one of evdev, serial, hidpos"),
        (
            {"id": "x", "path": "/dev/ttyACM0"},
            "scanner[1].kind: is required: one of evdev, serial, hidpos",
        ),
        (
            {"kind": "serial", "path": "/dev/ttyACM0"},
            'scanner[1].id: is required (the scanner\'s name in scan events, e.g. "counter-1-a")',
        ),
        (
            {**SERIAL, "id": "counter 1"},
            "scanner[1].id: must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ),
        (
            {**SERIAL, "id": "counter-1\n"},  # re's $ also matches before a final newline
            "scanner[1].id: must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ),
        (
            {**WEDGE, "match": "0c2e:0b61\n"},
            'scanner[1].match: must be a device path such as "/dev/input/by-id/usb-…-event-kbd", '
            '"vid:pid" such as "0c2e:0b61", "name:Honeywell*", or "any" (any device that looks '
            "like a scanner)",
        ),
        ({**SERIAL, "baud": "fast"}, "scanner[1].baud: must be an integer, not 'fast'"),
        ({**SERIAL, "baud": True}, "scanner[1].baud: must be an integer, not True"),
        ({**SERIAL, "baud": 0}, "scanner[1].baud: must be between 50 and 4000000, not 0"),
        (
            {**SERIAL, "parity": "X"},
            "scanner[1].parity: must be one of N, E, O, M, S (or none, even, odd, mark, space)",
        ),
        ({**SERIAL, "stopbits": 3}, "scanner[1].stopbits: must be 1, 1.5 or 2"),
        (
            {**SERIAL, "baudrate": 9600},
            "scanner[1].baudrate: unknown key (keys of a serial scanner: baud, bytesize, counter, gap_ms, "
            "gs_substitute, id, kind, max_scan_bytes, parity, path, prefix, split_ais, stopbits, suffix, "
            "terminator)",
        ),
        (
            {"id": "a", "kind": "serial"},
            "scanner[1].path: is required for a serial scanner (e.g. /dev/serial/by-id/…)",
        ),
        (
            {"id": "a", "kind": "hidpos"},
            "scanner[1].path: is required for a hidpos scanner (e.g. /dev/hidrawN)",
        ),
        (
            {**SERIAL, "path": "ttyACM0"},
            "scanner[1].path: must be an absolute device path, not 'ttyACM0'",
        ),
        (
            {**SERIAL, "match": "any"},
            "scanner[1].match: is only for evdev scanners; a serial scanner uses 'path'",
        ),
        ({**SERIAL, "layout": "fr"}, "scanner[1].layout: is only for evdev scanners, not serial"),
        (
            {**WEDGE, "terminator": "CR"},
            "scanner[1].terminator: is only for serial scanners, not evdev",
        ),
        (
            {**WEDGE, "hidpos_enable": True},
            "scanner[1].hidpos_enable: is only for hidpos scanners, not evdev",
        ),
        (
            {"id": "b", "kind": "evdev"},
            "scanner[1].match: is required for an evdev scanner: a device path such as "
            '"/dev/input/by-id/usb-…-event-kbd", "vid:pid" such as "0c2e:0b61", "name:Honeywell*", '
            'or "any" (any device that looks like a scanner)',
        ),
        (
            {**WEDGE, "match": "Honeywell"},
            'scanner[1].match: must be a device path such as "/dev/input/by-id/usb-…-event-kbd", '
            '"vid:pid" such as "0c2e:0b61", "name:Honeywell*", or "any" (any device that looks like a scanner)',
        ),
        (
            {**WEDGE, "path": "/dev/input/event3"},
            "scanner[1].path: is not used by an evdev scanner: put the device in 'match'",
        ),
        (
            {**WEDGE, "gs_substitute": "$$"},
            'scanner[1].gs_substitute: must be one character outside GS1 set 82, such as "$" '
            "(a set-82 character could be data), not '$$'",
        ),
        (
            {**WEDGE, "suffix_keys": "KEY_ENTER"},
            "scanner[1].suffix_keys: must be a list, not 'KEY_ENTER'",
        ),
        (
            {**WEDGE, "suffix_keys": [28]},
            'scanner[1].suffix_keys: must be a list of key names, e.g. ["KEY_ENTER", "KEY_TAB"]',
        ),
        ({**WEDGE, "gap_ms": 0}, "scanner[1].gap_ms: must be between 1 and 10000, not 0"),
        ({**WEDGE, "counter": 3}, "scanner[1].counter: must be a string, not 3"),
        (
            {**SERIAL, "split_ais": "all"},
            "scanner[1].split_ais: must be 'fmd' or 'gs1' (the AIs a code whose separators were "
            "all dropped may be cut at), not 'all'",
        ),
    ],
)
def test_errors_name_the_key_and_what_is_allowed(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ScannerConfig.from_toml(table, 1)
    assert str(caught.value) == message


def test_decode_settings_of_a_wedge() -> None:
    wedge = ScannerConfig.from_toml(
        {
            **WEDGE,
            "layout": "de",
            "gap_ms": 80,
            "prefix": "<",
            "suffix": ">",
            "gs_substitute": "$",
            "suffix_keys": ["KEY_TAB"],
            "function_keys": {"KEY_F12": "GS", "KEY_DOWN": "RS"},
            "caps_lock": True,
            "max_scan_keys": 600,
            "auto_layouts": ["fr", "us"],
            "split_ais": "gs1",
        },
        0,
    )
    keyboard = wedge.decode.keyboard
    assert (keyboard.layout, keyboard.gap_ms, keyboard.suffix_keys) == ("de", 80, frozenset({15}))
    assert dict(keyboard.function_keys) == {88: "\x1d", 108: "\x1e"}
    assert (wedge.decode.prefix, wedge.decode.suffix, wedge.decode.gs_substitute) == ("<", ">", "$")
    assert (keyboard.caps_lock, keyboard.max_scan_keys) == (True, 600)
    assert wedge.decode.auto_layouts == ("fr", "us")
    assert wedge.decode.split_ais == "gs1"
    assert ScannerConfig.from_toml(WEDGE, 0).decode.keyboard.layout == "auto"
    assert ScannerConfig.from_toml(WEDGE, 0).decode.split_ais == "fmd"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"layout": "qwerty"},
            "scanner[2].layout: unknown keyboard layout 'qwerty'; choose 'auto' or one of: ",
        ),
        (
            {"suffix_keys": ["ENTER"]},
            "scanner[2].suffix_keys: unknown key name 'ENTER' (use evdev names such as KEY_ENTER, KEY_F12)",
        ),
        (
            {"function_keys": {"KEY_F12": "TAB"}},
            "scanner[2].function_keys.KEY_F12: must be one of GS, RS, EOT, FS, US, not 'TAB'",
        ),
        (
            {"auto_layouts": ["fr", "azerty"]},
            "scanner[2].auto_layouts: must list layouts among us, ",
        ),
        ({"auto_layouts": []}, "scanner[2].auto_layouts: must list layouts among us, "),
        ({"caps_lock": "yes"}, "scanner[2].caps_lock: must be true or false, not 'yes'"),
        ({"max_scan_keys": 5}, "scanner[2].max_scan_keys: must be between 16 and 65536, not 5"),
        (
            {"gs_substitute": "A"},
            'scanner[2].gs_substitute: must be one character outside GS1 set 82, such as "$" '
            "(a set-82 character could be data), not 'A'",
        ),
    ],
)
def test_decode_setting_errors(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ScannerConfig.from_toml({**WEDGE, **extra}, 2)
    assert str(caught.value).startswith(message)


def test_a_table_that_is_not_a_table() -> None:
    with pytest.raises(ConfigError, match=r"^scanner\[0\]: must be a table$"):
        ScannerConfig.from_toml("serial", 0)  # type: ignore[arg-type]


def test_ids_must_be_unique() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_scanners([SERIAL, {**WEDGE, "id": "counter-1-a"}])
    assert str(caught.value) == "scanner[1].id: 'counter-1-a' is already used by scanner[0]"
