"""Solidsoft answers read into the gateway's results: JSON bodies, per-pack results, tokens.

Pure (no I/O). The HTTP status says what the answer is (its class digit must agree with the
operation code's first digit, else the status wins); :mod:`gateway.nmvs.solidsoft.codes` names
the details; ``alertId`` (``uprc`` inside a bulk result) is the alert the system raised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.nmvs.backend import BulkPackResult, NmvsResult
from gateway.nmvs.solidsoft.codes import STATUS_OF_CLASS, meaning, parse_code, reported_state
from gateway.strictjson import DuplicateKey, unique_keys

MAX_TEXT = 500  # of the system's information/warning texts kept in a result


class UnreadableAnswer(ValueError):
    """The body is not the JSON object the interface promises; the message says why."""


def json_object(body: bytes) -> dict[str, Any]:
    """The answer's JSON object; an empty body is an empty object (a bare 429 or 503)."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body, object_pairs_hook=unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError, DuplicateKey, RecursionError) as exc:
        raise UnreadableAnswer(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UnreadableAnswer("the JSON answer is not an object")
    return data


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value[:MAX_TEXT] if isinstance(value, str) and value.strip() else None


def result_of(
    status: int,
    data: dict[str, Any],
    *,
    client_trx_id: str,
    server_time: datetime | None,
    alert_key: str = "alertId",
) -> NmvsResult:
    """One pack's answer (a single request, or one entry of a bulk result)."""
    code = parse_code(data.get("operationCode"))
    found = meaning(status, code)
    alert_id = _text(data, alert_key)
    state = reported_state(data.get("state"))
    said = " ".join(t for t in (_text(data, "information"), _text(data, "warning")) if t)
    return NmvsResult(
        answer_class=found.answer_class,
        return_code=code.raw if code is not None else f"HTTP_{status}",
        description=said or found.en,
        message=found.en,
        message_fr=found.fr,
        alert=alert_id is not None,
        hub_code=found.hub_code if alert_id is not None else None,
        state=state[0] if state else None,
        reasons=state[1] if state else (),
        nmvs_trx_id=None,
        client_trx_id=client_trx_id,
        server_time=server_time,
        alert_id=alert_id,
    )


def bulk_packs(data: dict[str, Any], client_trx_id: str) -> tuple[BulkPackResult, ...]:
    """The per-pack results of a processed bulk or recovery request, in request order."""
    packs = data.get("packs")
    if not isinstance(packs, list):
        raise UnreadableAnswer("a bulk result without a 'packs' list")
    results: list[BulkPackResult] = []
    for position, entry in enumerate(packs):
        pack = entry.get("pack") if isinstance(entry, dict) else None
        result = entry.get("result") if isinstance(entry, dict) else None
        serial = pack.get("serialNumber") if isinstance(pack, dict) else None
        if not (isinstance(serial, str) and isinstance(result, dict)):
            raise UnreadableAnswer(f"bulk result entry {position} lacks pack.serialNumber/result")
        code = parse_code(result.get("operationCode"))
        status = STATUS_OF_CLASS.get(code.http_class, 0) if code is not None else 0
        one = result_of(
            status, result, client_trx_id=client_trx_id, server_time=None, alert_key="uprc"
        )
        results.append(BulkPackResult(serial, one))
    return tuple(results)


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    lifetime: float  # seconds, as the identity server said


def token_of(data: dict[str, Any]) -> Token:
    """An OAuth2 access-token answer (``access_token``, integer ``expires_in``)."""
    value = data.get("access_token")
    lifetime = data.get("expires_in", 3600)
    if not (isinstance(value, str) and value):
        raise UnreadableAnswer("the token answer has no access_token")
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime <= 0:
        raise UnreadableAnswer(f"expires_in must be a positive integer, not {lifetime!r}")
    return Token(value, float(lifetime))
