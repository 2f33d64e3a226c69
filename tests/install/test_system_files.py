"""The unit (systemd-analyze verify and security) and the mosquitto ACL, enforced by a real
mosquitto. The udev rules have their own module, ``test_udev_rules``.

``systemd-analyze verify`` checks that ExecStart= is an executable file; the venv is not built in
the tests, so the unit is verified as a copy whose ExecStart= points at a stub executable in a
temporary folder — every other line is verified exactly as shipped.
"""

from __future__ import annotations

import asyncio
import getpass
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from gateway.daemon.config import DEFAULT_CREDENTIALS
from gateway.install.installer import CREDENTIALS, default_source
from tests.brokers import Broker, find_binary, free_port

SYSTEMD = default_source() / "systemd"
UNIT = SYSTEMD / "nmvs-gateway.service"
EXEC_START = "/opt/nmvs-gateway/venv/bin/nmvs-gateway"
# The README promises this exposure score or better for `systemd-analyze security`.
MAX_EXPOSURE = 2.0


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def analyzable_unit(folder: Path, text: str | None = None) -> Path:
    """A copy of the unit whose ExecStart= binary exists (a stub), as verify requires."""
    stub = folder / "nmvs-gateway"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    unit = folder / "nmvs-gateway.service"
    unit.write_text((text or UNIT.read_text()).replace(EXEC_START, str(stub)))
    return unit


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    return tool


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    done = subprocess.run(
        [systemd_analyze(), "verify", str(analyzable_unit(tmp_path))],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_systemd_analyze_verify_does_report_a_broken_unit(tmp_path: Path) -> None:
    # The check above means something: the same tool flags a misspelt key and a wrong value.
    broken = UNIT.read_text().replace("ProtectHome=yes", "ProtectHomme=yes")
    broken = broken.replace("Type=notify", "Type=notifyy")
    done = subprocess.run(
        [systemd_analyze(), "verify", str(analyzable_unit(tmp_path, broken))],
        capture_output=True,
        text=True,
    )
    assert "ProtectHomme" in done.stderr and "notifyy" in done.stderr


def test_unit_sandbox_exposure_stays_low(tmp_path: Path) -> None:
    done = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", str(analyzable_unit(tmp_path))],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for nmvs-gateway\.service: (\d+\.\d)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match[1]) <= MAX_EXPOSURE


def test_unit_reaches_scanners_through_the_dedicated_group_only() -> None:
    settings = unit_settings(UNIT.read_text())
    assert settings["Type"] == ["notify"] and settings["NotifyAccess"] == ["main"]
    assert settings["ExecStart"] == [f"{EXEC_START} run --config /etc/nmvs-gateway/gateway.toml"]
    assert settings["SupplementaryGroups"] == ["nmvs-scanner"]
    assert settings["DevicePolicy"] == ["closed"]
    assert "PrivateDevices" not in settings
    assert settings["DeviceAllow"] == [
        "char-input r", "char-hidraw rw", "char-ttyACM rw", "char-ttyUSB rw"
    ]  # fmt: skip
    assert settings["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"]
    assert settings["CapabilityBoundingSet"] == [""]
    # the names gateway.daemon.config uses when no *_file key is set
    assert settings["LoadCredential"] == [
        "nmvs-password", "nmvs-client.pem", "nmvs-client.key", "nmvs-client-secret",
        "mqtt-password",
        "mqtt-client.pem", "mqtt-client.key",
    ]  # fmt: skip
    assert sorted(settings["LoadCredential"]) == sorted(DEFAULT_CREDENTIALS.values())
    assert tuple(settings["LoadCredential"]) == CREDENTIALS  # what uninstall --purge removes


def test_the_broker_snippet_disables_nagle() -> None:
    """Nagle + delayed ACK cost ~40 ms per request/result exchange; ``acl_broker`` below runs a
    real mosquitto on this very snippet, so the option is also checked to be accepted."""
    conf = (SYSTEMD / "mosquitto/nmvs-gateway.conf").read_text()
    assert "\nset_tcp_nodelay true\n" in conf


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[Broker]:
    """mosquitto with the shipped configuration snippet and ACL (paths and port made local)."""
    passwd = tmp_path / "nmvs-gateway.passwd"
    passwd.touch(mode=0o600)
    for user in ("nmvs-gateway", "lgo"):
        subprocess.run(
            [find_binary("mosquitto_passwd"), "-b", str(passwd), user, f"{user}-pw"],
            check=True,
            capture_output=True,
        )
    acl = tmp_path / "nmvs-gateway.acl"
    acl.write_text(
        (SYSTEMD / "mosquitto/nmvs-gateway.acl").read_text().replace("GATEWAY_ID", "counter-1")
    )
    port = free_port()
    conf = (SYSTEMD / "mosquitto/nmvs-gateway.conf").read_text()
    conf = conf.replace("/etc/mosquitto/nmvs-gateway.passwd", str(passwd))
    conf = conf.replace("/etc/mosquitto/nmvs-gateway.acl", str(acl))
    conf = conf.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
    conf += f"persistence false\nuser {getpass.getuser()}\nlog_dest stdout\n"
    conf_path = tmp_path / "mosquitto.conf"
    conf_path.write_text(conf)
    broker = Broker("127.0.0.1", port, conf_path, tmp_path / "mosquitto.log")
    broker.start()
    yield broker
    broker.stop()


def client(broker: Broker, user: str) -> aiomqtt.Client:
    return aiomqtt.Client(broker.host, broker.port, username=user, password=f"{user}-pw")


async def test_acl_lets_the_lgo_publish_requests_only(acl_broker: Broker) -> None:
    base = "nmvs/counter-1"
    async with (
        client(acl_broker, "nmvs-gateway") as gateway,
        client(acl_broker, "lgo") as lgo,
        asyncio.timeout(10),
    ):
        await gateway.subscribe(f"{base}/#", qos=1)
        await lgo.subscribe(f"{base}/#", qos=1)
        for forged in ("status", "scan", "result", "health"):
            await lgo.publish(f"{base}/{forged}", b"forged by the LGO", qos=1)
        # Sent after the forgeries on the same connection: mosquitto delivers in order, so had any
        # forgery passed, the gateway would receive it first.
        await lgo.publish(f"{base}/request", b"verify this pack", qos=1)
        await gateway.publish(f"{base}/result", b"pack verified", qos=1)
        gateway_saw = []
        async for message in gateway.messages:
            gateway_saw.append((str(message.topic), message.payload))
            if message.payload == b"pack verified":
                break
        lgo_saw = []
        async for message in lgo.messages:
            lgo_saw.append((str(message.topic), message.payload))
            if message.payload == b"pack verified":
                break
    assert gateway_saw == [
        (f"{base}/request", b"verify this pack"),
        (f"{base}/result", b"pack verified"),
    ]
    assert lgo_saw == gateway_saw
