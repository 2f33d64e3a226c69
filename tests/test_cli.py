"""The ``nmvs-gateway`` entry point: help, usage errors, and one line instead of a traceback."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

import pytest

from gateway import cli
from gateway.cli import COMMANDS, Command, build_parser

GOOD_SCAN = "0105000456013482172612001000001210000000014\n"


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


def test_ctrl_c_is_one_line_and_exit_130() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "decode"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(GOOD_SCAN)
    proc.stdin.flush()
    assert '"ok": true' in proc.stdout.readline()  # now inside the command, waiting on stdin
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)  # before closing stdin: an end of input would also end the command
    _, err = proc.communicate()
    assert (proc.returncode, err) == (130, "nmvs-gateway decode: interrupted\n")


def test_a_reader_that_went_away_is_no_traceback() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` having exited: every write gets EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "scanners", "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (141, "")


# A command module for the test below: ``gateway.cli`` only needs configure() and run().
def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password", required=True)


def run(args: argparse.Namespace) -> int:
    raise RuntimeError("the database moved")


def test_a_bug_in_a_command_is_one_line_and_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "COMMANDS", (Command("explode", __name__, "a command with a bug"),))
    monkeypatch.delenv("NMVS_GATEWAY_TRACEBACK", raising=False)
    assert cli.main(["explode", "--password", "Hunter-2-Secret"]) == 70
    captured = capsys.readouterr()
    assert captured.err == (
        "nmvs-gateway explode: unexpected error, please report it: RuntimeError: the database moved\n"
    )
