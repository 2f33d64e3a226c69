"""Host checks: clock offset, free disk in the state directory, the engine database's integrity
and the age of the oldest queued transaction.

The database is opened read-only through the engine's own
:func:`~gateway.engine.store.open_existing` (same integrity check and error text as the daemon;
run as root, the self-test leaves no file the service's user cannot open); the figures come from
its
:func:`~gateway.engine.store.queue_summary`. Times are passed in, so the checks are pure
functions of what they are given plus the files they look at.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from gateway.engine.model import StoreError
from gateway.engine.store import FILENAME, open_existing, queue_summary
from gateway.selftest.results import CheckResult, fail, ok, skipped, warning

CLOCK_WARNING_S = 60.0  # undo windows (10 days, counted from NMVS timestamps) tolerate this
CLOCK_FAIL_S = 3600.0
DISK_WARNING_BYTES = 500 * 1024 * 1024
DISK_FAIL_BYTES = 50 * 1024 * 1024
QUEUE_WARNING_S = 3600.0  # same default as the engine's alarm_queued_age


def check_clock(server_time: datetime | None, local_time: datetime, source: str) -> CheckResult:
    """Compare our clock with the NMVS's (``source`` says where its time came from)."""
    name = "host.clock"
    if server_time is None:
        return skipped(name, "no time from the NMVS to compare with (see the NMVS checks)")
    offset = (local_time - server_time).total_seconds()
    where = "ahead of" if offset > 0 else "behind"
    detail = f"this PC is {abs(offset):.1f} s {where} the NMVS ({source})"
    fix = (
        "enable time synchronisation (timedatectl set-ntp true) and check the time zone: undo "
        "deadlines and certificate checks depend on the clock"
    )
    if abs(offset) > CLOCK_FAIL_S:
        return fail(name, detail, fix)
    if abs(offset) > CLOCK_WARNING_S:
        return warning(name, detail, fix)
    return ok(name, detail)


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(state_dir: Path) -> CheckResult:
    name = "host.disk"
    where = _existing_parent(state_dir)
    try:
        free = shutil.disk_usage(where).free
    except OSError as exc:
        return fail(name, f"cannot measure free space at {where}: {exc.strerror}", "check the disk")
    detail = f"{free / 1024**3:.2f} GiB free for {state_dir}"
    fix = "free disk space (old logs: journalctl --vacuum-size=200M) or use a larger disk"
    if free < DISK_FAIL_BYTES:
        return fail(name, detail + ": the queue could stop accepting scans", fix)
    if free < DISK_WARNING_BYTES:
        return warning(name, detail, fix)
    return ok(name, detail)


def check_database(state_dir: Path, now: float) -> list[CheckResult]:
    """Integrity of the engine database and the oldest queued transaction (``now``: epoch s)."""
    path = state_dir / FILENAME
    if not path.is_file():
        return [
            warning(
                "host.database",
                f"no engine database at {path}: the gateway has not run yet here",
                "start the gateway (systemctl start nmvs-gateway), or check gateway.state_dir",
            )
        ]
    try:
        store = open_existing(state_dir)
    except StoreError as exc:
        return [
            fail(
                "host.database",
                str(exc),
                f"stop the gateway, move {path} aside and restore it from a backup; transactions "
                "in it that were not sent must be checked in the NMVS portal",
            )
        ]
    try:
        depth, reconciling, oldest = store.read(queue_summary)
    finally:
        store.close()
    results = [ok("host.database", f"{path}: integrity check passed")]
    name = "host.queue"
    if oldest is None:
        results.append(ok(name, "no transaction waiting for the NMVS"))
        return results
    age = max(0.0, now - oldest)
    detail = (
        f"{depth} transaction(s) waiting ({reconciling} being confirmed); the oldest for "
        f"{_duration(age)}"
    )
    if age > QUEUE_WARNING_S:
        results.append(
            warning(
                name,
                detail,
                "check the NMVS link and credentials above; the gateway sends the queue as soon "
                "as the NMVS answers",
            )
        )
    else:
        results.append(ok(name, detail))
    return results


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
