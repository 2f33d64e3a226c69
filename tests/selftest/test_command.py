"""``nmvs-gateway selftest`` as a subprocess against the simulator (mutual TLS), a real mosquitto,
a serial scanner on a pty and a real state directory: exit codes, the table, ``--json``,
and a calibration scan written into the configuration."""

from __future__ import annotations

import asyncio
import json
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.selftest.card_codes import CALIBRATION_PAYLOAD, GS
from gateway.simulator.server import RunningSimulator
from tests.brokers import Broker
from tests.capture.test_serial import SerialPort
from tests.nmvs.conftest import Pki
from tests.selftest.conftest import CLIENT, PASSWORD, USER

CHECK_KEYS = {"name", "status", "detail", "fix"}


@pytest.fixture
def port(tmp_path: Path) -> Iterator[SerialPort]:
    serial = SerialPort(tmp_path / "usb-Honeywell_1950g-if00")
    yield serial
    serial.close()


def write_config(
    directory: Path,
    pki: Pki,
    sim: RunningSimulator,
    broker: Broker,
    port: SerialPort,
    extra: str = "",
) -> Path:
    password = directory / "nmvs-password"
    password.write_text(PASSWORD + "\n")
    path = directory / "gateway.toml"
    path.write_text(
        f"""# counter 1
[gateway]
id = "counter-1"
state_dir = "{directory / "state"}"

[mqtt]
url = "{broker.url}"

[nmvs]
url = "{sim.url}"
client_login_id = "{CLIENT}"
user_id = "{USER}"
password_file = "{password}"
cert_file = "{pki.client_cert}"
key_file = "{pki.client_key}"
ca_file = "{pki.ca_file}"

[[scanner]]
id = "till"  # the till's scanner
kind = "serial"
path = "{port.link}"
{extra}"""
    )
    return path


async def selftest(
    *args: str, stdin_scan: tuple[SerialPort, bytes] | None = None
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "selftest",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    if stdin_scan is not None:
        port, data = stdin_scan
        assert process.stderr is not None
        prompt = await asyncio.wait_for(process.stderr.readline(), 20)
        assert b"Scan the calibration code" in prompt
        await asyncio.sleep(0.5)  # the reader opens the port after the prompt
        await port.send(data)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def statuses(document: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["status"] for check in document["checks"]}


async def test_a_healthy_box_exits_0_with_a_readable_table(
    tmp_path: Path, pki: Pki, sim: RunningSimulator, broker: Broker, port: SerialPort
) -> None:
    config = write_config(tmp_path, pki, sim, broker, port)
    code, out, err = await selftest("--config", str(config))
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0].split() == ["status", "check", "result"]
    assert any(line.startswith("ok ") and "nmvs.credentials" in line for line in lines)
    assert any(line.startswith("WARNING") and "mqtt.status" in line for line in lines)
    assert "fix: start the gateway (systemctl start nmvs-gateway)" in out
    assert lines[-1].endswith("nothing failed")
    assert PASSWORD not in out + err and "Traceback" not in err


async def test_json_shape_and_a_failing_check_exits_1(
    tmp_path: Path, pki: Pki, sim: RunningSimulator, broker: Broker, port: SerialPort
) -> None:
    missing = '[[scanner]]\nid = "desk"\nkind = "evdev"\nmatch = "0c2e:0b61"\n'
    config = write_config(tmp_path, pki, sim, broker, port, extra=missing)
    code, out, _ = await selftest("--config", str(config), "--json")
    document = json.loads(out)
    assert code == 1 and document["ok"] is False
    assert set(document) == {"ok", "counts", "checks"}
    assert set(document["counts"]) == {"ok", "warning", "fail", "skipped"}
    assert all(set(check) == CHECK_KEYS for check in document["checks"])
    assert document["counts"]["fail"] == 1
    found = statuses(document)
    assert found["scanner.desk.present"] == "fail" and found["scanner.till.present"] == "ok"
    for name in (
        "nmvs.reach",
        "nmvs.tls",
        "nmvs.credentials",
        "mqtt.round-trip",
        "host.clock",
        "host.disk",
    ):
        assert found[name] == "ok", name
    assert found["host.database"] == "warning"  # the gateway has not run in this state_dir


async def test_a_bad_configuration_is_a_failed_check_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nid = "counter 1"\n')
    code, out, err = await selftest("--config", str(config), "--json")
    assert code == 1 and "Traceback" not in err
    (check,) = json.loads(out)["checks"]
    assert check["name"] == "config" and "gateway.id" in check["detail"]


async def test_usage_errors_exit_2(
    tmp_path: Path, pki: Pki, sim: RunningSimulator, broker: Broker, port: SerialPort
) -> None:
    config = write_config(tmp_path, pki, sim, broker, port)
    code, _, err = await selftest("--config", str(config), "--write-config")
    assert (code, err.strip()) == (2, "--write-config needs --calibrate SCANNER")
    code, _, err = await selftest("--config", str(config), "--calibrate", "nope")
    assert code == 2 and err.strip().endswith("(scanners: till)")


async def test_calibration_writes_the_configuration(
    tmp_path: Path, pki: Pki, sim: RunningSimulator, broker: Broker, port: SerialPort
) -> None:
    config = write_config(tmp_path, pki, sim, broker, port)
    scan = b"]d2" + CALIBRATION_PAYLOAD.replace(GS, "$").encode() + b"\r"
    code, out, err = await selftest(
        "--config",
        str(config),
        "--calibrate",
        "till",
        "--write-config",
        "--scan-timeout",
        "20",
        stdin_scan=(port, scan),
    )
    assert code == 0, out + err
    assert "calibration.till.gs" in out and "replaced by the character '$'" in out
    assert "saved in" in out
    text = config.read_text()
    assert 'id = "till"  # the till\'s scanner' in text and text.startswith("# counter 1\n")
    assert tomllib.loads(text)["scanner"][0]["gs_substitute"] == "$"
