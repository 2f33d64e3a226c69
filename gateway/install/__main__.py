"""``python3 -m gateway.install install|uninstall …``: the installer without the application's
dependencies (it is what creates the virtual environment that holds them)."""

from __future__ import annotations

import argparse
import sys

from gateway.install import install_command, uninstall_command


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m gateway.install")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in (("install", install_command), ("uninstall", uninstall_command)):
        sub = commands.add_parser(name, help=(module.__doc__ or "").splitlines()[0])
        module.configure(sub)
        sub.set_defaults(_run=module.run)
    args = parser.parse_args()
    result: int = args._run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
