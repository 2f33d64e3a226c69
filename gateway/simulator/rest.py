"""The simulator's Solidsoft Reply REST face: the NBS/EMVS API as Solidsoft's own Java client
library speaks it, over the same market as the SOAP face.

It owns the ``/api/`` resources (single pack GET/PATCH, bulk and recovery submissions and
their results), their request checks (422 with Solidsoft's operation codes) and the rendering
of the market's answers as JSON. The token endpoint and bearer check are
:mod:`gateway.simulator.rest_tokens`, the code tables :mod:`gateway.simulator.rest_mapping`,
the shared wire helpers :mod:`gateway.simulator.rest_wire`. Every answer is a JSON object,
never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from aiohttp import web

from gateway.nmvs.arvato.returncodes import lookup
from gateway.simulator.faultstep import Exchange, run_with_faults
from gateway.simulator.market import (
    Answer,
    BulkPackOutcome,
    Market,
    MixedBulkRequest,
    MixedItem,
    PackRequest,
    RequestHeader,
)
from gateway.simulator.rest_mapping import (
    ANSWER_MAPPING,
    BATCH_INVALID,
    BATCH_REQUIRED,
    BULK_BODY_INVALID,
    BULK_COUNT_MISMATCH,
    BULK_DUPLICATE_PACKS,
    BULK_TOO_MANY_PACKS,
    DATA_ENTRY_MODE_INVALID,
    DATA_ENTRY_MODE_REQUIRED,
    EXPIRY_INVALID,
    EXPIRY_REQUIRED,
    PRODUCT_CODE_INVALID,
    SCHEME_INVALID,
    SERIAL_INVALID,
    SINGLE_BODY_INVALID,
    STATE_NAMES,
    TRANSITION_TYPES,
    CodeMapping,
    RequestType,
    manual_entry_possible,
    operation_code,
    refuses_account,
    reported_state,
    request_type,
    use_case_for,
)
from gateway.simulator.rest_tokens import TokenIssuer
from gateway.simulator.rest_wire import (
    API_PREFIX,
    TOKEN_PATH,
    Answered,
    CheckFailed,
    RestSettings,
    decode,
    form_fields,
    guarded,
    json_answer,
    json_object,
    unauthorized,
)

log = logging.getLogger(__name__)

RESULTS_KEPT = timedelta(days=1)  # the "expires" of a bulk acknowledgement
SCHEMES = {"gs1": "GTIN", "ifa": "PPN"}
DATA_ENTRY_MODES = {"manual": True, "non-manual": False}
IDENTIFIER_FIELDS = ("productCodeScheme", "productCode", "serialNumber", "batchId", "expiryDate")
RESULT_TYPE = {
    RequestType.BULK: RequestType.BULK_RESULT,
    RequestType.RECOVERY: RequestType.RECOVERY_RESULT,
}


@dataclass(frozen=True, slots=True)
class _Submission:
    """A bulk or recovery request as submitted: its kind, items and the identifiers as sent."""

    request_type: RequestType
    items: tuple[MixedItem, ...]
    identifiers: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class _Call:
    """A checked API request: its market use case (what a rate-limited one is recorded as) and
    how to run it on the market and render the answer."""

    use_case: str
    process: Callable[[], web.Response]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _manual(request: web.Request) -> bool:
    """Whether the request says its data was keyed in (``emvs-data-entry-mode: manual``)."""
    mode = request.headers.get("emvs-data-entry-mode")
    if mode is None:
        raise CheckFailed(DATA_ENTRY_MODE_REQUIRED)
    if mode not in DATA_ENTRY_MODES:
        raise CheckFailed(DATA_ENTRY_MODE_INVALID, f"{mode!r} is not manual or non-manual")
    return DATA_ENTRY_MODES[mode]


def _mapped(return_code: str) -> CodeMapping:
    mapping = ANSWER_MAPPING.get(return_code)
    if mapping is None:
        log.warning("the REST face has no mapping for the market's answer %s", return_code)
        raise Answered(json_answer({"information": f"Unexpected answer {return_code}"}, 500))
    return mapping


def _pack_answer(answer: Answer, pack_request_type: RequestType) -> web.Response:
    if refuses_account(answer.return_code):
        return unauthorized(answer.description)
    mapping = _mapped(answer.return_code)
    body = {
        "operationCode": mapping.operation_code(pack_request_type),
        "state": reported_state(answer.state, answer.reasons),
        "information": answer.description,
    }
    if answer.alert:
        body["alertId"] = answer.nmvs_trx_id
    return json_answer(body, mapping.status)


def _item_result(item: MixedItem, outcome: BulkPackOutcome) -> dict[str, Any]:
    """One pack's ``result`` in bulk results: its operation code is a number there."""
    info = lookup(outcome.return_code)
    code = _mapped(outcome.return_code).operation_code(request_type(item.request.use_case))
    result: dict[str, Any] = {
        "operationCode": int(code),
        "state": reported_state(outcome.state, outcome.reasons),
        "information": info.message(item.language),
    }
    if info.alert and outcome.nmvs_trx_id is not None:
        result["uprc"] = outcome.nmvs_trx_id
    return result


