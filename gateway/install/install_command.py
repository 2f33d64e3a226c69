"""``nmvs-gateway install``: lay the gateway down on this PC (or under ``--root DIR``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.install.installer import (
    InstallError,
    Target,
    add_common_arguments,
    default_source,
    install,
    next_steps,
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument(
        "--source",
        type=Path,
        default=default_source(),
        metavar="DIR",
        help="the nmvs-gateway checkout to install (default: the one this command runs from)",
    )
    parser.add_argument(
        "--no-venv",
        action="store_true",
        help="do not create or update /opt/nmvs-gateway/venv (files only)",
    )
    parser.add_argument(
        "--wheels",
        type=Path,
        metavar="DIR",
        help="install the Python packages from the wheels in DIR only (offline installation)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        metavar="PYTHON",
        help="the Python (3.11+) the virtual environment is built with (default: this one)",
    )


def run(args: argparse.Namespace) -> int:
    target = Target(args.root.resolve())
    print(f"installing nmvs-gateway from {args.source} into {target.root}")
    try:
        install(
            target,
            args.source.resolve(),
            build_venv=not args.no_venv,
            wheels=args.wheels,
            python=args.python,
        )
    except InstallError as exc:
        print(f"nmvs-gateway install: {exc}", file=sys.stderr)
        return 1
    print(next_steps(target))
    return 0
