"""``nmvs-gateway scanners`` run as a subprocess, as a technician would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tty
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def scanners(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "scanners", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_listed_in_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    text = " ".join(result.stdout.split())  # argparse wraps the summaries
    assert (
        "scanners list input, serial and hidraw devices and what the gateway would do with each"
        in text
    )


def test_json_without_configuration() -> None:
    result = scanners("--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"scanners", "input", "nodes", "notes"} and report["scanners"] == []
    if not os.path.isdir("/dev/input"):  # CI containers
        assert report["input"] == []
        assert (
            "/dev/input is absent: no input devices here (a container without devices?)"
            in report["notes"]
        )
    for row in report["input"]:  # on a real machine: every device says what would happen to it
        assert row["action"]


@pytest.mark.skipif(
    os.path.isdir("/dev/input"), reason="the text is for a machine without input devices"
)
def test_text_without_devices() -> None:
    result = scanners()
    assert result.returncode == 0
    assert result.stdout.startswith("Input devices: none\n")
    assert (
        "Note: /dev/input is absent: no input devices here (a container without devices?)"
        in result.stdout
    )


def test_configured_scanners_are_resolved(tmp_path: Path) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    link = tmp_path / "usb-Newland_FM430-if00"
    link.symlink_to(os.ttyname(slave))
    (tmp_path / "gateway.toml").write_text(
        f"""
[nmvs]
url = "https://example.invalid"   # other sections are not this command's business

[[scanner]]
id = "counter-1-a"
kind = "serial"
path = "{link}"

[[scanner]]
id = "counter-1-b"
kind = "evdev"
match = "name:NoSuchScanner*"

[[scanner]]
id = "counter-2-a"
kind = "hidpos"
path = "{tmp_path / "hidraw9"}"
"""
    )
    try:
        result = scanners("--config", str(tmp_path / "gateway.toml"), "--json")
    finally:
        os.close(master)
        os.close(slave)
    assert result.returncode == 0, result.stderr
    entries = {e["id"]: e for e in json.loads(result.stdout)["scanners"]}
    assert (
        entries["counter-1-a"]["device"] == os.path.realpath(link)
        and "problem" not in entries["counter-1-a"]
    )
    assert (
        entries["counter-1-b"]["problem"]
        == "no input device matches 'name:NoSuchScanner*' (unplugged?)"
    )
    assert (
        entries["counter-2-a"]["problem"]
        == f"{tmp_path / 'hidraw9'} does not exist (unplugged, or wrong path)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[scanner]]\nid = "a"\nkind = "serial"\npath = "/dev/ttyACM0"\nterminator = "ETX"\n',
            "scanner[0].terminator: must be one of CR, LF, CRLF, EOT, none",
        ),
        ("[[scanner]\n", "invalid TOML: "),
        ('scanner = "x"\n', "scanner: must be an array of tables ([[scanner]])"),
    ],
)
def test_configuration_errors_are_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    result = scanners("--config", str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"{path}: {message}") and result.stderr.count("\n") == 1


def test_a_binary_configuration_file_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_bytes(b"\xf7\x00\x9a[[scanner]]\n")
    result = scanners("--config", str(path))
    assert (result.returncode, result.stderr) == (
        2,
        f"{path}: not UTF-8 text: give the gateway's TOML file\n",
    )


def test_missing_configuration_file(tmp_path: Path) -> None:
    result = scanners("--config", str(tmp_path / "nope.toml"))
    assert (result.returncode, result.stderr) == (
        2,
        f"{tmp_path / 'nope.toml'}: No such file or directory\n",
    )


def test_text_rendering_of_a_busy_box() -> None:
    from gateway.capture.command import render

    report = {
        "scanners": [{"id": "counter-1-b", "kind": "evdev", "device": "/dev/input/event7"}],
        "input": [
            {
                "path": "/dev/input/event7",
                "vidpid": "0c2e:0b61",
                "name": "Honeywell 1950g",
                "links": [],
                "action": "read as scanner 'counter-1-b' (match = '0c2e:0b61'; exclusive grab)",
                "grab": "busy: another process holds the grab (the running gateway, or evtest --grab)",
                "problem": None,
            },
        ],
        "nodes": [
            {
                "path": "/dev/ttyACM0",
                "kind": "serial",
                "name": "FM430",
                "vidpid": "1eab:8306",
                "links": ["/dev/serial/by-id/usb-Newland_FM430-if00"],
                "hid_pos": False,
                "scanner_id": "counter-1-a",
                "rule": "path = '/dev/serial/by-id/usb-Newland_FM430-if00'",
                "problem": None,
            },
        ],
        "notes": [],
    }
    assert render(report).splitlines() == [
        "Configured scanners:",
        "  counter-1-b (evdev): /dev/input/event7",
        "Input devices:",
        "  /dev/input/event7  0c2e:0b61  'Honeywell 1950g'",
        "      read as scanner 'counter-1-b' (match = '0c2e:0b61'; exclusive grab)",
        "      grab: busy: another process holds the grab (the running gateway, or evtest --grab)",
        "Serial and hidraw devices:",
        "  /dev/ttyACM0  1eab:8306  'FM430'  serial: read as scanner 'counter-1-a' "
        "(path = '/dev/serial/by-id/usb-Newland_FM430-if00')",
        "      link: /dev/serial/by-id/usb-Newland_FM430-if00",
    ]
