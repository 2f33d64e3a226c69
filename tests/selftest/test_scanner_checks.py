"""Scanner checks: the capture layer's survey of real device nodes (a serial pty; no evdev device
in the test machine) turned into results, and the processes holding a device found in /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gateway.capture.command import survey
from gateway.capture.config import ScannerConfig, parse_scanners
from gateway.selftest.results import Status
from gateway.selftest.scanner_checks import Holder, holders, scanner_results
from tests.capture.test_serial import SerialPort


def statuses(found: list[Any]) -> dict[str, Status]:
    return {r.name: r.status for r in found}


def test_a_serial_scanner_on_a_real_pty(tmp_path: Path) -> None:
    port = SerialPort(tmp_path / "usb-Honeywell_1950g-if00")
    try:
        configs = parse_scanners([{"id": "till", "kind": "serial", "path": str(port.link)}])
        found = scanner_results(configs, survey(configs))
        assert statuses(found) == {
            "scanner.till.present": Status.OK,
            "scanner.till.access": Status.OK,
            "scanner.till.exclusive": Status.OK,
        }
        # another program opens the port (ModemManager does this to ttyACM devices)
        with open(port.link, "rb") as tty:
            other = subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(30)"], stdin=tty
            )
        try:
            exclusive = scanner_results(configs, survey(configs))[-1]
        finally:
            other.kill()
            other.wait()
        assert exclusive.status is Status.WARNING
        assert (
            f"is also open in pid {other.pid} ({sys.executable} -c import time" in exclusive.detail
        )
        assert "ModemManager" in exclusive.fix
    finally:
        port.close()


def test_missing_scanners_name_the_fix(tmp_path: Path) -> None:
    configs = parse_scanners(
        [
            {"id": "till", "kind": "evdev", "match": "0c2e:0b61"},
            {"id": "desk", "kind": "serial", "path": str(tmp_path / "ttyACM9")},
        ]
    )
    found = scanner_results(configs, survey(configs))
    assert [(r.name, r.status) for r in found] == [
        ("scanner.till.present", Status.FAIL),
        ("scanner.desk.present", Status.FAIL),
    ]
    assert found[0].detail == "no input device matches '0c2e:0b61' (unplugged?)"
    assert "nmvs-gateway scanners" in found[0].fix
    assert found[1].detail.endswith("ttyACM9 does not exist (unplugged, or wrong path)")


def test_no_scanner_configured_is_skipped() -> None:
    (only,) = scanner_results((), survey(()))
    assert only.status is Status.SKIPPED


EVDEV = ScannerConfig.from_toml({"id": "till", "kind": "evdev", "match": "any"}, 0)


def report(grab: str | None, problem: str | None = None) -> dict[str, Any]:
    """The survey's shape for one evdev scanner at /dev/input/event5 (no such node here)."""
    row = {"path": "/dev/input/event5", "vidpid": "0c2e:0b61", "name": "Honeywell 1950g"}
    return {
        "scanners": [{"id": "till", "kind": "evdev", "device": "/dev/input/event5"}],
        "input": [{**row, "grab": grab, "problem": problem}],
    }


def test_evdev_grab_outcomes() -> None:
    kiosk = Holder(4242, "/usr/bin/evtest --grab /dev/input/event5")
    daemon = Holder(17, "/opt/nmvs-gateway/bin/python /opt/nmvs-gateway/bin/nmvs-gateway run")
    busy = "busy: another process holds the grab (the running gateway, or evtest --grab)"

    def last(grab: str, found: list[Holder]) -> Any:
        return scanner_results([EVDEV], report(grab), lambda path: found)[-1]

    assert last("grabbable", []).status is Status.OK
    present = scanner_results([EVDEV], report("grabbable"), lambda path: [])[0]
    assert present.detail == (
        "evdev scanner at /dev/input/event5 (0c2e:0b61 'Honeywell 1950g'), layout auto"
    )
    by_daemon = last(busy, [daemon])
    assert by_daemon.status is Status.OK and "pid 17" in by_daemon.detail
    stolen = last(busy, [daemon, kiosk])
    assert stolen.status is Status.FAIL
    assert stolen.detail.endswith("open in pid 4242 (/usr/bin/evtest --grab /dev/input/event5)")
    assert last("keys down: not tested", []).status is Status.WARNING


def test_a_permission_problem_carries_the_exact_fix() -> None:
    problem = (
        "permission denied (/dev/input/event5 is group input, mode 0o660): install the udev rule "
        "from systemd/ that gives scanner nodes to group nmvs-scanner, and add the service user "
        "to nmvs-scanner"
    )
    found = scanner_results([EVDEV], report(None, problem), lambda path: [])
    assert found[-1].name == "scanner.till.access" and found[-1].status is Status.FAIL
    assert found[-1].fix.startswith("install the udev rule from systemd/")


def test_holders_reads_proc(tmp_path: Path) -> None:
    path = tmp_path / "device"
    path.write_text("")
    with open(path) as handle:
        child = subprocess.Popen(["sleep", "30"], stdin=handle)
    try:
        cmdline = Path(f"/proc/{child.pid}/cmdline")
        deadline = time.monotonic() + 5
        while cmdline.read_bytes() != b"sleep\x0030\x00" and time.monotonic() < deadline:
            time.sleep(0.005)  # forked but not exec'd yet: the command line is still ours
        found = holders(str(path))
    finally:
        child.kill()
        child.wait()
    assert [(h.pid, h.command) for h in found] == [(child.pid, "sleep 30")]
    assert holders(str(path)) == [] and os.getpid() not in [h.pid for h in found]
