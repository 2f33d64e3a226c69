"""``nmvs-gateway selftest``: every check of the box, for a technician, and scanner calibration.

Runs the scanner, NMVS, MQTT and host checks against the gateway's configuration and prints a
table (or ``--json``); exit code 0 only when nothing failed, 1 when something did, 2 for a
usage error. ``--calibrate SCANNER`` first reads one scan of the card's calibration code from
that scanner through the real capture reader and diagnoses it
(:mod:`gateway.selftest.calibration`); ``--write-config`` saves what software can absorb into
that ``[[scanner]]`` table (:mod:`gateway.selftest.config_edit`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.capture.config import ScannerConfig
    from gateway.capture.devices import InputBackend
    from gateway.codes.keyboard import KeyTrace
    from gateway.daemon.config import Config
    from gateway.selftest.calibration import Calibration
    from gateway.selftest.results import CheckResult

CONFIG_ENV = "NMVS_GATEWAY_CONFIG"
DEFAULT_CONFIG = Path("/etc/nmvs-gateway/gateway.toml")
SCAN_TIMEOUT_S = 30.0
EXIT_USAGE = 2


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help=f"the gateway's TOML configuration (default ${CONFIG_ENV}, else {DEFAULT_CONFIG})",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    parser.add_argument(
        "--calibrate",
        metavar="SCANNER",
        help="read one scan of the card's calibration code from this scanner id and diagnose it",
    )
    parser.add_argument(
        "--write-config",
        action="store_true",
        help="with --calibrate: save the calibrated settings into that [[scanner]] table",
    )
    parser.add_argument(
        "--scan-timeout",
        metavar="SECONDS",
        type=float,
        default=SCAN_TIMEOUT_S,
        help=f"how long --calibrate waits for the scan (default {SCAN_TIMEOUT_S:.0f})",
    )


def run(args: argparse.Namespace) -> int:
    from gateway.configfile import ConfigError
    from gateway.daemon.config import load_config
    from gateway.daemon.logs import configure_logging
    from gateway.selftest import results

    path: Path = args.config or default_config_path()
    if args.write_config and not args.calibrate:
        print("--write-config needs --calibrate SCANNER", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(path)
    except ConfigError as exc:
        fix = (
            f"correct the file (or give another with --config FILE or ${CONFIG_ENV}) and run again"
        )
        found = [results.fail("config", str(exc), fix)]
        _print(found, args.json)
        return results.exit_code(found)
    scanner = None
    if args.calibrate:
        scanner = next((s for s in config.scanners if s.id == args.calibrate), None)
        if scanner is None:
            known = ", ".join(s.id for s in config.scanners) or "none configured"
            print(f"no scanner {args.calibrate!r} in {path} (scanners: {known})", file=sys.stderr)
            return EXIT_USAGE
    # the checks' own results are the report: only errors of the parts they drive are logged
    configure_logging("error", "console", config.secrets, sys.stderr)
    found = asyncio.run(
        run_checks(
            config,
            calibrate=scanner,
            write_config=args.write_config,
            scan_timeout=args.scan_timeout,
        )
    )
    _print(found, args.json)
    return results.exit_code(found)


def _print(found: list[CheckResult], as_json: bool) -> None:
    from gateway.selftest import results

    print(results.dumps(found) if as_json else results.render(found))


async def run_checks(
    config: Config,
    *,
    calibrate: ScannerConfig | None = None,
    write_config: bool = False,
    scan_timeout: float = SCAN_TIMEOUT_S,
) -> list[CheckResult]:
    """Every check, calibration first (the technician is at the scanner when it starts)."""
    from gateway.capture.command import add_learned_layouts, survey
    from gateway.nmvs.registry import BACKENDS
    from gateway.selftest.host import check_clock, check_database, check_disk
    from gateway.selftest.mqtt_check import check_mqtt
    from gateway.selftest.scanner_checks import scanner_results

    found: list[CheckResult] = []
    if calibrate is not None:
        print(  # on stderr: the --json document on stdout stays clean
            f"Scan the calibration code (the first code on the card) with scanner "
            f"{calibrate.id!r} within {scan_timeout:.0f} s ...",
            file=sys.stderr,
            flush=True,
        )
        found += await calibrate_scanner(config.path, calibrate, scan_timeout, write_config)
    report = await asyncio.to_thread(survey, config.scanners)
    add_learned_layouts(report, config.scanners, str(config.gateway.state_dir))
    found += scanner_results(config.scanners, report)
    nmvs = await BACKENDS[config.nmvs_backend].probe(config.nmvs, datetime.now(UTC))
    found += nmvs.results
    found += await check_mqtt(config.mqtt, config.base_topic)
    found.append(check_clock(nmvs.server_time, datetime.now(UTC), nmvs.time_source))
    found.append(check_disk(config.gateway.state_dir))
    found += await asyncio.to_thread(check_database, config.gateway.state_dir, time.time())
    return found


_STATE_REASONS = {
    "waiting": "the device is not there (unplugged, or wrong 'path' / 'match')",
    "attached": "the device is open but not grabbed yet (is the trigger or a key held down?)",
}


class NoScan(Exception):
    """No scan arrived in time; ``why`` is the reader's last error, if any."""

    def __init__(self, why: str | None) -> None:
        super().__init__(why)
        self.why = why


