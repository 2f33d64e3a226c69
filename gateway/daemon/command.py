"""``nmvs-gateway run``: load the configuration, set up logging, run the daemon until SIGTERM.

Exit codes:

- 0 after SIGTERM/SIGINT;
- 78 (``EX_CONFIG``): a human must fix something, and systemd will not restart the daemon
  (``RestartPreventExitStatus=78``): the configuration, an unusable, unreadable or expired
  certificate or key, a state directory that is not a directory, a state database that cannot be
  opened (corrupt, newer schema, no permission, missing or emptied although its marker says it
  existed) or that turns out damaged while running. One line on stderr names the file and the fix;
  ``--check`` finds the same problems (but the state database's) without starting;
- 1 when a fatal error stopped the running daemon (systemd restarts it).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

DEFAULT_CONFIG = Path("/etc/nmvs-gateway/gateway.toml")
EXIT_FATAL = 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"the TOML configuration (default {DEFAULT_CONFIG}); see config/gateway.example.toml",
    )
    parser.add_argument(
        "--check", action="store_true", help="only validate the configuration and exit"
    )


def run(args: argparse.Namespace) -> int:
    from gateway.configfile import ConfigError
    from gateway.daemon.config import EXIT_CONFIG, load_config
    from gateway.daemon.logs import configure_logging

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"nmvs-gateway: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(config.gateway.log_level, config.gateway.log_format, config.secrets)
    if args.check:
        print(f"{config.path}: configuration OK")
        return 0
    return asyncio.run(_main(config))


async def _main(config: object) -> int:
    import structlog

    from gateway.configfile import ConfigError
    from gateway.daemon.app import StartupError, serve
    from gateway.daemon.config import EXIT_CONFIG, Config
    from gateway.daemon.notify import Notifier
    from gateway.engine import StoreError
    from gateway.mqtt.bridge import TlsSetupError

    assert isinstance(config, Config)
    log = structlog.get_logger("gateway.daemon")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await serve(config, stop, Notifier.from_environment())
    except TlsSetupError as exc:
        print(f"nmvs-gateway: {config.path}: mqtt: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except BaseExceptionGroup as group:
        cause = _first_leaf(group)
        if isinstance(cause, ConfigError | StartupError):
            print(f"nmvs-gateway: {cause}", file=sys.stderr)
            return EXIT_CONFIG
        if isinstance(cause, StoreError):  # a damaged database: restarting cannot repair it
            log.error("state_database_unusable", error=str(cause))
            print(f"nmvs-gateway: {cause}", file=sys.stderr)
            return EXIT_CONFIG
        else:
            log.error("daemon_failed", error=f"{type(cause).__name__}: {cause}", exc_info=cause)
        return EXIT_FATAL
    log.info("gateway_stopped")
    return 0


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
