"""``nmvs-gateway report``: the alert typology of the national weekly analyses, from our database.

Counts and rates per NMVS return code, per scanner and per decode problem, the alerts each
firewall rule prevented, and the queue. A scanner whose alert rate falls in France MVO's bands
(> 7 %, 3–7 %, 1–3 % of its scans) is flagged: in France half of all false alerts came from a
few hundred misconfigured scanners.

The database is found with ``--config FILE`` (the daemon's ``[gateway] state_dir``) or
``--state-dir DIR`` and opened read-only. Exit codes (also for ``status``): 0, 1 when the
database cannot be read, 78 for a configuration problem.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from gateway.engine.model import StoreError, iso
from gateway.engine.store import open_existing, prevented_since, queue_summary

# The bands of France MVO's weekly alert analysis per pharmacy: alert rate per scan → label
BANDS: tuple[tuple[float, str], ...] = (
    (0.07, "over 7 %: check this scanner now"),
    (0.03, "3-7 %: check this scanner's configuration"),
    (0.01, "1-3 %: watch this scanner"),
)


def band(rate: float) -> str | None:
    for floor, label in BANDS:
        if rate > floor:
            return label
    return None


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def build_report(conn: sqlite3.Connection, since: float, now: float) -> dict[str, Any]:
    """The report as plain data (the ``--json`` output)."""
    sent = conn.execute(
        "SELECT count(*) FROM attempts WHERE started_at >= ? AND return_code IS NOT NULL",
        (since,),
    ).fetchone()[0]
    codes = [
        {
            "return_code": row[0],
            "count": row[1],
            "alert": bool(row[2]),
            "hub_code": row[3],
            "rate": _rate(row[1], sent),
        }
        for row in conn.execute(
            """SELECT return_code, count(*), max(alert), max(hub_code) FROM attempts
               WHERE started_at >= ? AND return_code IS NOT NULL
               GROUP BY return_code ORDER BY count(*) DESC, return_code""",
            (since,),
        )
    ]
    # Every physical scan counts, as in <base>/health (counts.scans); a collapsed repeat (a
    # trigger bounce, rule 2) is one of them, counted apart, and the rate is per distinct scan.
    scans = Counter[str]()
    repeats = Counter[str]()
    decode_errors = Counter[str]()
    problems = Counter[str]()
    for scanner_id, ok, problem_json, collapsed_into in conn.execute(
        "SELECT scanner_id, ok, problems, collapsed_into FROM scans WHERE at >= ?",
        (since,),
    ):
        scans[scanner_id] += 1
        if collapsed_into is not None:
            repeats[scanner_id] += 1
            continue
        if not ok:
            decode_errors[scanner_id] += 1
        for problem in json.loads(problem_json):
            problems[problem["code"]] += 1
    alerts = Counter[str]()
    for scanner_id, count in conn.execute(
        """SELECT scanner_id, sum(alert) FROM attempts
           WHERE started_at >= ? AND scanner_id IS NOT NULL GROUP BY scanner_id""",
        (since,),
    ):
        alerts[scanner_id] = int(count or 0)
    scanners = []
    for scanner_id in sorted(set(scans) | set(alerts)):
        rate = _rate(alerts[scanner_id], scans[scanner_id] - repeats[scanner_id])
        scanners.append(
            {
                "scanner_id": scanner_id,
                "scans": scans[scanner_id],
                "repeats": repeats[scanner_id],
                "decode_errors": decode_errors[scanner_id],
                "alerts": alerts[scanner_id],
                "alert_rate": rate,
                "flag": band(rate),
            }
        )
    depth, _, oldest = queue_summary(conn)
    total_alerts = sum(c["count"] for c in codes if c["alert"])
    return {
        "since": iso(since),
        "until": iso(now),
        "sent": sent,
        "alerts": total_alerts,
        "alert_rate": _rate(total_alerts, sent),
        "return_codes": codes,
        "scanners": scanners,
        "decode_problems": dict(sorted(problems.items())),
        "prevented": prevented_since(conn, since),
        "queue": {"depth": depth, "oldest_age_s": None if oldest is None else now - oldest},
    }


def render_text(report: dict[str, Any]) -> str:
    lines = [
        f"NMVS report {report['since']} .. {report['until']}",
        f"sent {report['sent']}, alerts {report['alerts']} ({report['alert_rate']:.2%})",
        "",
        "return code                          count    rate  alert  hub",
    ]
    for code in report["return_codes"]:
        lines.append(
            f"{code['return_code']:<36} {code['count']:>5} {code['rate']:>7.2%}  "
            f"{'yes' if code['alert'] else 'no':<5}  {code['hub_code'] or '-'}"
        )
    lines += ["", "scanner              scans  repeats  decode errors  alerts    rate  flag"]
    for s in report["scanners"]:
        lines.append(
            f"{s['scanner_id']:<20} {s['scans']:>5}  {s['repeats']:>7}  {s['decode_errors']:>13}  "
            f"{s['alerts']:>6} "
            f"{s['alert_rate']:>7.2%}  {s['flag'] or '-'}"
        )
    lines += ["", "decode problem                 count"]
    lines += [f"{code:<30} {count:>5}" for code, count in report["decode_problems"].items()]
    lines += ["", "alerts prevented by firewall rule"]
    lines += [f"  {rule:<22} {count:>5}" for rule, count in report["prevented"].items()]
    queue = report["queue"]
    age = "-" if queue["oldest_age_s"] is None else f"{queue['oldest_age_s'] / 60:.1f} min"
    lines += ["", f"queue: {queue['depth']} waiting, oldest {age}"]
    return "\n".join(lines)


def parse_since(text: str) -> float:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since must be a date like 2026-11-16, not {text!r}"
        ) from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def add_state_dir(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--config",
        metavar="FILE",
        help="the gateway's TOML configuration: its [gateway] state_dir holds the database",
    )
    where.add_argument(
        "--state-dir",
        metavar="DIR",
        help="the gateway's state directory (holds engine.sqlite3)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def configure(parser: argparse.ArgumentParser) -> None:
    add_state_dir(parser)
    parser.add_argument(
        "--since",
        type=parse_since,
        metavar="DATE",
        help="start of the period (YYYY-MM-DD, UTC; default: Monday of this week)",
    )


def print_from_database(
    command: str,
    args: argparse.Namespace,
    build: Callable[[sqlite3.Connection], dict[str, Any]],
    render: Callable[[dict[str, Any]], str],
) -> int:
    """Open the database named by ``--state-dir`` or ``--config``, build the figures, print text
    or JSON."""
    from gateway.configfile import ConfigError
    from gateway.daemon.config import EXIT_CONFIG, load_gateway_settings

    try:
        state_dir = args.state_dir or load_gateway_settings(args.config).state_dir
        store = open_existing(state_dir)
    except ConfigError as exc:
        print(f"nmvs-gateway {command}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreError as exc:
        print(f"nmvs-gateway {command}: {exc}", file=sys.stderr)
        return 1
    try:
        figures = store.read(build)
    finally:
        store.close()
    print(json.dumps(figures, indent=2) if args.json else render(figures))
    return 0


def run(args: argparse.Namespace) -> int:
    from gateway.engine.engine import week_start

    now = time.time()
    since = args.since if args.since is not None else week_start(now)
    return print_from_database(
        "report", args, lambda conn: build_report(conn, since, now), render_text
    )