async def read_one_scan(
    config: ScannerConfig, wait_s: float, *, input_backend: InputBackend | None = None
) -> KeyTrace | bytes:
    """The raw input of the next scan from this scanner, read by the capture layer's hub."""
    from gateway.capture.hub import ScannerHub

    async with ScannerHub([config], input_backend=input_backend, watch_udev=False) as hub:
        try:
            async with asyncio.timeout(wait_s):
                async for scan in hub.scans():
                    return scan.raw
        except TimeoutError:
            pass
        health = hub.health()[0]
    raise NoScan(health.last_error or _STATE_REASONS.get(health.state))


async def calibrate_scanner(
    config_path: Path,
    scanner: ScannerConfig,
    wait_s: float,
    write_config: bool,
    *,
    input_backend: InputBackend | None = None,
) -> list[CheckResult]:
    from gateway.selftest import results

    name = f"calibration.{scanner.id}"
    try:
        raw = await read_one_scan(scanner, wait_s, input_backend=input_backend)
    except NoScan as missing:
        why = f" (the reader says: {missing.why})" if missing.why else ""
        return [
            results.fail(
                f"{name}.scan",
                f"no scan from {scanner.id!r} within {wait_s:.0f} s{why}",
                "check the scanner is plugged in and not held by the running gateway "
                "(systemctl stop nmvs-gateway during calibration), then scan the calibration code",
            )
        ]
    calibration = diagnose(scanner, raw)
    return [*calibration.results(), _saved(config_path, calibration, write_config)]


def diagnose(scanner: ScannerConfig, raw: KeyTrace | bytes) -> Calibration:
    from gateway.selftest.calibration import diagnose_bytes, diagnose_keys

    if isinstance(raw, bytes):
        return diagnose_bytes(scanner.id, raw)
    keyboard = scanner.decode.keyboard
    return diagnose_keys(
        scanner.id, raw, configured_layout=keyboard.layout, configured_caps_lock=keyboard.caps_lock
    )


def _saved(config_path: Path, calibration: Calibration, write_config: bool) -> CheckResult:
    from gateway.selftest import results
    from gateway.selftest.config_edit import ConfigEditError, toml_value, write_scanner_settings

    name = f"calibration.{calibration.scanner_id}.config"
    settings = calibration.settings()
    if not settings:
        return results.skipped(name, "nothing to save: the calibration did not succeed")
    lines = "; ".join(
        f"remove {key}" if value is None else f"{key} = {toml_value(value)}"
        for key, value in settings.items()
    )
    if not write_config:
        return results.warning(
            name,
            f"not saved: {lines}",
            "run again with --write-config to save these settings, or set them by hand",
        )
    try:
        write_scanner_settings(config_path, calibration.scanner_id, settings)
    except ConfigEditError as exc:
        return results.fail(name, f"not saved: {exc}", f"set by hand: {lines}")
    return results.ok(
        name,
        f"saved in {config_path}: {lines}; restart the gateway to apply (systemctl restart nmvs-gateway)",
    )
