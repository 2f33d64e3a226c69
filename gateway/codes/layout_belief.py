"""Per-scanner layout learning for ``layout = "auto"``: the keyboard countries still consistent
with everything one scanner has typed, as a small immutable state the decoder updates.

A counter scanner types hundreds of packs a day with one fixed keyboard country. One scan alone
often cannot tell neighbouring layouts apart (a serial with ``Y`` reads as two valid packs under
``us`` and ``de``), but the scanner's history can. :func:`observe` takes the layouts under which
one scan reads a valid pack (``valid``: layout → pack) and the belief so far:

- **a scan valid under no layout** narrows nothing (a misread, a non-pack code);
- **a scan valid under some candidates** narrows the candidates to those: the scanner's own
  layout always reads a good code as a valid pack, so a layout that does not is not the
  scanner's. When every remaining candidate reads the same pack, that pack is exact; when they
  disagree the scan is ``LAYOUT_AMBIGUOUS`` — the decoder never picks by preference;
- **a scan valid only outside the candidates** (a *misfit*) is refused as
  ``LAYOUT_CHANGED``: either the scanner was reconfigured or replaced, or this one code is odd
  (printed wrong, a foreign pack). The belief moves only when the evidence repeats:
  :data:`RELEARN_AFTER` misfits from **different** codes (rescanning the same box does not
  count twice), whose valid layouts have some in common, with no scan in between that fits the
  old candidates and not the new ones. Then the candidates become those common layouts and
  the scan is decoded under them, with a ``LAYOUT_CHANGED`` warning.

Why three different codes: a scan that reads valid only under a layout the scanner has been
shown not to use comes from a code printed or read wrong, and such codes are rare (well under
one scan in a thousand on the French alert figures); two unrelated ones in a row that also agree
on one foreign layout are far rarer still, and the pharmacist rescanning the same odd box
does not add evidence. Relearning costs a reconfigured scanner two refused scans, each with a
message saying why. The threshold is one constant.

The belief is pure data (:meth:`LayoutBelief.stored` / :meth:`LayoutBelief.from_stored`): the
capture stage keeps one per scanner, the engine's state database persists it, and the
calibration card (:meth:`LayoutBelief.from_calibration`) settles it in one scan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cache
from typing import Any

from gateway.codes.keyboard.layouts import get_layout
from gateway.codes.pack import PackIdentifier
from gateway.codes.validation import SET_82

RELEARN_AFTER = 3  # misfits from different codes before the belief moves (see the docstring)
# Characters whose keys decide how any pack code is typed: set 82 and the ISO 15434 / AIM brackets.
PACK_CHARACTERS = "".join(sorted(SET_82 | set("[]")))


def layout_families(layouts: tuple[str, ...]) -> list[list[str]]:
    """Group layouts that type every pack character with the same keys (interchangeable)."""
    classes: dict[tuple[object, ...], list[str]] = {}
    for layout in layouts:
        classes.setdefault(_signature(layout), []).append(layout)
    return list(classes.values())


@cache
def _signature(layout: str) -> tuple[object, ...]:
    chords = get_layout(layout).chords()
    return tuple(chords.get(char) for char in PACK_CHARACTERS)


class Verdict(StrEnum):
    NOTHING = "nothing"  # valid under no layout: the scan's own problems stand
    FITS = "fits"  # valid under some candidates: read under those
    MISFIT = "misfit"  # valid only outside the candidates, not (yet) repeated: refused
    RELEARNED = "relearned"  # the misfits repeated: the candidates moved, read under them


@dataclass(frozen=True, slots=True)
class LayoutBelief:
    """What one scanner's scans have shown about its keyboard country.

    ``candidates``: the layouts consistent with every scan so far (in preference order).
    ``proofs``: scans that read a valid pack under the candidates since they were last reset.
    ``pending``/``misfits``: the layouts the recent misfits have in common, and a digest of
    each distinct misfit code. ``changes``: how many times the scanner was found reconfigured.
    ``calibrated``: the candidates come from the calibration card.
    """

    candidates: tuple[str, ...]
    proofs: int = 0
    pending: tuple[str, ...] = ()
    misfits: tuple[str, ...] = ()
    changes: int = 0
    calibrated: bool = False

    @classmethod
    def fresh(cls, layouts: tuple[str, ...]) -> LayoutBelief:
        return cls(candidates=layouts)

    @classmethod
    def from_calibration(cls, layouts: tuple[str, ...], before: LayoutBelief) -> LayoutBelief:
        """The layouts that typed the calibration code exactly: settled in one scan."""
        changes = before.changes + (not set(layouts) & set(before.candidates))
        return cls(candidates=layouts, proofs=1, changes=changes, calibrated=True)

    @property
    def settled(self) -> bool:
        """Every remaining candidate types pack codes the same way."""
        return len(layout_families(self.candidates)) == 1

    def describe(self) -> str:
        """One line for the technician (``scanners``, ``selftest``)."""
        shown = ", ".join(self.candidates[:6]) + (", …" if len(self.candidates) > 6 else "")
        if self.calibrated:
            text = f"learned {shown} from the calibration card"
        elif self.settled:
            text = f"learned {shown} ({self.proofs} scans proved it)"
        elif self.proofs:
            text = (
                f"learning: {len(self.candidates)} candidates left ({shown}) after "
                f"{self.proofs} scans"
            )
        else:
            text = "nothing learned yet"
        if self.misfits:
            text += (
                f"; {len(self.misfits)} of {RELEARN_AFTER} different codes fit only "
                f"{', '.join(self.pending[:6])} (reconfigured?)"
            )
        if self.changes:
            text += f"; found reconfigured {self.changes} time(s)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "candidates": list(self.candidates),
            "settled": self.settled,
            "proofs": self.proofs,
            "pending": list(self.pending),
            "misfits": len(self.misfits),
            "changes": self.changes,
            "calibrated": self.calibrated,
        }

    def stored(self) -> dict[str, Any]:
        """What the state database keeps (:meth:`from_stored` reads it back)."""
        return {**self.to_json(), "misfits": list(self.misfits)}

    @classmethod
    def from_stored(cls, data: Any, layouts: tuple[str, ...]) -> LayoutBelief | None:
        """The stored belief, restricted to ``layouts`` (the scanner's ``auto_layouts`` now);
        None when it is unreadable or nothing of it applies any more."""
        if not isinstance(data, dict):
            return None
        lists = [data.get(key) for key in ("candidates", "pending", "misfits")]
        counts = [data.get(key) for key in ("proofs", "changes")]
        if (
            not all(
                isinstance(value, list) and all(isinstance(v, str) for v in value)
                for value in lists
            )
            or not all(type(value) is int and value >= 0 for value in counts)
            or type(data.get("calibrated")) is not bool
        ):
            return None  # a damaged row: learn again rather than trust part of it
        stored_candidates, stored_pending, stored_misfits = (list(v or ()) for v in lists)
        candidates = tuple(name for name in layouts if name in stored_candidates)
        pending = tuple(name for name in layouts if name in stored_pending)
        belief = cls(
            candidates=candidates,
            proofs=data["proofs"],
            pending=pending,
            misfits=tuple(stored_misfits)[: RELEARN_AFTER - 1] if pending else (),
            changes=data["changes"],
            calibrated=data["calibrated"],
        )
        return belief if candidates else None


@dataclass(frozen=True, slots=True)
class Observation:
    """:func:`observe`'s answer: the belief after the scan, what to make of the scan, and the
    layouts whose readings count (for ``FITS`` / ``RELEARNED``) or the misfit's layouts."""

    belief: LayoutBelief
    verdict: Verdict
    layouts: tuple[str, ...]


def observe(
    belief: LayoutBelief, valid: Mapping[str, PackIdentifier], code_digest: str
) -> Observation:
    """Update ``belief`` with one scan valid under the layouts of ``valid`` (see the module
    docstring). ``code_digest`` identifies the code scanned (:func:`digest`), so that rescanning
    one box is one piece of evidence."""
    if not valid:
        return Observation(belief, Verdict.NOTHING, ())
    fitting = tuple(name for name in belief.candidates if name in valid)
    pending = tuple(name for name in belief.pending if name in valid)
    if fitting:
        # a scan that fits the old candidates but not the pending ones ends the pending evidence
        narrowed = replace(
            belief,
            candidates=fitting,
            proofs=belief.proofs + 1,
            pending=pending,
            misfits=belief.misfits if pending else (),
        )
        return Observation(narrowed, Verdict.FITS, fitting)
    if pending:
        misfits = belief.misfits
        if code_digest not in misfits:
            misfits = (*misfits, code_digest)
    else:  # a first misfit, or one that shares nothing with the earlier ones: start again
        pending = tuple(valid)
        misfits = (code_digest,)
    if len(misfits) >= RELEARN_AFTER:
        relearned = LayoutBelief(
            candidates=pending, proofs=len(misfits), changes=belief.changes + 1
        )
        return Observation(relearned, Verdict.RELEARNED, pending)
    return Observation(replace(belief, pending=pending, misfits=misfits), Verdict.MISFIT, pending)


def digest(text: str) -> str:
    """A short fingerprint of one code's text (the belief never stores pack data)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
