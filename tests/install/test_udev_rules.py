"""The udev rules, run by the real udev of this machine against simulated scanners.

``udevadm verify`` exists only from systemd 254 (Debian 12 has 252), so besides it the rules run
through ``udevadm test`` — the whole Debian rule set plus ours, with udev's builtins — on device
trees of a fake sysfs (the same technique as systemd's own test suite, which sets
``SYSTEMD_DEVICE_VERIFY_SYSFS=0``). It runs in a private mount namespace where ``/sys``, ``/dev``,
``/run``, ``/etc/udev/rules.d`` and ``/etc/group`` are replaced, so this machine is untouched:
the kernel boundary (sysfs) is the only thing simulated.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.install.installer import default_source

RULES = default_source() / "systemd/udev/70-nmvs-gateway.rules"
SCANNER_VENDORS = {"0c2e": "honeywell", "23d0": "youjie", "05e0": "zebra", "05f9": "datalogic",
                   "1eab": "newland"}  # fmt: skip
SCANNER_GID = 64999  # nmvs-scanner in the namespace's /etc/group
USB = "devices/pci0000:00/0000:00:14.0/usb1/1-1"


@dataclass(frozen=True)
class Node:
    """A device node below a USB device: where it sits, its subsystem, its kernel identity."""

    relative: str  # below the USB interface
    subsystem: str  # class/... or bus/... in sysfs
    uevent: str


EVENT_NODE = Node(
    "0003:{VID}:{PID}.0001/input/input7/event7",
    "class/input",
    "MAJOR=13\nMINOR=71\nDEVNAME=input/event7\n",
)
ACM_NODE = Node("tty/ttyACM0", "class/tty", "MAJOR=166\nMINOR=0\nDEVNAME=ttyACM0\n")
HIDRAW_NODE = Node(
    "0003:{VID}:{PID}.0002/hidraw/hidraw0",
    "class/hidraw",
    "MAJOR=243\nMINOR=0\nDEVNAME=hidraw0\n",
)


def fake_sysfs(sys: Path, vendor: str, node: Node) -> str:
    """A USB device ``vendor``:0b61 with one interface holding ``node``; returns its syspath."""

    def directory(path: str, subsystem: str, files: dict[str, str]) -> None:
        folder = sys / path
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text)
        (sys / subsystem).mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(sys / subsystem, folder), folder / "subsystem")

    usb_files = {"uevent": "DEVTYPE=usb_device\n", "idVendor": f"{vendor}\n", "idProduct": "0b61\n",
                 "manufacturer": "Scanner maker\n", "product": "Scanner\n", "serial": "S1\n"}  # fmt: skip
    directory(USB, "bus/usb", usb_files)
    interface = f"{USB}/1-1:1.0"
    directory(
        interface, "bus/usb", {"uevent": "DEVTYPE=usb_interface\n", "bInterfaceClass": "03\n"}
    )
    relative = node.relative.format(VID=vendor.upper(), PID="0B61")
    parts = relative.split("/")
    for depth in range(1, len(parts)):
        middle = "/".join(parts[:depth])
        if middle.endswith(("/input", "/hidraw", "tty")):
            continue  # plain folders in sysfs
        subsystem = "bus/hid" if depth == 1 else node.subsystem
        directory(f"{interface}/{middle}", subsystem, {"uevent": ""})
    syspath = f"{interface}/{relative}"
    directory(syspath, node.subsystem, {"uevent": node.uevent})
    return syspath


@dataclass(frozen=True)
class UdevRun:
    output: str
    properties: dict[str, str]

    def assignments(self, key: str) -> list[tuple[str, str]]:
        """(rules file, value) of every ``GROUP``/``MODE``/``LINK`` assignment, in order."""
        pattern = rf"^\S+: (\S+?):\d+ {key} (\S+)$"
        return [(match[1], match[2]) for match in re.finditer(pattern, self.output, re.MULTILINE)]

    def diagnostics(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith(f"/etc/udev/rules.d/{RULES.name}:")]  # fmt: skip


def run_udev(tmp_path: Path, vendor: str, node: Node, rules: str | None = None) -> UdevRun:
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        pytest.skip("udevadm not installed (Debian package udev; .ci/setup installs it)")
    sys = tmp_path / "sys"
    syspath = fake_sysfs(sys, vendor, node)
    rules_dir = tmp_path / "rules.d"
    rules_dir.mkdir()
    (rules_dir / RULES.name).write_text(RULES.read_text() if rules is None else rules)
    group = tmp_path / "group"
    group.write_text(Path("/etc/group").read_text() + f"nmvs-scanner:x:{SCANNER_GID}:\n")
    script = (
        f"mount --bind {rules_dir} /etc/udev/rules.d && mount --bind {group} /etc/group && "
        f"mount --bind {sys} /sys && mount -t tmpfs tmpfs /dev && mount -t tmpfs tmpfs /run && "
        f"exec {udevadm} test --action=add /sys/{syspath}"
    )
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_DEVICE_VERIFY_SYSFS": "0"},
    )
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"cannot make a private mount namespace here: {done.stderr.strip()}")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"Reading rules file: /etc/udev/rules.d/{RULES.name}" in output, output
    properties = dict(re.findall(r"^([A-Z_]+)=(.*)$", done.stdout, re.MULTILINE))
    return UdevRun(output, properties)


@pytest.mark.parametrize("vendor", sorted(SCANNER_VENDORS))
def test_a_scanner_keyboard_node_goes_to_the_gateway_and_away_from_the_desktop(
    tmp_path: Path, vendor: str
) -> None:
    run = run_udev(tmp_path, vendor, EVENT_NODE)
    assert run.diagnostics() == []
    # Debian's 50-udev-default.rules gives it group "input" first; ours comes last and wins.
    assert run.assignments("GROUP")[-1] == (f"/etc/udev/rules.d/{RULES.name}", str(SCANNER_GID))
    assert run.assignments("MODE")[-1] == (f"/etc/udev/rules.d/{RULES.name}", "0660")
    assert run.properties["NMVS_SCANNER"] == SCANNER_VENDORS[vendor]
    assert run.properties["ID_SEAT"] == "none"
    assert run.properties["LIBINPUT_IGNORE_DEVICE"] == "1"
    assert "/dev/nmvs/keyboard-event7" in run.properties["DEVLINKS"].split()
    assert "systemd" in run.properties["TAGS"].split(":")


def test_an_ordinary_keyboard_is_left_alone(tmp_path: Path) -> None:
    run = run_udev(tmp_path, "046d", EVENT_NODE)  # Logitech: the POS keyboard, say
    assert run.diagnostics() == []
    assert all(file != f"/etc/udev/rules.d/{RULES.name}" for file, _ in run.assignments("GROUP"))
    assert run.assignments("GROUP")[-1][1] != str(SCANNER_GID)
    assert "NMVS_SCANNER" not in run.properties
    assert "ID_SEAT" not in run.properties and "LIBINPUT_IGNORE_DEVICE" not in run.properties
    assert "/dev/nmvs/" not in run.properties.get("DEVLINKS", "")


def test_a_serial_scanner_goes_to_the_gateway_and_away_from_modemmanager(tmp_path: Path) -> None:
    run = run_udev(tmp_path, "1eab", ACM_NODE)
    assert run.diagnostics() == []
    assert run.assignments("GROUP")[-1] == (f"/etc/udev/rules.d/{RULES.name}", str(SCANNER_GID))
    assert run.assignments("MODE")[-1] == (f"/etc/udev/rules.d/{RULES.name}", "0660")
    assert run.properties["ID_MM_DEVICE_IGNORE"] == "1"
    assert "/dev/nmvs/serial-ttyACM0" in run.properties["DEVLINKS"].split()


def test_a_hid_pos_scanner_goes_to_the_gateway(tmp_path: Path) -> None:
    run = run_udev(tmp_path, "05e0", HIDRAW_NODE)
    assert run.diagnostics() == []
    assert run.assignments("GROUP")[-1] == (f"/etc/udev/rules.d/{RULES.name}", str(SCANNER_GID))
    assert "/dev/nmvs/hidpos-hidraw0" in run.properties["DEVLINKS"].split()


def test_udev_reports_a_broken_rule(tmp_path: Path) -> None:
    # The checks above mean something: the same run flags a wrong key and an unknown group.
    broken = RULES.read_text().replace('ENV{ID_SEAT}="none"', 'ENVV{ID_SEAT}="none"')
    broken = broken.replace('GROUP="nmvs-scanner"', 'GROUP="nmvs-scanners"', 1)
    diagnostics = run_udev(tmp_path, "0c2e", EVENT_NODE, broken).diagnostics()
    assert any("Invalid key 'ENVV'" in line for line in diagnostics), diagnostics
    assert any("Unknown group 'nmvs-scanners'" in line for line in diagnostics), diagnostics


def test_udev_rules_pass_udevadm_verify() -> None:
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        pytest.skip("udevadm not installed (Debian package udev)")
    help_text = subprocess.run([udevadm, "--help"], capture_output=True, text=True).stdout
    if not re.search(r"^\s+verify\s", help_text, re.MULTILINE):
        pytest.skip("this udevadm has no 'verify' command (systemd 254+; Debian 12 has 252)")
    done = subprocess.run([udevadm, "verify", str(RULES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_never_hand_out_the_input_group() -> None:
    text = RULES.read_text()
    assert 'GROUP="input"' not in text
    vendors = dict(re.findall(r'^ATTRS\{idVendor\}=="(\w+)", ENV\{NMVS_SCANNER\}="(\w+)"$', text, re.MULTILINE))  # fmt: skip
    assert vendors == SCANNER_VENDORS
