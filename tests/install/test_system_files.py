"""The files under ``systemd/``: the unit (systemd-analyze verify and security), the udev rules
(udevadm verify where it exists, else parsed by ``udevadm test``), and the mosquitto ACL
enforced by a real mosquitto.

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

from gateway.install.installer import default_source
from tests.brokers import Broker, find_binary, free_port

SYSTEMD = default_source() / "systemd"
UNIT = SYSTEMD / "nmvs-gateway.service"
RULES = SYSTEMD / "udev/70-nmvs-gateway.rules"
EXEC_START = "/opt/nmvs-gateway/venv/bin/nmvs-gateway"
SCANNER_VENDORS = {"0c2e", "23d0", "05e0", "05f9", "1eab"}
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
    assert settings["LoadCredential"] == [
        "nmvs-password", "nmvs-client.pem", "nmvs-client.key", "mqtt-password"
    ]  # fmt: skip


def test_udev_rules_pass_udevadm_verify() -> None:
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        pytest.skip("udevadm not installed (Debian package udev)")
    help_text = subprocess.run([udevadm, "--help"], capture_output=True, text=True).stdout
    if not re.search(r"^\s+verify\s", help_text, re.MULTILINE):
        pytest.skip(
            "this udevadm has no 'verify' command (added in systemd 254; Debian 12 has 252)"
        )
    done = subprocess.run([udevadm, "verify", str(RULES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def udev_rule_diagnostics(rules: str, tmp_path: Path) -> list[str]:
    """What systemd 252's udev says about ``rules`` while it parses them: ``udevadm test`` in a
    private mount namespace where ``/etc/udev/rules.d`` holds only them and ``/etc/group`` knows
    group nmvs-scanner (this machine is left untouched)."""
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        pytest.skip("udevadm not installed (Debian package udev; .ci/setup installs it)")
    rules_dir = tmp_path / "rules.d"
    rules_dir.mkdir()
    (rules_dir / RULES.name).write_text(rules)
    group = tmp_path / "group"
    group.write_text(Path("/etc/group").read_text() + "nmvs-scanner:x:64999:\n")
    script = (
        f"mount --bind {rules_dir} /etc/udev/rules.d && mount --bind {group} /etc/group && "
        f"exec {udevadm} test --action=add /sys/class/mem/null"
    )
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True
    )
    if "unshare" in done.stderr and done.returncode != 0:
        pytest.skip(f"cannot make a private mount namespace here: {done.stderr.strip()}")
    output = done.stdout + done.stderr
    assert f"Reading rules file: /etc/udev/rules.d/{RULES.name}" in output, output
    return [
        line for line in output.splitlines() if line.startswith(f"/etc/udev/rules.d/{RULES.name}:")
    ]


def test_udev_rules_parse_without_a_diagnostic(tmp_path: Path) -> None:
    assert udev_rule_diagnostics(RULES.read_text(), tmp_path) == []


def test_udev_parse_check_does_report_a_broken_rule(tmp_path: Path) -> None:
    broken = RULES.read_text().replace('ENV{ID_SEAT}="none"', 'ENVV{ID_SEAT}="none"')
    broken = broken.replace('GROUP="nmvs-scanner"', 'GROUP="nmvs-scanners"', 1)
    diagnostics = udev_rule_diagnostics(broken, tmp_path)
    assert any("Invalid key 'ENVV'" in line for line in diagnostics), diagnostics
    assert any("Unknown group 'nmvs-scanners'" in line for line in diagnostics), diagnostics


def test_udev_rules_give_every_known_scanner_node_to_the_scanner_group() -> None:
    rules = [line for line in RULES.read_text().splitlines() if line and not line.startswith("#")]
    vendors = {match[1] for line in rules for match in re.finditer(r'ATTRS\{idVendor\}=="(\w+)", ENV\{NMVS_SCANNER\}="\w+"$', line)}  # fmt: skip
    assert vendors == SCANNER_VENDORS
    device_rules = {line.split('"')[1]: line for line in rules if line.startswith("SUBSYSTEM==")}
    assert set(device_rules) == {"input", "tty", "hidraw"}
    for rule in device_rules.values():
        assert 'GROUP="nmvs-scanner", MODE="0660", SYMLINK+="nmvs/' in rule
    assert 'ENV{ID_SEAT}="none", ENV{LIBINPUT_IGNORE_DEVICE}="1"' in device_rules["input"]
    assert 'KERNEL=="event*"' in device_rules["input"]
    assert 'ENV{ID_MM_DEVICE_IGNORE}="1"' in device_rules["tty"]
    assert 'GROUP="input"' not in RULES.read_text()
    # Nothing reaches the device rules unless a vendor line matched first.
    assert rules.index('ENV{NMVS_SCANNER}=="", GOTO="nmvs_gateway_end"') < rules.index(
        device_rules["input"]
    )


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
