"""Scanner checks: each configured scanner present, accessible (with the exact permission fix),
and read exclusively — an evdev scanner must be grabbable (EVIOCGRAB) so that no other program
receives its keystrokes; a serial port must not be held open by another program.

The device inspection is the capture layer's (:func:`gateway.capture.command.survey`, the same
report ``nmvs-gateway scanners`` prints); this module turns it into check results and, when a
device is busy, names the processes holding it open (from ``/proc``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.capture.config import ScannerConfig
from gateway.selftest.results import CheckResult, fail, ok, skipped, warning

PRESENT_FIX = (
    "plug the scanner in, or correct 'match' / 'path' in its [[scanner]] table "
    "(nmvs-gateway scanners lists every device and its identifiers)"
)


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int
    command: str

    @property
    def is_gateway(self) -> bool:
        return "nmvs-gateway" in self.command and " run" in self.command

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})"


def holders(path: str, proc: Path = Path("/proc")) -> list[Holder]:
    """Processes with ``path`` open (those whose ``/proc/<pid>/fd`` this user may read)."""
    target = os.path.realpath(path)
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
            if target not in links:
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # another user's process, or it exited meanwhile
        command = " ".join(a.decode(errors="replace") for a in argv if a) or entry.name
        found.append(Holder(int(entry.name), command[:120]))
    return found


def _joined(found: Sequence[Holder]) -> str:
    return ", ".join(str(h) for h in found)


def scanner_results(
    configs: Sequence[ScannerConfig],
    report: dict[str, Any],
    found_holders: Callable[[str], list[Holder]] = holders,
) -> list[CheckResult]:
    """Check results from the capture layer's survey ``report`` of ``configs``."""
    if not configs:
        return [
            skipped(
                "scanner",
                "no [[scanner]] table in the configuration",
                "add one per scanner (nmvs-gateway scanners suggests the lines)",
            )
        ]
    inputs = {row["path"]: row for row in report["input"]}
    results = []
    for config, entry in zip(configs, report["scanners"], strict=True):
        name = f"scanner.{config.id}"
        if "layout_text" in entry:
            results.append(_learned_layout(name, config, entry))
        device = entry["device"]
        if device is None:
            results.append(fail(f"{name}.present", entry["problem"], PRESENT_FIX))
            continue
        row = inputs.get(device, {})
        results.append(ok(f"{name}.present", _identity(config, device, row)))
        problem = row.get("problem") or entry.get("problem")
        if problem:
            fix = problem.split(": ", 1)[1] if ": " in problem else problem
            results.append(fail(f"{name}.access", problem, fix))
            continue
        results.append(ok(f"{name}.access", f"{device} can be opened by this user"))
        results.append(_exclusive(name, device, row.get("grab"), found_holders(device)))
    return results


def _learned_layout(name: str, config: ScannerConfig, entry: dict[str, Any]) -> CheckResult:
    """What a ``layout = "auto"`` scanner's scans have shown (``nmvs-gateway scanners`` too)."""
    belief = entry["layout"]
    if belief is not None and belief["settled"] and not belief["misfits"]:
        return ok(f"{name}.layout", entry["layout_text"])
    return warning(
        f"{name}.layout",
        entry["layout_text"],
        "scan a few packs; or scan the calibration card once (nmvs-gateway selftest "
        f"--calibrate {config.id}), which settles it, or set layout in its [[scanner]] table",
    )


def _identity(config: ScannerConfig, device: str, row: dict[str, Any]) -> str:
    """``evdev scanner at /dev/input/event5 (0c2e:0b61 'Honeywell 1950g'), layout fr``."""
    seen = f" ({row['vidpid']} {row['name']!r})" if row.get("vidpid") else ""
    layout = f", layout {config.decode.keyboard.layout}" if config.match is not None else ""
    return f"{config.kind.value} scanner at {device}{seen}{layout}"


def _exclusive(name: str, device: str, grab: str | None, found: list[Holder]) -> CheckResult:
    check = f"{name}.exclusive"
    gateway = [h for h in found if h.is_gateway]
    others = [h for h in found if not h.is_gateway]
    if grab is None:  # serial or HID POS: exclusive when nobody else has it open
        if gateway and not others:
            return ok(check, f"read by the running gateway ({_joined(gateway)})")
        if others:
            return warning(
                check,
                f"{device} is also open in {_joined(others)}: it may take the scanner's data",
                "stop that program (e.g. ModemManager: systemctl disable --now ModemManager)",
            )
        return ok(check, f"no other program has {device} open")
    if grab == "grabbable":
        return ok(check, "exclusive grab works: no other program will receive its keystrokes")
    if grab.startswith("busy"):
        if gateway and not others:
            return ok(check, f"grabbed by the running gateway ({_joined(gateway)})")
        culprit = f"; open in {_joined(others)}" if others else ""
        return fail(
            check,
            f"another program holds the exclusive grab{culprit}",
            "stop that program (evtest --grab, a kiosk or wedge tool), then run the self-test "
            "again; run as root to see every process",
        )
    if grab.startswith("keys down"):
        return warning(check, f"not tested: {grab}", "release the trigger and run again")
    return fail(check, f"grab test: {grab}", "unplug and replug the scanner, then run again")
