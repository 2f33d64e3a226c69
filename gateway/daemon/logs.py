"""Logging for the daemon: structlog for our events, the standard library's records routed
through the same chain, JSON lines for the journal or a readable console renderer on a TTY.

No secret is ever written: a processor masks values of keys that name a secret and every
occurrence of a secret value (passwords read from files are registered at start), including
inside exception text. Under journald (``$JOURNAL_STREAM``) each JSON line starts with the
syslog priority prefix (``<3>`` …) so ``journalctl -p err`` works.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

MASK = "***"
SECRET_KEY_PARTS = ("password", "passwd", "secret", "token", "authorization", "credential")
PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2, "exception": 3}


class Redactor:
    """A structlog processor masking secrets by key name and by value."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
        for key, value in event.items():
            event[key] = self._clean(key, value)
        return event

    def _clean(self, key: str, value: Any) -> Any:
        lowered = key.lower()
        if any(part in lowered for part in SECRET_KEY_PARTS) and value not in (None, ""):
            return MASK
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, MutableMapping):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(key, v) for v in value]
        if isinstance(value, BaseException):
            return self.mask(repr(value))
        return value

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


def _journal_prefix(logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
    event["_priority"] = PRIORITY.get(str(event.get("level", "info")), 6)
    return event


class _PrefixedJson:
    def __init__(self) -> None:
        self._json = structlog.processors.JSONRenderer(sort_keys=False)

    def __call__(self, logger: WrappedLogger, name: str, event: EventDict) -> str:
        priority = event.pop("_priority", 6)
        rendered = self._json(logger, name, event)
        text = rendered.decode() if isinstance(rendered, bytes) else rendered
        return f"<{priority}>{text}"


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the standard library's root logger once, at daemon start."""
    out = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    final: list[Processor]
    if fmt == "json":
        final = [structlog.processors.format_exc_info, Redactor(secrets)]
        if os.environ.get("JOURNAL_STREAM"):
            final.append(_journal_prefix)
            renderer = _PrefixedJson()
        else:
            renderer = structlog.processors.JSONRenderer()
    else:
        final = [structlog.processors.format_exc_info, Redactor(secrets)]
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final, renderer],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # paho logs every packet at debug level through aiomqtt's logger: keep it quiet.
    logging.getLogger("mqtt").setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
