"""``nmvs-gateway uninstall``: remove what ``install`` laid down; keep state, secrets and an
edited configuration unless ``--purge``."""

from __future__ import annotations

import argparse
import sys

from gateway.install.installer import InstallError, Target, add_common_arguments, uninstall


def configure(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument(
        "--purge",
        action="store_true",
        help="also remove the transaction database, the configuration and the secrets",
    )


def run(args: argparse.Namespace) -> int:
    target = Target(args.root.resolve())
    print(f"removing nmvs-gateway from {target.root}")
    try:
        uninstall(target, purge=args.purge)
    except InstallError as exc:
        print(f"nmvs-gateway uninstall: {exc}", file=sys.stderr)
        return 1
    print("nmvs-gateway is removed.")
    return 0
