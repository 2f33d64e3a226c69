"""Solidsoft Reply's operation codes and pack states, mapped onto the gateway's vocabulary.

An operation code has eight digits: the first is the HTTP class of the answer (1 = 200,
2 = 202, 3 = 403, 4 = 404, 5 = 409, 6 = 422, 0 = no answer), the next two the request type
(11 verify, 12 supply, 13 decommission, 14 reactivate, 21/22 bulk submit/result, 31/32
recovery submit/result; 10 in the validation codes of any single-pack request), the fourth is
``2`` when the answer only carries a warning or information, the last four are the detail.

What an answer means comes first from its HTTP status (the class digit); :data:`DETAILS` then
names the details known, per class. Whether an alert was raised is the server's ``alertId``
(or ``uprc`` in a bulk result), never guessed from a code. Solidsoft's published integration
library defines only the validation codes (``6102…``/``6212…``); the other details below are
the ones the national systems are seen to use (FiMVS ``4102000x``) and the gateway's simulator
answers — inferred, so each entry is one line to change when a national system documents its
own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.vocabulary import REASON_OF, UNDO_OF, AnswerClass, Operation, PackState

_CODE = re.compile(r"[0-9]{8}")

# Solidsoft names of the requested states (PATCH body ``state``); every undo is a reactivation.
REQUESTED_STATE: dict[Operation, str] = {
    Operation.DISPENSE: "Supplied",
    Operation.DESTROY: "Destroyed",
    Operation.EXPORT: "Exported",
    Operation.SAMPLE: "Sample",
    Operation.FREE_SAMPLE: "FreeSample",
    Operation.LOCK: "Locked",
    Operation.STOLEN: "Stolen",
} | {undo: "Active" for undo in UNDO_OF}

# The recovery endpoint's ``transitionType`` (Java enum names); a verify carries none.
TRANSITION_TYPE: dict[Operation, str] = {
    op: REASON_OF[op].replace("FREESAMPLE", "FREE_SAMPLE") for op in REASON_OF
} | {undo: "ACTIVE" for undo in UNDO_OF}

# Reported states (case, spaces and hyphens ignored) → the gateway's state and reasons.
_REPORTED: dict[str, tuple[PackState, tuple[str, ...]]] = {
    "active": ("ACTIVE", ()),
    "supplied": ("INACTIVE", ("SUPPLIED",)),
    "destroyed": ("INACTIVE", ("DESTROYED",)),
    "exported": ("INACTIVE", ("EXPORTED",)),
    "sample": ("INACTIVE", ("SAMPLE",)),
    "freesample": ("INACTIVE", ("FREESAMPLE",)),
    "locked": ("INACTIVE", ("LOCKED",)),
    "stolen": ("INACTIVE", ("STOLEN",)),
    "checkedout": ("INACTIVE", ("CHECKED_OUT",)),
    "expired": ("INACTIVE", ("EXPIRED",)),
    "recalled": ("INACTIVE", ("RECALLED",)),
    "withdrawn": ("INACTIVE", ("WITHDRAWN",)),
    "notfound": ("UNKNOWN", ()),
}

STATUS_OF_CLASS = {"1": 200, "2": 202, "3": 403, "4": 404, "5": 409, "6": 422}
# HTTP status → what an answer of that class means when its detail is not known
_CLASS_OF_STATUS: dict[int, AnswerClass] = {
    200: AnswerClass.SUCCESS,
    202: AnswerClass.SUCCESS,
    403: AnswerClass.NOT_ALLOWED,
    404: AnswerClass.UNKNOWN_PACK,
    409: AnswerClass.WRONG_STATE,
    422: AnswerClass.TECHNICAL,
}


def reported_state(value: object) -> tuple[PackState, tuple[str, ...]] | None:
    """A reported ``state`` in the gateway's terms; None when absent or not a known state."""
    if not isinstance(value, str):
        return None
    return _REPORTED.get(value.replace(" ", "").replace("-", "").lower())


@dataclass(frozen=True, slots=True)
class OperationCode:
    raw: str

    @property
    def http_class(self) -> str:
        return self.raw[0]

    @property
    def request_type(self) -> str:
        return self.raw[1:3]

    @property
    def warning(self) -> bool:
        return self.raw[3] == "2"

    @property
    def detail(self) -> str:
        return self.raw[4:]

    def matches(self, status: int) -> bool:
        """The class digit agrees with the HTTP status the code came with."""
        return STATUS_OF_CLASS.get(self.http_class) == status


def parse_code(value: object) -> OperationCode | None:
    """An 8-digit operation code from JSON (a string, or a number as a bulk result gives)."""
    if isinstance(value, bool):
        return None
    text = f"{value:08d}" if isinstance(value, int) and value >= 0 else value
    if isinstance(text, str) and _CODE.fullmatch(text):
        return OperationCode(text)
    return None


@dataclass(frozen=True, slots=True)
class Meaning:
    answer_class: AnswerClass
    hub_code: str | None  # the EU Hub alert code when the server raises an alert
    en: str
    fr: str