def _resource(method: str, segments: tuple[str, ...]) -> str:
    """Which API resource the (still encoded) path segments name; 404 or 405 otherwise."""
    methods: tuple[str, ...]
    match segments:
        case ("product", _, _, "pack", _):
            resource, methods = "pack", ("GET", "PATCH")
        case ("product" | "recovery", "packs"):
            resource, methods = "submission", ("POST",)
        case ("product" | "recovery", "packs", _):
            resource, methods = "results", ("GET",)
        case _:
            raise Answered(json_answer({"information": "There is no such resource."}, 404))
    if method not in methods:
        allowed = ", ".join(methods)
        information = f"{method} is not allowed here (use {allowed})."
        raise Answered(json_answer({"information": information}, 405, {"Allow": allowed}))
    return resource


def _field(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _required_text(document: Mapping[str, Any], key: str, where: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise CheckFailed(BULK_BODY_INVALID, f"{_field(where, key)} must be a non-empty string")
    return value


def _optional_text(document: Mapping[str, Any], key: str, where: str) -> str | None:
    """A string field that may be absent; blank counts as absent."""
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise CheckFailed(BULK_BODY_INVALID, f"{_field(where, key)} must be a string")
    return value or None


def _state_field(
    document: Mapping[str, Any], key: str, names: Mapping[str, str], code: str, where: str = ""
) -> str | None:
    """The requested state an optional field names (None: the field is absent)."""
    if key not in document:
        return None
    value = document[key]
    if not isinstance(value, str) or value not in names:
        known = ", ".join(names)
        raise CheckFailed(code, f"{_field(where, key)} {value!r} is not one of {known}")
    return names[value]


class RestFace:
    """The REST routes over ``market``: token endpoint and ``/api/``; the tokens it issued and
    the bulk requests it accepted are kept in memory."""

    def __init__(self, market: Market, settings: RestSettings) -> None:
        self._market = market
        self._settings = settings
        self._tokens = TokenIssuer(market, settings)
        self._submissions: dict[str, _Submission] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", TOKEN_PATH, guarded(self._tokens.endpoint))
        app.router.add_route("*", API_PREFIX + "{tail:.*}", guarded(self._api))

    # ------------------------------------------------------------------ API

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path, _, query = request.raw_path.partition("?")
        segments = tuple(path.removeprefix(API_PREFIX).split("/"))
        resource = _resource(request.method, segments)
        header = self._tokens.caller(request)
        manual = _manual(request)
        submitted_as = RequestType.BULK if segments[0] == "product" else RequestType.RECOVERY
        if resource == "pack":
            call = self._pack_call(
                request.method, header, segments, query, await request.read(), manual
            )
        elif resource == "submission":
            base = f"{request.scheme}://{request.host}"
            call = self._submission_call(header, submitted_as, await request.read(), manual, base)
        else:
            job_id = decode(segments[2]) or ""
            call = _Call("G196", lambda: self._results(header, submitted_as, job_id))
        return await run_with_faults(request, self._exchange(header, call))

    def _exchange(self, header: RequestHeader, call: _Call) -> Exchange:
        def rate_limited() -> web.Response:
            answer = self._market.record_rejection(header, call.use_case, "NMVS_FI_SE_CLI_01")
            return json_answer({"information": answer.description}, 429)

        return Exchange(
            process=call.process,
            server_error=lambda: json_answer(
                {"information": "Internal server error (injected)"}, 500
            ),
            rate_limited=rate_limited,
            timed_out=lambda: json_answer({"information": "Gateway timeout (injected)"}, 504),
        )

    def _pack_request(
        self,
        scheme_name: str,
        product_code: str,
        serial: str,
        batch: str | None,
        expiry: str | None,
        *,
        requested: str | None,
        manual: bool,
    ) -> PackRequest:
        """The market request for one pack (``requested`` state, None: verify). Manual entry
        (no batch, no expiry) is only for a keyed-in supply or stolen pack."""
        scheme = SCHEMES.get(scheme_name)
        if scheme is None:
            raise CheckFailed(SCHEME_INVALID, f"{scheme_name!r} is not gs1 or ifa")
        manual_entry = (
            manual and batch is None and expiry is None and manual_entry_possible(requested)
        )
        if not manual_entry and batch is None:
            raise CheckFailed(BATCH_REQUIRED)
        if not manual_entry and expiry is None:
            raise CheckFailed(EXPIRY_REQUIRED)
        pack = self._market.pack(product_code, serial)
        reason = pack.reason if pack is not None else None
        use_case = use_case_for(requested, reason, manual_entry=manual_entry)
        return PackRequest(use_case, scheme, product_code, serial, batch, expiry)

    # ------------------------------------------------------------------ single pack

    def _pack_call(
        self,
        method: str,
        header: RequestHeader,
        segments: tuple[str, ...],
        query: str,
        body: bytes,
        manual: bool,
    ) -> _Call:
        _, raw_scheme, raw_code, _, raw_serial = segments
        product_code, serial = decode(raw_code), decode(raw_serial)
        if product_code is None:
            raise CheckFailed(PRODUCT_CODE_INVALID, "it is not percent-encoded properly")
        if serial is None:
            raise CheckFailed(SERIAL_INVALID, "it is not percent-encoded properly")
        params = form_fields(query)
        if params is None:
            raise CheckFailed(BATCH_INVALID, "the query is not form-encoded")
        requested = _requested_state(body) if method == "PATCH" else None
        pack_request = self._pack_request(
            decode(raw_scheme) or raw_scheme,
            product_code,
            serial,
            _query_value(params, "batch", BATCH_INVALID),
            _query_value(params, "expiry", EXPIRY_INVALID),
            requested=requested,
            manual=manual,
        )
        return _Call(
            pack_request.use_case,
            lambda: _pack_answer(
                self._market.single(header, pack_request), request_type(pack_request.use_case)
            ),
        )

    # ------------------------------------------------------------------ bulk and recovery

    def _submission_call(
        self,
        header: RequestHeader,
        submitted_as: RequestType,
        body: bytes,
        manual: bool,
        base: str,
    ) -> _Call:
        document = json_object(body, BULK_BODY_INVALID)
        recovery = submitted_as is RequestType.RECOVERY
        state = (
            None if recovery else _state_field(document, "state", STATE_NAMES, BULK_BODY_INVALID)
        )
        packs = document.get("packs")
        if not isinstance(packs, list) or not packs:
            raise CheckFailed(BULK_BODY_INVALID, "packs must be a non-empty array")
        max_packs = self._settings.max_bulk_packs
        if len(packs) > max_packs:
            raise CheckFailed(BULK_TOO_MANY_PACKS, max_packs=max_packs)
        stated = document.get("numberOfPacks")
        if isinstance(stated, bool) or not isinstance(stated, int):
            raise CheckFailed(BULK_BODY_INVALID, "numberOfPacks must be an integer")
        if stated != len(packs):
            raise CheckFailed(BULK_COUNT_MISMATCH, f"numberOfPacks {stated}, {len(packs)} packs")
        items: list[MixedItem] = []
        identifiers: list[dict[str, Any]] = []
        seen: set[tuple[str, str, str]] = set()
        for index, pack in enumerate(packs):
            where = f"packs[{index}]"
            if not isinstance(pack, dict):
                raise CheckFailed(BULK_BODY_INVALID, f"{where} must be an object")
            requested = (
                _state_field(pack, "transitionType", TRANSITION_TYPES, BULK_BODY_INVALID, where)
                if recovery
                else state
            )
            scheme_name, product_code, serial = (
                _required_text(pack, key, where) for key in IDENTIFIER_FIELDS[:3]
            )
            batch = _optional_text(pack, "batchId", where)
            expiry = _optional_text(pack, "expiryDate", where)
            try:
                pack_request = self._pack_request(
                    scheme_name,
                    product_code,
                    serial,
                    batch,
                    expiry,
                    requested=requested,
                    manual=manual,
                )
            except CheckFailed as failed:
                raise CheckFailed(BULK_BODY_INVALID, f"{where}: {failed.information}") from None
            key = (scheme_name, product_code, serial)
            if key in seen:
                raise CheckFailed(BULK_DUPLICATE_PACKS, f"{where} repeats an earlier pack")
            seen.add(key)
            items.append(MixedItem(pack_request, uuid4().hex, header.language))
            identifiers.append({field: pack[field] for field in IDENTIFIER_FIELDS if field in pack})
        submission = _Submission(submitted_as, tuple(items), tuple(identifiers))
        return _Call("G195", lambda: self._submit(header, submission, base))

    def _submit(self, header: RequestHeader, submission: _Submission, base: str) -> web.Response:
        answer = self._market.submit_bulk(header, MixedBulkRequest(submission.items))
        if refuses_account(answer.return_code):
            return unauthorized(answer.description)
        job = self._market.state.bulk_jobs[answer.nmvs_trx_id]
        self._submissions[job.nmvs_trx_id] = submission
        resource = "product" if submission.request_type is RequestType.BULK else "recovery"
        body = {
            "operationCode": operation_code(202, submission.request_type, 0),
            "eta": _iso(job.ready_at),
            "expires": _iso(job.ready_at + RESULTS_KEPT),
        }
        location = f"{base}{API_PREFIX}{resource}/packs/{job.nmvs_trx_id}"
        return json_answer(body, 202, {"Location": location})

    def _results(
        self, header: RequestHeader, submitted_as: RequestType, job_id: str
    ) -> web.Response:
        result_type = RESULT_TYPE[submitted_as]
        submission = self._submissions.get(job_id)
        job = self._market.state.bulk_jobs.get(job_id)
        if (
            submission is None
            or job is None
            or submission.request_type is not submitted_as
            or job.submitted_by != header.user
        ):
            information = "There is no such request of this account."
            body = {
                "operationCode": operation_code(404, result_type, 1),
                "information": information,
            }
            return json_answer(body, 404)
        answer, processed = self._market.bulk_result(header, job_id)
        if refuses_account(answer.return_code):
            return unauthorized(answer.description)
        if processed is None or answer.bulk is None:
            body = {"operationCode": operation_code(409, result_type, 1), "eta": _iso(job.ready_at)}
            return json_answer(body, 409)
        packs = [
            {"pack": identifier, "result": _item_result(item, outcome)}
            for identifier, item, outcome in zip(
                submission.identifiers, submission.items, answer.bulk, strict=True
            )
        ]
        return json_answer(
            {"operationCode": operation_code(200, result_type, 0), "packs": packs}, 200
        )


def _requested_state(body: bytes) -> str:
    """The ``state`` of a PATCH body ``{"state": X}`` (other fields ignored)."""
    document = json_object(body, SINGLE_BODY_INVALID)
    state = _state_field(document, "state", STATE_NAMES, SINGLE_BODY_INVALID)
    if state is None:
        raise CheckFailed(SINGLE_BODY_INVALID, "state is missing")
    return state


def _query_value(params: Mapping[str, list[str]], name: str, invalid_code: str) -> str | None:
    """A query parameter given at most once; blank counts as absent."""
    values = params.get(name, [])
    if len(values) > 1:
        raise CheckFailed(invalid_code, f"{name} is given more than once")
    return values[0] if values and values[0] else None
