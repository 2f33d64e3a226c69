"""The self-test's unit of output: one :class:`CheckResult` per check, and the two ways to show
a list of them (a table in plain words for the technician, a JSON document for machines).

Every check is a small function returning ``CheckResult`` values, so each can be tested alone;
the command only runs them and prints what they return.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAIL = "fail"
    SKIPPED = "skipped"  # could not be run (nothing configured, or a check it depends on failed)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one check found. ``fix`` says what to do, in plain words; empty when all is well."""

    name: str  # dotted, stable: "nmvs.certificate", "scanner.counter-1.grab"
    status: Status
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


def ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Status.OK, detail)


def warning(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.WARNING, detail, fix)


def fail(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, detail, fix)


def skipped(name: str, detail: str, fix: str = "") -> CheckResult:
    return CheckResult(name, Status.SKIPPED, detail, fix)


def exit_code(results: Iterable[CheckResult]) -> int:
    """0 only when nothing failed (warnings and skipped checks do not fail the self-test)."""
    return 1 if any(r.status is Status.FAIL for r in results) else 0


def counts(results: Sequence[CheckResult]) -> dict[str, int]:
    return {status.value: sum(r.status is status for r in results) for status in Status}


def to_json(results: Sequence[CheckResult]) -> dict[str, Any]:
    """The ``--json`` document."""
    return {
        "ok": exit_code(results) == 0,
        "counts": counts(results),
        "checks": [r.to_json() for r in results],
    }


def dumps(results: Sequence[CheckResult]) -> str:
    return json.dumps(to_json(results), indent=2, ensure_ascii=False)


_MARK = {Status.OK: "ok", Status.WARNING: "WARNING", Status.FAIL: "FAIL", Status.SKIPPED: "skipped"}
_WIDTH = 100


def render(results: Sequence[CheckResult]) -> str:
    """The technician's table: status, check, what was found; the fix under each problem."""
    name_width = max([len("check"), *(len(r.name) for r in results)])
    status_width = max(len(mark) for mark in _MARK.values())
    indent = " " * (status_width + name_width + 4)
    lines = [f"{'status':<{status_width}}  {'check':<{name_width}}  result", "-" * _WIDTH]
    for r in results:
        detail = textwrap.wrap(r.detail, _WIDTH - len(indent)) or [""]
        lines.append(f"{_MARK[r.status]:<{status_width}}  {r.name:<{name_width}}  {detail[0]}")
        lines.extend(indent + more for more in detail[1:])
        if r.fix and r.status is not Status.OK:
            fix = textwrap.wrap("fix: " + r.fix, _WIDTH - len(indent) - 2)
            lines.append(indent + fix[0])
            lines.extend(indent + "  " + more for more in fix[1:])
    total = counts(results)
    lines.append("-" * _WIDTH)
    lines.append(
        f"{total['ok']} ok, {total['warning']} warning(s), {total['fail']} failed, "
        f"{total['skipped']} skipped: "
        + ("FAILED - fix the lines marked FAIL" if total["fail"] else "nothing failed")
    )
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class NmvsReport:
    """What a backend's self-test probe found, and the national system's clock if it saw it."""

    results: list[CheckResult]
    server_time: datetime | None  # the NMVS's clock, for the host clock check
    time_source: str
