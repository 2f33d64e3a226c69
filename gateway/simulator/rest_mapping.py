"""The REST face's pure tables: market return codes as HTTP status and 8-digit operation code,
market pack states as Solidsoft's reported states, and requested states as market use cases.

An operation code (Solidsoft's ``operationCode``) has four parts: digit 1 the HTTP status class
(:data:`STATUS_CLASS`), digits 2–3 the request type (:class:`RequestType`), digit 4 ``2`` for
an answer that is only a warning or information, ``0`` otherwise, digits 5–8 the detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from gateway.simulator.market import SET_REASON, SUCCESS, UNDO_REASON, PackState

STATUS_CLASS: dict[int, int] = {200: 1, 202: 2, 403: 3, 404: 4, 409: 5, 422: 6}


class RequestType(IntEnum):
    """Digits 2–3 of an operation code (Solidsoft's ``RequestType``)."""

    SINGLE_PACK = 10  # a single-pack request whose kind is not known (yet)
    VERIFY = 11
    SUPPLY = 12
    DECOMMISSION = 13
    REACTIVATE = 14
    BULK = 21
    BULK_RESULT = 22
    RECOVERY = 31
    RECOVERY_RESULT = 32


def operation_code(status: int, request_type: int, detail: int, *, warning: bool = False) -> str:
    return f"{STATUS_CLASS[status]}{request_type:02d}{2 if warning else 0}{detail:04d}"


@dataclass(frozen=True, slots=True)
class CodeMapping:
    """What one market return code becomes on the wire."""

    status: int
    detail: int
    warning: bool = False

    def operation_code(self, request_type: int) -> str:
        return operation_code(self.status, request_type, self.detail, warning=self.warning)


# The market's single-pack return codes; refused accounts (NMVS_FE_AU_*) are 401 answers.
ANSWER_MAPPING: dict[str, CodeMapping] = {
    SUCCESS: CodeMapping(200, 0),
    "NMVS_NC_PC_01": CodeMapping(404, 1),
    "NMVS_NC_PC_02": CodeMapping(404, 2),
    "NMVS_FE_LOT_03": CodeMapping(404, 3),
    "NMVS_FE_LOT_13": CodeMapping(404, 3),
    "NMVS_FE_LOT_12": CodeMapping(404, 4),
    "NMVS_NC_PCK_22": CodeMapping(409, 1),
    "NMVS_NC_PCK_19": CodeMapping(409, 1),
    "NMVS_NC_PCK_27": CodeMapping(409, 1),
    "NMVS_NC_PCK_23": CodeMapping(409, 2, warning=True),
    "NMVS_NC_PCK_02": CodeMapping(409, 3),
    "NMVS_FE_LOT_01": CodeMapping(409, 4),
    "NMVS_FE_LOT_08": CodeMapping(409, 5),
    "NMVS_NC_PCK_30": CodeMapping(409, 6, warning=True),
    "NMVS_NC_PCK_29": CodeMapping(409, 7, warning=True),
    "NMVS_NC_PCK_06": CodeMapping(409, 8),
    "NMVS_NC_PCK_21": CodeMapping(403, 1),
    "NMVS_NC_PCK_20": CodeMapping(403, 2),
}


def refuses_account(return_code: str) -> bool:
    return return_code.startswith("NMVS_FE_AU_")


REPORTED_REASON: dict[str, str] = {
    "SUPPLIED": "Supplied",
    "DESTROYED": "Destroyed",
    "EXPORTED": "Exported",
    "SAMPLE": "Sample",
    "FREESAMPLE": "FreeSample",
    "LOCKED": "Locked",
    "STOLEN": "Stolen",
    "EXPIRED": "Expired",
    "RECALLED": "Recalled",
    "WITHDRAWN": "Withdrawn",
}


def reported_state(state: PackState | None, reasons: tuple[str, ...]) -> str:
    """Solidsoft's ``ReportedPackState`` of a pack: an inactive pack reports its first reason."""
    if state is None or state == "UNKNOWN":
        return "NotFound"
    if state == "ACTIVE":
        return "Active"
    return REPORTED_REASON[reasons[0]]


REACTIVATE = "Active"
# Solidsoft's RequestedPackState (and the display name the library also sends) → set use case
REQUESTED_STATES: dict[str, str] = {
    "Supplied": "G120",
    "Destroyed": "G130",
    "Exported": "G140",
    "Sample": "G150",
    "FreeSample": "G160",
    "Free Sample": "G160",
    "Locked": "G170",
    "Stolen": "G180",
}
# a state as named in a PATCH or bulk body → the requested state
STATE_NAMES: dict[str, str] = {name: name for name in (*REQUESTED_STATES, REACTIVATE)}
# the recovery API's PackStateTransitionType names → the requested state
TRANSITION_TYPES: dict[str, str] = {
    "SUPPLIED": "Supplied",
    "STOLEN": "Stolen",
    "DESTROYED": "Destroyed",
    "SAMPLE": "Sample",
    "FREE_SAMPLE": "FreeSample",
    "LOCKED": "Locked",
    "EXPORTED": "Exported",
    "ACTIVE": REACTIVATE,
}
# manual entry (no batch, no expiry) exists for supply and stolen only
MANUAL_TWIN: dict[str, str] = {"G120": "G122", "G180": "G182"}
UNDO_OF_REASON: dict[str, str] = {reason: use_case for use_case, reason in UNDO_REASON.items()}


def manual_entry_possible(requested: str | None) -> bool:
    return requested is not None and REQUESTED_STATES.get(requested) in MANUAL_TWIN


def use_case_for(requested: str | None, pack_reason: str | None, *, manual_entry: bool) -> str:
    """The market use case of a requested state (None: verify). Reactivation undoes the pack's
    current reason; with none that can be undone (unknown, active or stolen pack) it is G121,
    which the market answers by its own rules."""
    if requested is None:
        return "G110"
    if requested == REACTIVATE:
        return UNDO_OF_REASON.get(pack_reason or "", "G121")
    use_case = REQUESTED_STATES[requested]
    return MANUAL_TWIN[use_case] if manual_entry else use_case


def request_type(use_case: str) -> RequestType:
    """The request type of a single-pack use case (digits 2–3 of its operation code)."""
    if use_case == "G110":
        return RequestType.VERIFY
    if use_case in UNDO_REASON:
        return RequestType.REACTIVATE
    return RequestType.SUPPLY if SET_REASON[use_case] == "SUPPLIED" else RequestType.DECOMMISSION


# Solidsoft's request checks (the codes of its client library; the header codes come from
# national systems' answers), answered 422 before the request reaches the market
BATCH_REQUIRED = "61020000"
SCHEME_INVALID = "61020002"  # the library's "scheme required", also for a scheme it cannot use
EXPIRY_REQUIRED = "61020004"
BATCH_INVALID = "61020006"
EXPIRY_INVALID = "61020007"
PRODUCT_CODE_INVALID = "61020008"
SERIAL_INVALID = "61020011"
DATA_ENTRY_MODE_REQUIRED = "61020012"
DATA_ENTRY_MODE_INVALID = "61020013"
SINGLE_BODY_INVALID = operation_code(422, RequestType.SINGLE_PACK, 99)
BULK_DUPLICATE_PACKS = "62120000"
BULK_COUNT_MISMATCH = "62120001"
BULK_BODY_INVALID = "62120002"
BULK_TOO_MANY_PACKS = "62120003"
CHECK_TEXT: dict[str, str] = {
    BATCH_REQUIRED: "A batch identifier is required.",
    SCHEME_INVALID: "A product code scheme is required.",
    EXPIRY_REQUIRED: "An expiry date is required.",
    BATCH_INVALID: "The batch identifier is invalid.",
    EXPIRY_INVALID: "The expiry date is invalid.",
    PRODUCT_CODE_INVALID: "The product code is invalid.",
    SERIAL_INVALID: "The serial number is invalid.",
    DATA_ENTRY_MODE_REQUIRED: "The data entry mode header is required.",
    DATA_ENTRY_MODE_INVALID: "The data entry mode header is invalid.",
    SINGLE_BODY_INVALID: "The request body is invalid.",
    BULK_DUPLICATE_PACKS: "Duplicate serial numbers provided.",
    BULK_COUNT_MISMATCH: "The actual number of packs does not match the stated number.",
    BULK_BODY_INVALID: "The request body is invalid.",
    BULK_TOO_MANY_PACKS: (
        "Too many packs in bulk request. A maximum of {max_packs} packs will be accepted."
    ),
}
