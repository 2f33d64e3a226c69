"""The gateway's domain vocabulary: what can be asked of a national system about a pack, what
undoes what, the states and reasons a pack can be in, and the classes an answer falls into.

Every stage speaks it — the engine and its store, the MQTT contract, each NMVS backend — and it
imports nothing else from the gateway, so that a backend maps its protocol onto it and no stage
needs to know a protocol's codes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

PackState = Literal["ACTIVE", "INACTIVE", "UNKNOWN"]


class Operation(StrEnum):
    """Single-pack operations, named as the LGO names them on MQTT."""

    VERIFY = "verify"
    DISPENSE = "dispense"
    UNDO_DISPENSE = "undo_dispense"
    DESTROY = "destroy"
    UNDO_DESTROY = "undo_destroy"
    EXPORT = "export"
    UNDO_EXPORT = "undo_export"
    SAMPLE = "sample"
    UNDO_SAMPLE = "undo_sample"
    FREE_SAMPLE = "free_sample"
    UNDO_FREE_SAMPLE = "undo_free_sample"
    LOCK = "lock"
    UNLOCK = "unlock"
    STOLEN = "stolen"

    @property
    def changes_state(self) -> bool:
        return self is not Operation.VERIFY

    @property
    def is_undo(self) -> bool:
        return self in UNDO_OF

    @property
    def reason(self) -> str | None:
        """The pack reason this operation sets (or, for an undo, clears)."""
        return REASON_OF.get(UNDO_OF.get(self, self))


# undo operation → the set operation it reverts
UNDO_OF: dict[Operation, Operation] = {
    Operation.UNDO_DISPENSE: Operation.DISPENSE,
    Operation.UNDO_DESTROY: Operation.DESTROY,
    Operation.UNDO_EXPORT: Operation.EXPORT,
    Operation.UNDO_SAMPLE: Operation.SAMPLE,
    Operation.UNDO_FREE_SAMPLE: Operation.FREE_SAMPLE,
    Operation.UNLOCK: Operation.LOCK,
}

# set operation → the Pack/Reason the NMVS reports afterwards
REASON_OF: dict[Operation, str] = {
    Operation.DISPENSE: "SUPPLIED",
    Operation.DESTROY: "DESTROYED",
    Operation.EXPORT: "EXPORTED",
    Operation.SAMPLE: "SAMPLE",
    Operation.FREE_SAMPLE: "FREESAMPLE",
    Operation.LOCK: "LOCKED",
    Operation.STOLEN: "STOLEN",
}


class AnswerClass(StrEnum):
    """What an NMVS answer means, whatever the protocol said: each backend maps its own codes
    onto these, and the engine decides from them (plus the answer's alert flag) alone."""

    SUCCESS = "success"
    WRONG_STATE = "wrong_state"  # the pack is not in the state the operation needs
    UNKNOWN_PACK = "unknown_pack"  # product, batch or serial unknown or not matching
    EXPIRY_MISMATCH = "expiry_mismatch"  # the expiry date does not match the batch
    NOT_ALLOWED = "not_allowed"  # undo window, another user or location, a rule of the system
    AUTHENTICATION = (
        "authentication"  # credentials, certificate, account or terms: an operator acts
    )
    RATE_LIMITED = "rate_limited"
    TECHNICAL = "technical"  # the system failed or the request was malformed
