"""The MQTT contract with pharmacy software: topics, envelopes, and strict request parsing.

Documented for LGO vendors in ``docs/mqtt.md`` (with ``docs/asyncapi.yaml`` and one JSON Schema
per message in ``docs/schemas/``). Every payload is a JSON object carrying ``schema_version``;
the version changes only when a field changes meaning or disappears (adding fields does not).

Requests are parsed here, not by the engine, so that anything malformed is answered naming what
to fix — never an exception that could reach the daemon. A request that does not become a
transaction (malformed, an id already used for another pack or operation, a retained request)
is answered on ``<base>/error`` (:func:`error_payload`), never on ``<base>/result``: that topic
carries only the transactions the engine holds, so one id has one final result, ever.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.codes.pack import PackFormatError, PackIdentifier
from gateway.codes.problems import Problem, ProblemCode, error
from gateway.strictjson import DuplicateKey, unique_keys
from gateway.vocabulary import Operation

SCHEMA_VERSION = 1
MAX_REQUEST_BYTES = 16 * 1024
MAX_ID_LENGTH = 128
OVERSIZED_PARSE_LIMIT = 1024 * 1024  # larger requests are refused without reading their id
MAX_USER_LENGTH = 128
REQUEST_FIELDS = frozenset({"schema_version", "id", "op", "pack", "scan_id", "user"})
# An id is printable ASCII, spaces allowed inside (the schema's pattern says the same).
_ID_CHARACTERS = frozenset(chr(c) for c in range(0x20, 0x7F))
ErrorReason = Literal["bad_request", "id_conflict", "retained", "storage_full"]
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

    @property
    def error(self) -> str:
        return f"{self.base}/error"


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
    """The request cannot be accepted; ``id``/``op`` are set when they could be read.

    ``detail`` names what to fix; ``fr`` is its French wording (the English one when empty).
    ``raw_id``: the ``id`` string as sent when it is not a usable id (too long, not printable
    ASCII): never echoed, only hashed, so it can never be mistaken for another request's id.
    ``reason``: why it is not a transaction (the ``reason`` of the ``<base>/error`` message).
    """

    def __init__(
        self,
        detail: str,
        *,
        fr: str = "",
        id: str | None = None,
        op: str | None = None,
        raw_id: str | None = None,
        reason: ErrorReason = "bad_request",
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fr = fr
        self.id = id
        self.op = op
        self.raw_id = raw_id
        self.reason = reason

    @property
    def problem(self) -> Problem:
        return error(ProblemCode.BAD_REQUEST, self.detail, self.fr)


def parse_request(payload: bytes, *, max_bytes: int = MAX_REQUEST_BYTES) -> LgoRequest:
    """Parse ``<base>/request``; raises :class:`RequestRejected` naming the first thing to fix.

    A leading UTF-8 byte order mark is ignored (RFC 8259 allows it; some Windows software
    writes one).
    """
    if len(payload) > max_bytes:
        raise RequestRejected(
            f"the request is {len(payload)} bytes, the limit is {max_bytes}",
            fr=f"la requête fait {len(payload)} octets, la limite est {max_bytes}",
            id=_id_of_oversized(payload),
        )
    data = _load(payload)
    if not isinstance(data, dict):
        raise RequestRejected(
            "the request must be a JSON object", fr="la requête doit être un objet JSON"
        )
    if "id" not in data:
        raise RequestRejected(
            "id is missing (your idempotency key)", fr="id est absent (votre clé d'idempotence)"
        )
    request_id = data["id"]
    if not isinstance(request_id, str) or not request_id.strip():
        raise RequestRejected(
            "id must be a non-empty string (your idempotency key)",
            fr="id doit être une chaîne non vide (votre clé d'idempotence)",
        )
    if not _encodable(request_id):
        detail, fr = _not_unicode("id")
        raise RequestRejected(detail, fr=fr)
    if not is_request_id(request_id):
        raise RequestRejected(
            f"id must be at most {MAX_ID_LENGTH} printable ASCII characters, not "
            f"{len(request_id)} characters{_first_odd(request_id)}",
            fr=f"id doit faire au plus {MAX_ID_LENGTH} caractères ASCII imprimables, pas "
            f"{len(request_id)} caractères{_first_odd(request_id, 'fr')}",
            raw_id=request_id,
        )
    raw_op = data.get("op")
    op_text = _echoable(raw_op) if isinstance(raw_op, str) else None

    def reject(detail: str, fr: str) -> RequestRejected:
        return RequestRejected(detail, fr=fr, id=request_id, op=op_text)

    not_text = _first_unencodable(data)
    if not_text is not None:
        raise reject(*_not_unicode(not_text))
    unknown = sorted(set(data) - REQUEST_FIELDS)
    if unknown:
        raise reject(
            f"unknown field {unknown[0]!r}; the fields are id, op, pack, scan_id, user",
            f"champ inconnu {unknown[0]!r} ; les champs sont id, op, pack, scan_id, user",
        )
    version = data.get("schema_version", SCHEMA_VERSION)
    # a JSON number equal to 1 (1.0 too, as JSON Schema's const says); true is no number
    if (
        isinstance(version, bool)
        or not isinstance(version, int | float)
        or version != SCHEMA_VERSION
    ):
        raise reject(
            f"schema_version must be {SCHEMA_VERSION} (or left out), not {json.dumps(version)}",
            f"schema_version doit valoir {SCHEMA_VERSION} (ou être omis), pas "
            f"{json.dumps(version)}",
        )
    if "op" not in data:
        raise reject(
            f"op is missing; it is one of {OPERATIONS}",
            f"op est absent ; c'est l'une de {OPERATIONS}",
        )
    if op_text not in OPERATION_VALUES:
        raise reject(
            f"op must be one of {OPERATIONS}, not {json.dumps(raw_op)}",
            f"op doit être l'une de {OPERATIONS}, pas {json.dumps(raw_op)}",
        )
    op = Operation(op_text)
    user = data.get("user")
    if "user" in data and (not isinstance(user, str) or len(user) > MAX_USER_LENGTH):
        raise reject(
            f"user must be a string of at most {MAX_USER_LENGTH} characters",
            f"user doit être une chaîne d'au plus {MAX_USER_LENGTH} caractères",
        )
    has_pack, has_scan = "pack" in data, "scan_id" in data
    if has_pack == has_scan:
        raise reject(
            "give exactly one of pack (the pack identifier) or scan_id (a scan's id)",
            "donnez soit pack (l'identifiant de la boîte), soit scan_id (l'id d'un scan), "
            "pas les deux",
        )
    if has_scan:
        scan_id = data["scan_id"]
        if not isinstance(scan_id, str) or not scan_id:
            raise reject(
                "scan_id must be a non-empty string", "scan_id doit être une chaîne non vide"
            )
        return LgoRequest(request_id, op, None, scan_id, user)
    try:
        pack = PackIdentifier.from_json(data["pack"])
    except PackFormatError as exc:
        raise reject(str(exc), exc.fr) from None
    return LgoRequest(request_id, op, pack, None, user)


def is_request_id(text: str) -> bool:
    """1 to :data:`MAX_ID_LENGTH` printable ASCII characters, not only spaces."""
    return 0 < len(text) <= MAX_ID_LENGTH and _ID_CHARACTERS.issuperset(text) and not text.isspace()


def _first_odd(text: str, language: str = "en") -> str:
    """``, U+0009 at position 3`` naming the first character an id cannot hold, if any."""
    for position, char in enumerate(text, 1):
        if char not in _ID_CHARACTERS:
            where = "en position" if language == "fr" else "at position"
            return f", U+{ord(char):04X} {where} {position}"
    return ""


def _load(payload: bytes) -> Any:
    """The JSON value of a request, or :class:`RequestRejected` saying why there is none."""
    try:
        return json.loads(payload.decode("utf-8-sig"), object_pairs_hook=unique_keys)
    except DuplicateKey as duplicate:
        name = duplicate.key if _encodable(duplicate.key) else repr(duplicate.key)
        raise RequestRejected(
            f"the field {name!r} appears twice in one object; send each field once",
            fr=f"le champ {name!r} apparaît deux fois dans un même objet ; envoyez chaque "
            "champ une seule fois",
        ) from None
    except UnicodeDecodeError:
        raise RequestRejected(
            "the request is not UTF-8 text", fr="la requête n'est pas du texte UTF-8"
        ) from None
    except RecursionError:
        raise RequestRejected(
            "the request is not valid JSON (nesting too deep)",
            fr="la requête n'est pas du JSON valide (imbrication trop profonde)",
        ) from None
    except ValueError as exc:  # JSONDecodeError, and integers too long to convert
        raise RequestRejected(
            f"the request is not valid JSON ({exc})",
            fr=f"la requête n'est pas du JSON valide ({exc})",
        ) from None


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # only lone surrogates (JSON "\ud800") cannot be encoded
        return False
    return True


def _not_unicode(name: str) -> tuple[str, str]:
    """The English and French details for a string that is not UTF-8 encodable."""
    return (
        f"{name} is not valid Unicode text (it contains a lone surrogate)",
        f"{name} n'est pas un texte Unicode valide (il contient un surrogate isolé)",
    )


def _echoable(text: str) -> str | None:
    """``text`` if it can be echoed back in a result, else ``None``."""
    return text if _encodable(text) else None


def _first_unencodable(data: dict[str, Any]) -> str | None:
    """The name of the first string (field name or value, at any depth) that is not UTF-8
    encodable, e.g. ``pack.serial``; walked without recursion, whatever the nesting."""
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if not _encodable(value):
                return path
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if not _encodable(key):
                    return f"the field name {key!r}" + (f" in {path}" if path else "")
                pending.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return None


def _id_of_oversized(payload: bytes) -> str | None:
    """The id of a request too large to accept, so the LGO can be told (bounded effort)."""
    if len(payload) > OVERSIZED_PARSE_LIMIT:
        return None
    try:
        data = _load(payload)
    except RequestRejected:
        return None
    request_id = data.get("id") if isinstance(data, dict) else None
    if isinstance(request_id, str) and is_request_id(request_id):
        return request_id
    return None


def error_payload(rejected: RequestRejected, payload: bytes) -> dict[str, Any]:
    """The ``<base>/error`` body for a request that did not become a transaction.

    ``request_id`` is the id when it is a usable one; ``request_id_sha256`` the SHA-256 of the
    id string as sent (UTF-8) whenever it was a string, so that an id the gateway cannot echo
    (too long, not printable) can still be matched; ``payload_sha256`` that of the whole
    message, for anything else."""
    id_text = rejected.id if rejected.id is not None else rejected.raw_id
    return {
        "request_id": rejected.id,
        "request_id_sha256": None if id_text is None else _sha256(id_text.encode()),
        "payload_sha256": _sha256(payload),
        "op": rejected.op,
        "reason": rejected.reason,
        "problems": [rejected.problem.to_json()],
        "at": now_iso(),
    }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
