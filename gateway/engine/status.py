"""``nmvs-gateway status``: the queue and the last NMVS exchanges, read from the engine database.

It reads the file a running gateway writes (WAL lets both work at once), so it shows the
durable truth: what is queued, since when, the last answer received, the last results.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from typing import Any

from gateway.engine.model import iso
from gateway.engine.report import add_state_dir, print_from_database
from gateway.engine.store import queue_summary

LAST_RESULTS = 10


def build_status(conn: sqlite3.Connection, now: float) -> dict[str, Any]:
    depth, reconciling, _ = queue_summary(conn)
    oldest = conn.execute(
        """SELECT id, op, accepted_at, attempts, last_error FROM transactions
           WHERE status IN ('queued', 'sending') AND collapsed_into IS NULL
           ORDER BY seq LIMIT 1"""
    ).fetchone()
    contact = conn.execute(
        """SELECT finished_at, return_code, latency_ms FROM attempts
           WHERE return_code IS NOT NULL ORDER BY finished_at DESC LIMIT 1"""
    ).fetchone()
    results = conn.execute(
        """SELECT id, op, status, outcome, nmvs, updated_at FROM transactions
           WHERE status NOT IN ('queued', 'sending') ORDER BY updated_at DESC, seq DESC LIMIT ?""",
        (LAST_RESULTS,),
    ).fetchall()
    return {
        "queue_depth": depth,
        "reconciling": reconciling,
        "oldest_queued": None
        if oldest is None
        else {
            "id": oldest["id"],
            "op": oldest["op"],
            "age_s": now - oldest["accepted_at"],
            "attempts": oldest["attempts"],
            "last_error": oldest["last_error"],
        },
        "last_nmvs_contact": None
        if contact is None
        else {
            "at": iso(contact["finished_at"]),
            "return_code": contact["return_code"],
            "latency_ms": contact["latency_ms"],
        },
        "last_results": [
            {
                "id": r["id"],
                "op": r["op"],
                "status": r["status"],
                "outcome": r["outcome"],
                "return_code": None if r["nmvs"] is None else json.loads(r["nmvs"])["return_code"],
                "at": iso(r["updated_at"]),
            }
            for r in results
        ],
    }


def render_text(status: dict[str, Any]) -> str:
    lines = [f"queue: {status['queue_depth']} waiting ({status['reconciling']} reconciling)"]
    oldest = status["oldest_queued"]
    if oldest is not None:
        lines.append(
            f"oldest: {oldest['op']} {oldest['id']} waiting {oldest['age_s'] / 60:.1f} min, "
            f"{oldest['attempts']} attempt(s), last error: {oldest['last_error'] or '-'}"
        )
    contact = status["last_nmvs_contact"]
    lines.append(
        "last NMVS contact: never"
        if contact is None
        else f"last NMVS contact: {contact['at']} ({contact['return_code']}, {contact['latency_ms']:.0f} ms)"
    )
    lines.append("last results:")
    for r in status["last_results"]:
        lines.append(
            f"  {r['at']}  {r['op']:<14} {r['status']:<9} {r['outcome']:<20} "
            f"{r['return_code'] or '-'}  {r['id']}"
        )
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    add_state_dir(parser)


def run(args: argparse.Namespace) -> int:
    return print_from_database(
        "status", args, lambda conn: build_status(conn, time.time()), render_text
    )
