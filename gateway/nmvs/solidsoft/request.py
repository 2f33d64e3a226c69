"""Requests to a Solidsoft Reply system, built exactly: paths, query strings and JSON bodies.

Pure (no I/O). Every identifier goes into the URL percent-encoded — a GS1 serial may hold
``/``, ``%``, ``?`` or ``"`` — and nothing is ever trimmed or upper-cased: a pack the system
would refuse (an IFA serial in lower case, say) is refused here with the rule it breaks,
before anything is sent, rather than altered into another pack.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

from gateway.codes.pack import PackIdentifier
from gateway.codes.problems import Severity
from gateway.codes.validation import validate_pack
from gateway.nmvs.solidsoft.codes import REQUESTED_STATE, TRANSITION_TYPE
from gateway.vocabulary import Operation

SCHEME = {"GTIN": "gs1", "PPN": "ifa"}
# IFA rules of Solidsoft's systems, stricter than the PPN code itself allows
_IFA_SERIAL = re.compile(r"[A-Z0-9]{1,20}")
_IFA_BATCH = re.compile(r"[A-Z0-9_-]{1,20}")
# A verify for a product code no system issues (its check digit is wrong): the system
# authenticates the call and refuses the code, no pack is looked up, no alert can be raised.
PROBE_PATH = "product/gs1/00000000000001/pack/NMVS-GATEWAY-PROBE"


def entry_mode(pack: PackIdentifier) -> str:
    """The ``emvs-data-entry-mode`` header: ``manual`` when a person typed the pack's data."""
    return "manual" if pack.keyed else "non-manual"


def refusal(pack: PackIdentifier) -> str | None:
    """Why the system would refuse this pack's data as malformed, or None."""
    for problem in validate_pack(pack):
        if problem.severity is Severity.ERROR:
            return problem.message
    if pack.scheme == "PPN":
        if not _IFA_SERIAL.fullmatch(pack.serial):
            return f"serial {pack.serial!r}: an IFA serial is 1-20 of A-Z 0-9 (upper case only)"
        if not _IFA_BATCH.fullmatch(pack.batch):
            return f"batch {pack.batch!r}: an IFA batch is 1-20 of A-Z 0-9 - _ (upper case only)"
    return None


def pack_path(pack: PackIdentifier) -> str:
    """``product/{scheme}/{code}/pack/{serial}?batch=…&expiry=…``, relative to the API root."""
    query = urlencode({"batch": pack.batch, "expiry": pack.expiry})
    return f"{manual_path(pack.scheme, pack.product_code, pack.serial)}?{query}"


def manual_path(scheme: str, product_code: str, serial: str) -> str:
    """The pack's path without batch or expiry (manual entry of code and serial only)."""
    code, serial = quote(product_code, safe=""), quote(serial, safe="")
    return f"product/{SCHEME[scheme]}/{code}/pack/{serial}"


def state_body(operation: Operation) -> dict[str, str]:
    """The PATCH body of a state change (an undo is a reactivation: ``Active``)."""
    return {"state": REQUESTED_STATE[operation]}


def identifier(pack: PackIdentifier) -> dict[str, str]:
    return {
        "productCodeScheme": SCHEME[pack.scheme],
        "productCode": pack.product_code,
        "serialNumber": pack.serial,
        "batchId": pack.batch,
        "expiryDate": pack.expiry,
    }


def bulk_body(operation: Operation, packs: Sequence[PackIdentifier]) -> dict[str, Any]:
    """``POST product/packs``: one requested state for every pack (none for a verify)."""
    body: dict[str, Any] = {}
    if operation.changes_state:
        body["state"] = REQUESTED_STATE[operation]
    return body | {"numberOfPacks": len(packs), "packs": [identifier(p) for p in packs]}


def recovery_body(operation: Operation, packs: Sequence[PackIdentifier]) -> dict[str, Any]:
    """``POST recovery/packs``: the store-and-forward replay, a transition per pack."""
    transition = {"transitionType": TRANSITION_TYPE[operation]} if operation.changes_state else {}
    return {
        "numberOfPacks": len(packs),
        "packs": [transition | identifier(p) for p in packs],
    }
