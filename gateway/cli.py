"""The ``nmvs-gateway`` command line: one subcommand per capability.

Each subcommand lives next to the code it drives, in a module exposing
``configure(parser: argparse.ArgumentParser) -> None`` and ``run(args: argparse.Namespace) -> int``.
This module only lists them; command modules keep heavy imports inside ``run`` so that
``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NamedTuple

from gateway import __version__


class Command(NamedTuple):
    name: str
    module: str
    summary: str


COMMANDS: tuple[Command, ...] = (
    Command(
        "demo",
        "gateway.demo.command",
        "run a self-contained demo: simulator, broker, daemon and a virtual scanner",
    ),
    Command(
        "decode",
        "gateway.codes.command",
        "decode scans on stdin into pack identifiers (JSON lines)",
    ),
    Command("run", "gateway.daemon.command", "run the gateway daemon (scanners, NMVS queue, MQTT)"),
    Command(
        "nmvs-sim",
        "gateway.simulator.command",
        "run a faithful NMVS simulator (Arvato SOAP v5 or Solidsoft REST) for demos, tests, LGO vendors",
    ),
    Command(
        "scanners",
        "gateway.capture.command",
        "list input, serial and hidraw devices and what the gateway would do with each",
    ),
    Command(
        "card",
        "gateway.selftest.card",
        "write a printable scanner calibration card (PDF or PNG)",
    ),
    Command(
        "selftest",
        "gateway.selftest.command",
        "check scanners, NMVS link, MQTT and host; calibrate a scanner",
    ),
    Command(
        "install",
        "gateway.install.install_command",
        "install the gateway on this PC: venv under /opt, systemd unit, udev rules, config",
    ),
    Command(
        "uninstall",
        "gateway.install.uninstall_command",
        "remove what install laid down (keeps state, secrets, edited config unless --purge)",
    ),
    Command(
        "report",
        "gateway.engine.report",
        "alert typology, firewall savings and queue age from the engine database",
    ),
    Command(
        "status",
        "gateway.engine.status",
        "queue depth, oldest queued item, last NMVS contact and last results",
    ),
    Command(
        "reset-state",
        "gateway.engine.reset",
        "start with an empty engine database on purpose (the old files are kept aside)",
    ),
    Command(
        "restore-backup",
        "gateway.engine.backup",
        "put a backup of the engine database in place (the current files are kept aside)",
    ),
)


class _OneLinePerCommand(argparse.HelpFormatter):
    """Keeps every command's name and summary on one line of ``--help``."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=24, width=120)
        # argparse sizes the name column before it indents the command list, so the longest
        # name would be pushed onto a line of its own; reserve the column for it up front
        self._action_max_length = 4 + max(len(command.name) for command in COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nmvs-gateway",
        description="Pharmacy counter gateway to the national medicines verification system.",
        formatter_class=_OneLinePerCommand,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.summary, description=command.summary)
        sub.set_defaults(_module=command.module)
        importlib.import_module(command.module).configure(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand. Whatever happens, the user gets one line on stderr, never a
    traceback (``NMVS_GATEWAY_TRACEBACK=1`` shows it, for a bug report)."""
    prog = "nmvs-gateway"
    try:
        args = build_parser().parse_args(argv)
        prog = f"nmvs-gateway {args.command}"
        result: int = importlib.import_module(args._module).run(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``| head``): say nothing, and keep the interpreter's final
        # flush of stdout from failing again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:  # the last resort: commands report their own errors
        if os.environ.get("NMVS_GATEWAY_TRACEBACK") == "1":
            traceback.print_exc()
        print(
            f"{prog}: unexpected error, please report it: {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return 70
    return result


if __name__ == "__main__":
    sys.exit(main())
