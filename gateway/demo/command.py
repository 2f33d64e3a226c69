"""``nmvs-gateway demo``: everything in one command, no configuration file.

Starts, each owned by this command and stopped by it (Ctrl-C included):

1. the NMVS simulator (in this process, plain HTTP on a free loopback port, speaking
   ``--backend``: Arvato SOAP or Solidsoft REST) with a generated market; one of its packs is dispensed by another NMVS user first (a goods-in decommission);
2. a private mosquitto on a free port with a temporary configuration (``gateway/demo/mosquitto.py``);
3. the daemon (``gateway.daemon.app.serve``, in this process; its JSON log goes to a file) with a
   generated configuration: policy ``on_scan = "verify"``, a temporary state directory, one
   serial scanner on a pseudo-terminal and two keyboard-wedge scanners on virtual evdev nodes;
4. an LGO: an MQTT client on the real broker whose view is the table on the terminal, and which
   sends the scenario's requests (``gateway/demo/scenario.py``).

Then the summary: scans and requests seen on MQTT, NMVS calls and alerts as the simulator
recorded them (``/_sim/transactions``, ``/_sim/alerts``), and the requests the gateway's firewall
kept from the NMVS, by rule (from ``<base>/health``). Exit 0 when every step gave its expected
outcome and no alert was raised, 1 otherwise; 1 with a message when mosquitto is missing.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import TextIO

EXIT_FAILED = 1
DEFAULT_PACE = 0.6


def seconds(*, zero_allowed: bool) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds, positive (or ``zero_allowed``)."""
    wanted = "a number of seconds, 0 or more" if zero_allowed else "a positive number of seconds"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero_allowed):
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text!r}")
        return value

    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=seconds(zero_allowed=False),
        metavar="SECONDS",
        help="stop by itself after SECONDS, or as soon as the scenario is over "
        "(default: keep running after the scenario until Ctrl-C)",
    )
    parser.add_argument(
        "--pace",
        type=seconds(zero_allowed=True),
        default=DEFAULT_PACE,
        metavar="SECONDS",
        help=f"pause between the scenario's steps (default {DEFAULT_PACE})",
    )

    parser.add_argument(
        "--backend",
        choices=("arvato-soap", "solidsoft-rest"),
        default="arvato-soap",
        help="the protocol the simulator speaks and the gateway uses (default arvato-soap)",
    )


def run(args: argparse.Namespace) -> int:
    from gateway.demo.mosquitto import MOSQUITTO_CANDIDATES, BinaryNotFound, find_binary

    try:
        find_binary("mosquitto", *MOSQUITTO_CANDIDATES)
    except BinaryNotFound as exc:
        print(
            f"nmvs-gateway demo: {exc}\n"
            "  The demo starts its own private broker. Install it with .ci/setup, or:\n"
            "    sudo apt-get install mosquitto",
            file=sys.stderr,
        )
        return EXIT_FAILED
    import asyncio

    from gateway.demo.session import demo

    out: TextIO = sys.stdout
    try:
        return asyncio.run(demo(out, duration=args.duration, pace=args.pace, backend=args.backend))
    except (OSError, RuntimeError) as exc:  # a part could not start (port, pty, broker…)
        print(f"nmvs-gateway demo: could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
