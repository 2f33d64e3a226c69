"""Logging: JSON lines (with journald priority prefixes), console on a TTY, secrets masked
everywhere — event fields, stdlib messages and exception text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from gateway.daemon.logs import configure_logging

SECRET = "Pa55word-for-NMVS"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)


def test_json_lines_mask_secrets_by_key_and_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out = io.StringIO()
    configure_logging("info", "json", secrets=[SECRET], stream=out)
    log = structlog.get_logger("gateway.test")
    log.info(
        "connecting", password="hunter2", url=f"https://u:{SECRET}@host", nested={"token": "t"}
    )
    logging.getLogger("gateway.engine").warning("login failed for %s", SECRET)
    try:
        raise RuntimeError(f"bad password {SECRET}")
    except RuntimeError:
        log.exception("crashed")
    log.debug("hidden")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert SECRET not in out.getvalue() and "hunter2" not in out.getvalue()
    assert lines[0]["event"] == "connecting"
    assert lines[0]["password"] == "***"
    assert lines[0]["url"] == "https://u:***@host"
    assert lines[0]["nested"] == {"token": "***"}
    assert lines[0]["level"] == "info" and lines[0]["timestamp"].endswith("Z")
    assert lines[1]["event"] == "login failed for ***"
    assert lines[1]["logger"] == "gateway.engine"
    assert "RuntimeError: bad password ***" in lines[2]["exception"]
    assert len(lines) == 3


def test_under_journald_each_line_carries_its_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    structlog.get_logger().error("broken", what="x")
    structlog.get_logger().info("fine")
    first, second = out.getvalue().splitlines()
    assert first.startswith("<3>{") and json.loads(first[3:])["what"] == "x"
    assert second.startswith("<6>{")


def test_console_renderer_when_asked() -> None:
    out = io.StringIO()
    configure_logging("info", "console", secrets=[SECRET], stream=out)
    structlog.get_logger().info("started", detail=SECRET)
    text = out.getvalue()
    assert "started" in text and "detail=***" in text and not text.startswith("{")
