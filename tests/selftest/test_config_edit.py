"""Writing calibration results into a [[scanner]] table: a text edit that keeps comments and
every other line, verified by parsing again, refused (with the reason) when unsafe."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.selftest.config_edit import (
    ConfigEditError,
    toml_value,
    update_scanner,
    write_scanner_settings,
)

CONFIG = """# the gateway at counter 1
[gateway]
id = "counter-1"

[[scanner]]  # the till scanner
id = "till"
kind = "evdev"
match = "0c2e:0b61"   # Honeywell 1950g
layout = "us"  # set by the installer
gs_substitute = "$"
# prefix set by the vendor
prefix = "AB"

[[scanner]]
id = "desk"
kind = "serial"
path = "/dev/ttyACM0"
"""


def test_keys_are_replaced_inserted_and_removed_in_place() -> None:
    edited = update_scanner(
        CONFIG,
        "till",
        {"layout": "fr", "gs_substitute": None, "prefix": None, "function_keys": {"KEY_F12": "GS"}},
    )
    assert edited.splitlines() == [
        "# the gateway at counter 1",
        "[gateway]",
        'id = "counter-1"',
        "",
        "[[scanner]]  # the till scanner",
        'id = "till"',
        'kind = "evdev"',
        'match = "0c2e:0b61"   # Honeywell 1950g',
        'layout = "fr"  # set by the installer',
        'function_keys = { KEY_F12 = "GS" }',  # after the last key, before trailing comments
        "# prefix set by the vendor",
        "",
        "[[scanner]]",
        'id = "desk"',
        'kind = "serial"',
        'path = "/dev/ttyACM0"',
    ]


def test_the_second_table_and_the_last_line_without_newline() -> None:
    edited = update_scanner(CONFIG.rstrip("\n"), "desk", {"suffix": "\t", "prefix": None})
    assert edited.endswith('path = "/dev/ttyACM0"\nsuffix = "\\u0009"\n')
    assert tomllib.loads(edited)["scanner"][1]["suffix"] == "\t"
    assert edited.startswith(CONFIG.rstrip("\n").rsplit("[[scanner]]", 1)[0])


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12))
def test_any_string_round_trips(value: str) -> None:
    edited = update_scanner(CONFIG, "desk", {"prefix": value})
    assert tomllib.loads(edited)["scanner"][1]["prefix"] == value
    assert toml_value(value).startswith('"')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[scanner]]\nid = "till"\nkind = "evdev"\nmatch = "any"\n[scanner.function_keys]\n'
            'KEY_F1 = "GS"\n',
            "would break the file",
        ),
        (
            '[[scanner]]\nid = "till"\nkind = "evdev"\nmatch = "any"\nfunction_keys.KEY_F1 = "GS"\n',
            "would break the file",
        ),
        ('scanner = [{ id = "till", kind = "evdev", match = "any" }]\n', "plain [[scanner]]"),
        ('[[scanner]]\nid = "till"\nkind = "evdev"\nmatch = """\nany"""\n', "spans several lines"),
        ('[[scanner]]\nid = "other"\nkind = "evdev"\nmatch = "any"\n', "no [[scanner]] table"),
        ("[[scanner]\n", "not valid TOML"),
    ],
)
def test_unsafe_edits_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigEditError, match=message.replace("[", r"\[")):
        update_scanner(text, "till", {"match": "any", "function_keys": {"KEY_F2": "GS"}})


def test_settings_the_daemon_would_refuse_are_not_written() -> None:
    with pytest.raises(ConfigEditError, match="gs_substitute"):
        update_scanner(CONFIG, "till", {"gs_substitute": "A"})


def test_the_file_is_replaced_atomically_with_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG)
    path.chmod(0o640)
    write_scanner_settings(path, "till", {"layout": "de"})
    assert 'layout = "de"  # set by the installer' in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["gateway.toml"]


def test_an_unwritable_directory_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG)
    tmp_path.chmod(0o500)
    try:
        if os.access(tmp_path, os.W_OK):
            pytest.skip("running as root: permissions do not apply")
        with pytest.raises(ConfigEditError, match="cannot write"):
            write_scanner_settings(path, "till", {"layout": "de"})
    finally:
        tmp_path.chmod(0o700)
