"""The MQTT contract with pharmacy software: topics, envelopes, and strict request parsing.

Documented for LGO vendors in ``docs/mqtt.md`` (with ``docs/asyncapi.yaml`` and one JSON Schema
per message in ``docs/schemas/``). Every payload is a JSON object carrying ``schema_version``;
the version changes only when a field changes meaning or disappears (adding fields does not).

Requests are parsed here, not by the engine, so that anything malformed is answered with a
``rejected`` result naming what to fix — never an exception that could reach the daemon.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.codes.pack import PackFormatError, PackIdentifier
from gateway.codes.problems import Problem, ProblemCode, error
from gateway.nmvs.backend import Operation

SCHEMA_VERSION = 1
MAX_REQUEST_BYTES = 16 * 1024
MAX_ID_LENGTH = 128
OVERSIZED_PARSE_LIMIT = 1024 * 1024  # larger requests are refused without reading their id
MAX_USER_LENGTH = 128
REQUEST_FIELDS = frozenset({"schema_version", "id", "op", "pack", "scan_id", "user"})
OPERATION_VALUES = frozenset(op.value for op in Operation)
OPERATIONS = ", ".join(op.value for op in Operation)


@dataclass(frozen=True, slots=True)
class Topics:
    """The five topics under the configurable base (default ``nmvs/<gateway id>``)."""

    base: str

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def scan(self) -> str:
        return f"{self.base}/scan"

    @property
    def request(self) -> str:
        return f"{self.base}/request"

    @property
    def result(self) -> str:
        return f"{self.base}/result"

    @property
    def health(self) -> str:
        return f"{self.base}/health"


def encode(body: dict[str, Any]) -> bytes:
    """One JSON payload, versioned; compact and UTF-8 (codes are never escaped or altered)."""
    return json.dumps(
        {"schema_version": SCHEMA_VERSION, **body}, ensure_ascii=False, separators=(",", ":")
    ).encode()


def status_payload(state: str, *, gateway_id: str, version: str) -> bytes:
    """``<base>/status``; the ``offline`` form is also the will, so it carries no timestamp."""
    return encode({"state": state, "gateway_id": gateway_id, "version": version})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class LgoRequest:
    """A well-formed request: exactly one of ``pack`` and ``scan_id`` is set."""

    id: str
    op: Operation
    pack: PackIdentifier | None
    scan_id: str | None
    user: str | None


class RequestRejected(Exception):
    """The request cannot be accepted; ``id``/``op`` are set when they could be read."""

    def __init__(self, detail: str, *, id: str | None = None, op: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.id = id
        self.op = op

    @property
    def problem(self) -> Problem:
        return error(ProblemCode.BAD_REQUEST, self.detail)


def parse_request(payload: bytes, *, max_bytes: int = MAX_REQUEST_BYTES) -> LgoRequest:
    """Parse ``<base>/request``; raises :class:`RequestRejected` naming the first thing to fix."""
    if len(payload) > max_bytes:
        raise RequestRejected(
            f"the request is {len(payload)} bytes, the limit is {max_bytes}",
            id=_id_of_oversized(payload),
        )
    try:
        data = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestRejected("the request is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise RequestRejected(f"the request is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RequestRejected("the request must be a JSON object")
    request_id = data.get("id")
    if not isinstance(request_id, str) or not request_id.strip():
        raise RequestRejected("id must be a non-empty string (your idempotency key)")
    if len(request_id) > MAX_ID_LENGTH or not request_id.isprintable():
        raise RequestRejected(
            f"id must be at most {MAX_ID_LENGTH} printable characters",
            id=request_id[:MAX_ID_LENGTH],
        )
    raw_op = data.get("op")
    op_text = raw_op if isinstance(raw_op, str) else None

    def reject(detail: str) -> RequestRejected:
        return RequestRejected(detail, id=request_id, op=op_text)

    unknown = sorted(set(data) - REQUEST_FIELDS)
    if unknown:
        raise reject(f"unknown field {unknown[0]!r}; the fields are id, op, pack, scan_id, user")
    if op_text not in OPERATION_VALUES:
        raise reject(f"op must be one of {OPERATIONS}, not {json.dumps(raw_op)}")
    op = Operation(op_text)
    user = data.get("user")
    if user is not None and (not isinstance(user, str) or len(user) > MAX_USER_LENGTH):
        raise reject(f"user must be a string of at most {MAX_USER_LENGTH} characters")
    has_pack, has_scan = "pack" in data, "scan_id" in data
    if has_pack == has_scan:
        raise reject("give exactly one of pack (the pack identifier) or scan_id (a scan's id)")
    if has_scan:
        scan_id = data["scan_id"]
        if not isinstance(scan_id, str) or not scan_id:
            raise reject("scan_id must be a non-empty string")
        return LgoRequest(request_id, op, None, scan_id, user)
    try:
        pack = PackIdentifier.from_json(data["pack"])
    except PackFormatError as exc:
        raise reject(str(exc)) from None
    return LgoRequest(request_id, op, pack, None, user)


def _id_of_oversized(payload: bytes) -> str | None:
    """The id of a request too large to accept, so the LGO can be told (bounded effort)."""
    if len(payload) > OVERSIZED_PARSE_LIMIT:
        return None
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    request_id = data.get("id") if isinstance(data, dict) else None
    if isinstance(request_id, str) and request_id.strip() and len(request_id) <= MAX_ID_LENGTH:
        return request_id
    return None


def rejection_result(rejected: RequestRejected) -> dict[str, Any]:
    """The ``<base>/result`` body for a request refused before reaching the engine."""
    return {
        "id": rejected.id,
        "op": rejected.op,
        "status": "rejected",
        "outcome": "bad_request",
        "pack": None,
        "nmvs": None,
        "problems": [rejected.problem.to_json()],
        "at": now_iso(),
    }
