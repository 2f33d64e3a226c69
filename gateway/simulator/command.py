"""``nmvs-gateway nmvs-sim``: run the NMVS simulator from the command line.

``--protocol`` picks its face: Arvato SOAP v5 (the default) or Solidsoft Reply's REST API.
The first line on stdout is ``listening <url>`` once the socket is bound (port 0 picks one),
so scripts and tests can start it and read where it is. Bad options or files print one line
naming the problem on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

    from gateway.simulator.market import Market
    from gateway.simulator.persistence import SqliteStore
    from gateway.simulator.rest_wire import RestSettings

SOAP, REST = "arvato-soap", "solidsoft-rest"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--protocol",
        choices=(SOAP, REST),
        default=SOAP,
        help="the national system's interface to serve (default arvato-soap)",
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:8443",
        metavar="HOST:PORT",
        help="address to serve on; port 0 picks a free one",
    )
    parser.add_argument("--plain-http", action="store_true", help="serve plain HTTP (tests, demos)")
    parser.add_argument("--cert", type=Path, help="server certificate (PEM), for HTTPS")
    parser.add_argument("--key", type=Path, help="server private key (PEM), for HTTPS")
    parser.add_argument(
        "--client-ca",
        type=Path,
        help="CA bundle (PEM) that client certificates must chain to"
        " (optional for solidsoft-rest: without it no client certificate is asked for)",
    )
    parser.add_argument(
        "--client-id",
        metavar="ID",
        help="solidsoft-rest: OAuth2 client id standing for the market's first account"
        " (default demo-pharmacy)",
    )
    parser.add_argument(
        "--client-secret",
        metavar="SECRET",
        help="solidsoft-rest: that client's secret (default itsasecret)",
    )
    parser.add_argument(
        "--token-lifetime",
        type=int,
        metavar="SECONDS",
        help="solidsoft-rest: how long an access token is valid (default 3600)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--packs", type=Path, metavar="FILE", help="market data (JSON) to load")
    source.add_argument(
        "--generate", type=int, metavar="N", help="generate a random market of N packs"
    )
    parser.add_argument("--seed", type=int, help="seed for --generate (same seed, same market)")
    parser.add_argument(
        "--packs-out", type=Path, metavar="FILE", help="write the market (JSON) here"
    )
    parser.add_argument(
        "--generate-only", action="store_true", help="with --generate: write --packs-out and exit"
    )
    parser.add_argument(
        "--state", type=Path, metavar="FILE", help="keep the simulator state in this SQLite file"
    )
    parser.add_argument("--admin", action="store_true", help="enable the /_sim/ admin endpoints")
    parser.add_argument(
        "--bulk-delay",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="simulated bulk processing time",
    )
    parser.add_argument(
        "--max-failed-logins",
        type=int,
        default=5,
        metavar="N",
        help="lockout (AU_05) after N failures",
    )
    parser.add_argument(
        "--own-repeat-limit",
        type=int,
        metavar="N",
        help="French PCK_23 counter: N repeats answered PCK_23, then PCK_19; -1 disables (PCK_22)"
        " (default 3 for arvato-soap, -1 for solidsoft-rest)",
    )
    parser.add_argument(
        "--batch-inactive-set",
        choices=("specific", "twin"),
        default="specific",
        help="set operation on an expired/recalled/withdrawn pack: PCK_02/LOT_01/LOT_08 or PCK_30",
    )


MAX_GENERATED_PACKS = 1_000_000
MAX_TOKEN_LIFETIME = 365 * 86400
DEFAULT_OWN_REPEAT_LIMIT = {SOAP: 3, REST: -1}  # the counter is France's


class _ConfigError(Exception):
    pass


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or int(port) > 65535 or not host:
        raise _ConfigError(f"--listen must be HOST:PORT, not {value!r}")
    return host.strip("[]"), int(port)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from gateway.simulator.marketfile import MarketFileError
    from gateway.simulator.persistence import StateFileError

    logging.basicConfig(level=logging.WARNING, format="nmvs-sim: %(levelname)s %(message)s")
    try:
        host, port = _listen(args.listen)
        rest = _rest_settings(args)
        market, store = _market(args)
        context = _tls_context(args) if market is not None else None
    except (_ConfigError, MarketFileError, StateFileError) as error:
        print(f"nmvs-sim: error: {error}", file=sys.stderr)
        return 2
    if market is None:
        return 0
    try:
        return asyncio.run(_serve(market, host, port, context, args, rest))
    finally:
        if store is not None:
            store.close()


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    from gateway.simulator.server import TlsSettings

    if args.plain_http:
        return None
    rest = args.protocol == REST  # its clients log in with a token: a client CA is optional
    if not (args.cert and args.key and (args.client_ca or rest)):
        needed = "--cert and --key" if rest else "--cert, --key and --client-ca"
        raise _ConfigError(f"HTTPS needs {needed} (or use --plain-http)")
    try:
        return TlsSettings(args.cert, args.key, args.client_ca).context()
    except OSError as error:  # ssl.SSLError included
        raise _ConfigError(f"cannot load the TLS certificate, key or client CA: {error}") from None


def _market(args: argparse.Namespace) -> tuple[Market | None, SqliteStore | None]:
    """The market to serve (None after --generate-only) and its state store, if any."""
    from datetime import UTC, datetime, timedelta

    from gateway.simulator.market import MarketRules
    from gateway.simulator.marketfile import generate_market, load_market, write_market
    from gateway.simulator.server import open_market

    if args.generate is not None:
        if not 1 <= args.generate <= MAX_GENERATED_PACKS:
            raise _ConfigError(
                f"--generate needs a number of packs from 1 to {MAX_GENERATED_PACKS}"
            )
        data = generate_market(args.generate, today=datetime.now(UTC).date(), seed=args.seed)
    elif args.packs is not None:
        data = load_market(args.packs)
    elif args.state is None:
        raise _ConfigError("give --packs FILE, --generate N or an existing --state FILE")
    else:
        data = None
    if data is not None and args.packs_out is not None:
        try:
            write_market(data, args.packs_out)
        except OSError as error:
            raise _ConfigError(f"{args.packs_out}: cannot write the market: {error}") from None
    if args.generate_only:
        if args.generate is None or args.packs_out is None:
            raise _ConfigError("--generate-only needs --generate and --packs-out")
        return None, None
    _check_rule_options(args)
    own_repeat_limit = args.own_repeat_limit
    if own_repeat_limit is None:
        own_repeat_limit = DEFAULT_OWN_REPEAT_LIMIT[args.protocol]
    rules = MarketRules(
        max_failed_logins=args.max_failed_logins,
        own_repeat_info_limit=None if own_repeat_limit < 0 else own_repeat_limit,
        batch_inactive_set=args.batch_inactive_set,
        bulk_delay=timedelta(seconds=args.bulk_delay),
    )
    market, store = open_market(data, rules=rules, state_file=args.state)
    if data is not None and market.data != data:
        print(
            f"nmvs-sim: {args.state} already holds a market; it is served and the given one is"
            " ignored (delete the file to serve the new market)",
            file=sys.stderr,
        )
    return market, store


def _check_rule_options(args: argparse.Namespace) -> None:
    import math

    if not math.isfinite(args.bulk_delay) or not 0 <= args.bulk_delay <= 86400:
        raise _ConfigError(f"--bulk-delay must be 0 to 86400 seconds, not {args.bulk_delay}")
    if args.max_failed_logins < 1:
        raise _ConfigError(f"--max-failed-logins must be at least 1, not {args.max_failed_logins}")
    if args.own_repeat_limit is not None and args.own_repeat_limit < -1:
        raise _ConfigError(
            f"--own-repeat-limit must be -1 (no counter) or more, not {args.own_repeat_limit}"
        )


def _rest_settings(args: argparse.Namespace) -> RestSettings:
    """The REST face's settings: its defaults, with the options given (SOAP takes none)."""
    from gateway.simulator.rest_wire import RestSettings

    given = {
        name: value
        for name in ("client_id", "client_secret", "token_lifetime")
        if (value := getattr(args, name)) is not None
    }
    if args.protocol != REST and given:
        option = "--" + next(iter(given)).replace("_", "-")
        raise _ConfigError(f"{option} is an option of --protocol {REST}")
    settings = RestSettings(**given)
    if not settings.client_id or not settings.client_secret:
        raise _ConfigError("--client-id and --client-secret must not be empty")
    if not 1 <= settings.token_lifetime <= MAX_TOKEN_LIFETIME:
        raise _ConfigError(
            f"--token-lifetime must be 1 to {MAX_TOKEN_LIFETIME} seconds (a year),"
            f" not {settings.token_lifetime}"
        )
    return settings


async def _serve(
    market: Market,
    host: str,
    port: int,
    context: ssl.SSLContext | None,
    args: argparse.Namespace,
    rest: RestSettings,
) -> int:
    import asyncio
    import signal

    from gateway.simulator.server import running_simulator

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running_simulator(
            market,
            host=host,
            port=port,
            plain_http=context is None,
            tls=context,
            admin=args.admin,
            protocol=args.protocol,
            client_id=rest.client_id,
            client_secret=rest.client_secret,
            token_lifetime=rest.token_lifetime,
        ) as sim:
            print(f"listening {sim.url}", flush=True)
            await stop.wait()
    except OSError as error:
        print(f"nmvs-sim: error: cannot listen on {host}:{port}: {error}", file=sys.stderr)
        return 2
    return 0
