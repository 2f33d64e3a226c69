"""The self-test's checks as a pytest suite, run on the pharmacy box against its real configuration.

    sudo -u nmvs-gateway /opt/nmvs-gateway/bin/pytest hwtests/test_selftest.py -rsw
    NMVS_GATEWAY_CALIBRATE=till-1 ... pytest hwtests/test_selftest.py -k calibration -s

The configuration is ``$NMVS_GATEWAY_CONFIG`` or ``/etc/nmvs-gateway/gateway.toml``; without one
every test skips with the reason. A scanner that is not plugged in skips its test; a check that
fails fails its test with the fix in the message; warnings are reported as pytest warnings.
The calibration test needs a technician with the printed card: it runs only when
``NMVS_GATEWAY_CALIBRATE`` names the scanner to calibrate (it never writes the configuration:
use ``nmvs-gateway selftest --calibrate ID --write-config`` for that).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from gateway.capture.command import survey
from gateway.configfile import ConfigError
from gateway.daemon.config import Config, load_config
from gateway.nmvs.registry import BACKENDS
from gateway.selftest.command import SCAN_TIMEOUT_S, default_config_path, diagnose, read_one_scan
from gateway.selftest.host import check_clock, check_database, check_disk
from gateway.selftest.mqtt_check import check_mqtt
from gateway.selftest.results import CheckResult, Status, render
from gateway.selftest.scanner_checks import scanner_results

CONFIG_PATH = default_config_path()
if not CONFIG_PATH.is_file():
    pytest.skip(
        f"no gateway configuration at {CONFIG_PATH}: set NMVS_GATEWAY_CONFIG to the box's file",
        allow_module_level=True,
    )
CALIBRATE = os.environ.get("NMVS_GATEWAY_CALIBRATE", "")


def _scanner_ids() -> list[str]:
    try:
        return [scanner.id for scanner in load_config(CONFIG_PATH).scanners]
    except ConfigError:
        return []  # test_configuration reports it


@pytest.fixture(scope="module")
def config() -> Config:
    try:
        return load_config(CONFIG_PATH)
    except ConfigError as exc:
        pytest.fail(f"the configuration is invalid: {exc}", pytrace=False)


def verdict(results: Sequence[CheckResult]) -> None:
    """Fail on any failed check (with its fix); report warnings; skip when all were skipped."""
    for result in results:
        if result.status is Status.WARNING:
            warnings.warn(f"{result.name}: {result.detail} (fix: {result.fix})", stacklevel=2)
    failed = [r for r in results if r.status is Status.FAIL]
    if failed:
        pytest.fail("\n" + render(failed), pytrace=False)
    if results and all(r.status is Status.SKIPPED for r in results):
        pytest.skip("; ".join(r.detail for r in results))


def test_configuration(config: Config) -> None:
    assert config.path == CONFIG_PATH


@pytest.mark.parametrize("scanner_id", _scanner_ids() or ["(none configured)"])
def test_scanner(config: Config, scanner_id: str) -> None:
    scanners = tuple(s for s in config.scanners if s.id == scanner_id)
    if not scanners:
        pytest.skip("no [[scanner]] table in the configuration")
    results = scanner_results(scanners, survey(scanners))
    present = results[0]
    if present.status is Status.FAIL:
        pytest.skip(f"scanner {scanner_id!r} is absent: {present.detail}")
    verdict(results)


async def test_nmvs_link(config: Config) -> None:
    report = await BACKENDS[config.nmvs_backend].probe(config.nmvs, datetime.now(UTC))
    verdict(report.results)


async def test_nmvs_clock(config: Config) -> None:
    report = await BACKENDS[config.nmvs_backend].probe(config.nmvs, datetime.now(UTC))
    verdict([check_clock(report.server_time, datetime.now(UTC), report.time_source)])


async def test_mqtt(config: Config) -> None:
    verdict(await check_mqtt(config.mqtt, config.base_topic))


def test_disk(config: Config) -> None:
    verdict([check_disk(config.gateway.state_dir)])


def test_database_and_queue(config: Config) -> None:
    verdict(check_database(config.gateway.state_dir, time.time()))


@pytest.mark.skipif(
    not CALIBRATE,
    reason="needs a technician and the printed card: set NMVS_GATEWAY_CALIBRATE=<scanner id>",
)
async def test_calibration(config: Config) -> None:
    scanner = next((s for s in config.scanners if s.id == CALIBRATE), None)
    if scanner is None:
        pytest.fail(f"NMVS_GATEWAY_CALIBRATE={CALIBRATE!r} is not a scanner id of {CONFIG_PATH}")
    print(f"\nScan the calibration code with scanner {CALIBRATE!r} within {SCAN_TIMEOUT_S:.0f} s")
    raw = await read_one_scan(scanner, SCAN_TIMEOUT_S)
    calibration = diagnose(scanner, raw)
    print(render(calibration.results()))
    verdict(calibration.results())