# (class digit, detail) → meaning
DETAILS: dict[tuple[str, str], Meaning] = {
    ("1", "0000"): Meaning(AnswerClass.SUCCESS, None, "Done.", "Effectué."),
    ("4", "0001"): Meaning(
        AnswerClass.UNKNOWN_PACK,
        "A2",
        "Product code unknown. Check the scan; do not supply without checking.",
        "Code produit inconnu. Vérifiez le scan ; ne pas délivrer sans vérifier.",
    ),
    ("4", "0002"): Meaning(
        AnswerClass.UNKNOWN_PACK,
        "A3",
        "Serial number unknown for this product. Do not supply; set the pack aside.",
        "Numéro de série inconnu pour ce produit. Ne pas délivrer ; mettez la boîte de côté.",
    ),
    # FiMVS answers 41020003/7/8/9 for a batch that does not match the pack
    **{
        ("4", detail): Meaning(
            AnswerClass.UNKNOWN_PACK,
            "A68",
            "The batch does not match this pack. Check the scanner, set the pack aside.",
            "Le lot ne correspond pas à cette boîte. Vérifiez le scanner, mettez-la de côté.",
        )
        for detail in ("0003", "0007", "0008", "0009")
    },
    ("4", "0004"): Meaning(
        AnswerClass.EXPIRY_MISMATCH,
        "A52",
        "The expiry date does not match the batch. Check the scanner, set the pack aside.",
        "La date de péremption ne correspond pas au lot. Vérifiez le scanner.",
    ),
    ("5", "0001"): Meaning(
        AnswerClass.WRONG_STATE,
        "A24",
        "The pack is not in the status this operation needs. Do not supply.",
        "La boîte n'est pas dans le statut requis. Ne pas délivrer.",
    ),
    ("5", "0002"): Meaning(
        AnswerClass.WRONG_STATE,
        None,
        "You already set this pack to this status.",
        "Vous avez déjà mis cette boîte dans ce statut.",
    ),
    ("5", "0003"): Meaning(
        AnswerClass.WRONG_STATE,
        None,
        "The pack has EXPIRED. Do not supply.",
        "La boîte est PÉRIMÉE. Ne pas délivrer.",
    ),
    ("5", "0004"): Meaning(
        AnswerClass.WRONG_STATE,
        None,
        "This batch has been RECALLED. Do not supply.",
        "Ce lot a été RAPPELÉ. Ne pas délivrer.",
    ),
    ("5", "0005"): Meaning(
        AnswerClass.WRONG_STATE,
        None,
        "This product has been WITHDRAWN. Do not supply.",
        "Ce produit a été RETIRÉ. Ne pas délivrer.",
    ),
    ("5", "0006"): Meaning(
        AnswerClass.WRONG_STATE,
        None,
        "The pack's batch is inactive. Do not supply.",
        "Le lot de la boîte est inactif. Ne pas délivrer.",
    ),
    ("5", "0007"): Meaning(
        AnswerClass.WRONG_STATE,
        None,
        "The pack is already active: nothing to undo.",
        "La boîte est déjà active : rien à annuler.",
    ),
    ("5", "0008"): Meaning(
        AnswerClass.WRONG_STATE,
        "A24",
        "The undo does not match the pack's current status.",
        "L'annulation ne correspond pas au statut actuel de la boîte.",
    ),
    ("3", "0001"): Meaning(
        AnswerClass.NOT_ALLOWED,
        "A5",
        "Only the location that made the change may undo it.",
        "Seule la pharmacie qui a fait le changement peut l'annuler.",
    ),
    ("3", "0002"): Meaning(
        AnswerClass.NOT_ALLOWED,
        "A4",
        "The 10-day limit for undoing this change has passed.",
        "Le délai de 10 jours pour annuler ce changement est dépassé.",
    ),
}

# The validation codes of Solidsoft's library (any single-pack request type ``10``).
VALIDATION: dict[str, str] = {
    "61020000": "A batch identifier is required.",
    "61020001": "A product code is required.",
    "61020002": "A product code scheme is required.",
    "61020003": "A serial number is required.",
    "61020004": "An expiry date is required.",
    "61020006": "The batch identifier is invalid.",
    "61020007": "The expiry date is invalid.",
    "61020008": "The product code is invalid.",
    "61020011": "The serial number is invalid.",
    "61020012": "The emvs-data-entry-mode header is required.",
    "61020013": "The emvs-data-entry-mode header is invalid.",
    "62120000": "Duplicate serial numbers provided. An alert has been raised.",
    "62120001": "The actual number of packs does not match the stated number.",
    "62120002": "The request body is invalid.",
    "62120003": "Too many packs in bulk request.",
}
# Codes that say our request itself is broken (a header, the body): an operator or a fix of
# the gateway is needed, not another try.
REQUEST_BROKEN = frozenset({"61020012", "61020013", "62120001", "62120002"})


def meaning(status: int, code: OperationCode | None) -> Meaning:
    """What an answer with this HTTP status and operation code means."""
    if code is not None:
        known = DETAILS.get((code.http_class, code.detail))
        if known is not None and code.matches(status):
            return known
        if code.raw in VALIDATION:
            text = VALIDATION[code.raw]
            return Meaning(AnswerClass.TECHNICAL, None, text, text)
    answer_class = _CLASS_OF_STATUS.get(status, AnswerClass.TECHNICAL)
    if answer_class is AnswerClass.SUCCESS:
        return DETAILS[("1", "0000")]
    shown = code.raw if code is not None else "none"
    text = f"Answer HTTP {status}, operation code {shown}."
    return Meaning(answer_class, None, text, f"Réponse HTTP {status}, code d'opération {shown}.")
