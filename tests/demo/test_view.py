"""The LGO's view: one row per MQTT message, a queued result updated in place on a TTY and
appended when piped; health only feeds the footer and the firewall counts."""

from __future__ import annotations

import io
import json

from gateway.demo.view import CLEAR, LgoView

BASE = "nmvs/demo"
VERIFY_ID = "verify|GTIN|03400912345678|SERIAL1|01JDEMO0000000000000ABC123"


def result(status: str, outcome: str | None, **nmvs: object) -> bytes:
    body = {
        "id": VERIFY_ID,
        "op": "verify",
        "status": status,
        "outcome": outcome,
        "nmvs": nmvs or None,
        "problems": [],
    }
    return json.dumps(body).encode()


def health(prevented: dict[str, int]) -> bytes:
    body = {
        "state": "ok",
        "queue": {"depth": 0},
        "nmvs": {"online": True},
        "week": {"alerts": 0, "prevented": prevented},
        "scanners": [{"id": "till-1", "state": "ready"}],
    }
    return json.dumps(body).encode()


DONE = {"return_code": "NMVS_SUCCESS", "state": "INACTIVE", "reasons": ["SUPPLIED"], "alert": False}


async def test_piped_every_message_is_a_line() -> None:
    out = io.StringIO()
    view = LgoView(BASE, out, tty=False)
    scan = {
        "id": "01JDEMO",
        "scanner_id": "till-1",
        "ok": False,
        "problems": [{"code": "GS_MISSING", "severity": "error"}],
    }
    await view.receive(f"{BASE}/scan", json.dumps(scan).encode())
    await view.receive(f"{BASE}/result", result("queued", None))
    await view.receive(f"{BASE}/result", result("done", "done", **DONE))
    await view.receive(f"{BASE}/health", health({"2_repeat_scan": 1}))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and CLEAR not in out.getvalue()
    assert lines[0].split()[1:] == ["scan", "till-1", "scan", "refused", "GS_MISSING"]
    assert "auto ← scan …ABC123" in lines[1] and lines[1].split()[-1] == "queued"
    assert lines[2].split()[-6:] == ["done", "done", "NMVS_SUCCESS", "INACTIVE", "SUPPLIED", "no"]
    assert view.prevented("2_repeat_scan") == 1 and view.prevented("4_not_active") == 0
    assert view.scan_result("01JDEMO0000000000000ABC123") is not None


async def test_on_a_tty_the_queued_row_turns_into_the_final_one() -> None:
    out = io.StringIO()
    view = LgoView(BASE, out, tty=True, title="demo")
    await view.receive(f"{BASE}/result", result("queued", None))
    await view.receive(f"{BASE}/result", result("done", "done", **DONE))
    await view.receive(f"{BASE}/health", health({}))
    screen = out.getvalue().rsplit(CLEAR, 1)[1].splitlines()
    rows = [line for line in screen if "auto ← scan" in line]
    assert len(rows) == 1 and " done " in rows[0] and "queued" not in rows[0]
    assert screen[-1].startswith("health: ok  queue=0  nmvs=online  alerts=0  prevented=0")


async def test_an_unreadable_payload_is_shown_not_fatal() -> None:
    out = io.StringIO()
    view = LgoView(BASE, out, tty=False)
    await view.receive(f"{BASE}/status", b"\xff\xfe not json")
    assert out.getvalue().split()[1] == "status"
