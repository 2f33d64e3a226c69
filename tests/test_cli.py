from __future__ import annotations

import subprocess
import sys

from gateway.cli import COMMANDS, build_parser


def test_help_lists_every_command_with_its_summary() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    lines = [" ".join(line.split()) for line in out.splitlines()]
    for command in COMMANDS:
        assert f"{command.name} {command.summary}" in lines


def test_missing_command_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "gateway.cli"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "COMMAND" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_command_module_builds_its_parser() -> None:
    parser = build_parser()
    assert parser.prog == "nmvs-gateway"
