"""What an LGO subscribed to the gateway's topics receives, shown as a table in the terminal.

Every message on ``<base>/+`` (status, scan, request, result; health only updates the footer)
becomes a row: time, topic, scanner or request id, operation, status, outcome or problems,
NMVS return code, alert flag. On a TTY the table is redrawn in place with plain ANSI codes (a
``queued`` result row turns into its final status); otherwise each row is appended as a line,
so logs and tests read the same story. The scenario driver waits on :meth:`LgoView.wait_for`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

COLUMNS = (
    ("time", 12),
    ("topic", 7),
    ("scanner / id", 24),
    ("op", 13),
    ("status", 8),
    ("outcome / problems", 36),
    ("NMVS code", 32),
    ("alert", 5),
)
CLEAR = "\x1b[H\x1b[2J"
BOLD, DIM, RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"


@dataclass(slots=True)
class Row:
    cells: tuple[str, ...]
    key: str | None = None  # a result's request id while it is queued (updated in place)
    caption: bool = False


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _who(result: dict[str, Any]) -> str:
    """A scan-driven transaction's id is ``op|scheme|code|serial|scan id``: show the scan."""
    ident = str(result.get("id"))
    if ident.count("|") == 4:
        return "auto ← scan …" + ident.rsplit("|", 1)[1][-6:]
    return ident


def _problems(problems: list[dict[str, Any]]) -> str:
    return ", ".join(
        p["code"] + ("(w)" if p.get("severity") == "warning" else "") for p in problems
    )


class LgoView:
    """Collects the messages an LGO receives and renders them; see the module docstring."""

    def __init__(self, base: str, out: TextIO, *, tty: bool, title: str = "") -> None:
        self.base = base
        self.out = out
        self.tty = tty
        self.rows: list[Row] = []
        self.scans: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.health: dict[str, Any] | None = None
        self.status: str | None = None
        self.title = title
        self._changed = asyncio.Condition()

    # -- input -----------------------------------------------------------------------------

    async def receive(self, topic: str, payload: bytes) -> None:
        kind = topic.removeprefix(self.base + "/")
        try:
            body = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = {"unreadable": payload[:40].decode("latin-1")}
        if not isinstance(body, dict):
            body = {"unreadable": str(body)[:40]}
        now = datetime.now().strftime("%H:%M:%S.%f")[:-3]  # the viewer's local clock
        if kind == "health":
            self.health = body
            if self.tty:
                self.render()  # the footer
        elif kind == "status":
            self.status = str(body.get("state"))
            self._add(
                Row((now, kind, str(body.get("gateway_id", "")), "", self.status, "", "", ""))
            )
        elif kind == "scan":
            self.scans.append(body)
            status = "ok" if body.get("ok") else "refused"
            problems = _problems(body.get("problems") or [])
            self._add(
                Row((now, kind, str(body.get("scanner_id")), "scan", status, problems, "", ""))
            )
        elif kind == "request":
            self.requests.append(body)
            target = "scan …" + str(body["scan_id"])[-6:] if "scan_id" in body else "pack"
            self._add(
                Row((now, kind, str(body.get("id")), str(body.get("op")), "sent", target, "", ""))
            )
        elif kind == "result":
            self.results.append(body)
            nmvs = body.get("nmvs") or {}
            code = str(nmvs.get("return_code") or "")
            if nmvs.get("state"):
                code += f" {nmvs['state']} {' '.join(nmvs.get('reasons') or ())}".rstrip()
            alert = "" if not nmvs else ("ALERT" if nmvs.get("alert") else "no")
            outcome = str(body.get("outcome") or "")
            problems = _problems(body.get("problems") or [])
            if problems:
                outcome = f"{outcome} {problems}".strip()
            cells = (now, kind, _who(body), str(body.get("op")), str(body.get("status")))
            row = Row((*cells, outcome, code, alert), key=str(body.get("id")))
            self._add(row, replace_queued=True)
        async with self._changed:
            self._changed.notify_all()

    def caption(self, text: str) -> None:
        self._add(Row((text,), caption=True))

    def _add(self, row: Row, *, replace_queued: bool = False) -> None:
        if replace_queued and self.tty:
            for index in range(len(self.rows) - 1, -1, -1):
                old = self.rows[index]
                if old.key == row.key and old.cells[4] == "queued":
                    self.rows[index] = row
                    self.render()
                    return
        self.rows.append(row)
        if self.tty:
            self.render()
        else:
            self.out.write(self._line(row) + "\n")
            self.out.flush()

    async def wait_for(self, predicate: Callable[[LgoView], bool], within: float) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    # -- queries the driver uses -------------------------------------------------------------

    def prevented(self, rule: str) -> int:
        """How many requests firewall rule ``rule`` kept from the NMVS (last health message)."""
        if self.health is None:
            return 0
        return int(self.health["week"]["prevented"].get(rule, 0))

    def final_results(self, request_id: str) -> list[dict[str, Any]]:
        return [r for r in self.results if r.get("id") == request_id and r["status"] != "queued"]

    def scan_result(self, scan_id: str) -> dict[str, Any] | None:
        """The final result of the transaction a scan started (policy ``on_scan``)."""
        for result in self.results:
            ident = str(result.get("id"))
            if ident.endswith("|" + scan_id) and result["status"] != "queued":
                return result
        return None

    # -- output ----------------------------------------------------------------------------

    @staticmethod
    def _line(row: Row) -> str:
        if row.caption:
            return f"▶ {row.cells[0]}"
        return "  ".join(
            _short(c, w).ljust(w) for c, (_, w) in zip(row.cells, COLUMNS, strict=True)
        ).rstrip()

    @staticmethod
    def header() -> str:
        return "  ".join(name.ljust(width) for name, width in COLUMNS).rstrip()

    def footer(self) -> str:
        health = self.health
        if health is None:
            return "health: (waiting for the first <base>/health message)"
        queue, nmvs, week = health["queue"], health["nmvs"], health["week"]
        prevented = sum(week["prevented"].values())
        scanners = " ".join(f"{s['id']}={s['state']}" for s in health["scanners"])
        online = {True: "online", False: "offline", None: "unknown"}[nmvs["online"]]
        return (
            f"health: {health['state']}  queue={queue['depth']}  nmvs={online}  "
            f"alerts={week['alerts']}  prevented={prevented}  {scanners}"
        )

    def render(self) -> None:
        size = shutil.get_terminal_size((120, 40))
        room = max(5, size.lines - 6)
        lines = [f"{BOLD}{self.title}{RESET}", f"{BOLD}{self.header()}{RESET}"]
        for row in self.rows[-room:]:
            text = self._line(row)[: size.columns]
            lines.append(f"{DIM}{text}{RESET}" if row.caption else text)
        lines.append(self.footer()[: size.columns])
        self.out.write(CLEAR + "\n".join(lines) + "\n")
        self.out.flush()
