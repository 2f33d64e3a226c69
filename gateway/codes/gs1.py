"""GS1 element strings (the data of a GS1 DataMatrix) → the FMD fields, exactly or not at all.

Why not ``biip.parse`` on its own: biip splits a variable-length field greedily up to the next
separator, so a code whose GS were dropped comes back silently mis-split (``21ABC10LOT`` →
serial ``ABC10LOT``), and a wrong GTIN check digit is only reported as a field. Both would send
a wrong pack to the NMVS. This module therefore segments the message itself.

**The literal reading** (a variable-length value runs to the next GS, a predefined-length one
stops at its length) is the only reading of a message that holds at least one GS: when it is
not a valid FMD code, the problems it has (``FIELD_TOO_LONG``, ``MISSING_FIELD``, …) are the
answer. Such a message is never re-cut: a scanner drops every GS or none, so a message with
separators that is invalid was printed or read wrong, and any other cut of it would be a pack
that is not on the box.

**The split search** is a recovery for scanners that drop *every* separator, so it runs only on
a message without any GS. It enumerates every segmentation that satisfies all the constraints —
each AI's format and length from biip's GS1 AI table, GS1 set 82, the GTIN check digit, a valid
``YYMMDD`` date, AIs 01, 17, 10 and 21 exactly once and at most one NHRN (710–717). Exactly one
valid split is accepted with a ``GS_MISSING`` warning; more than one is refused. It is a
memoised count over (position, FMD fields seen), capped at two solutions and at
:data:`MAX_STEPS` element checks.

**Which AIs the search may cut at** is a setting, :data:`SPLIT_AIS`:

- ``fmd`` (the default): only the elements of the FMD code, 01, 17, 10, 21 and the NHRNs
  710–717. The delegated regulation's unique identifier is exactly these; other AIs are allowed
  on the box but rare on medicine packs, and admitting all 500+ of them makes a serial that
  happens to contain ``91…`` or ``240…`` a second possible split, so about one dropped-separator
  scan in ten that is provably unique among FMD elements would be refused. The price: a box that
  *does* carry a non-FMD element, read by a scanner that drops every GS, has that element run
  into the field before it (a serial ``SER91XYZ`` for ``SER`` + AI 91 ``XYZ``). A scanner that
  drops GS is refused as soon as it is fixed (``GS_MISSING`` warns on every such scan), and a
  market whose packs carry extra AIs should set ``gs1``.
- ``gs1``: every AI of the GS1 table; a run-together non-FMD element is a possible split too,
  so such scans are refused as ambiguous instead.

An element repeated with the same value is one element (GS1 allows repeating an element);
repeated with different values it is ``DUPLICATE_FIELD``.

biip still provides the AI dictionary (formats, predefined lengths) and the GS1 check digit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from biip.gs1_application_identifiers import _GS1_APPLICATION_IDENTIFIERS

from gateway.codes.pack import Nhrn, PackIdentifier
from gateway.codes.problems import Problem, ProblemCode, error, warning
from gateway.codes.validation import (
    GTIN_LABELS,
    NHRN_AIS,
    char_name,
    expiry_problems,
    first_outside_set_82,
    gtin_problems,
    is_valid_date,
    is_valid_gtin,
    nhrn_label,
    text_field_problems,
)

GS = "\x1d"
MAX_STEPS = 2_000  # element checks per message; run-together digit-only fields need < 500

# FMD elements and the bit recording that a split already holds one.
_FMD_BITS = {"01": 1, "17": 2, "10": 4, "21": 8} | dict.fromkeys(NHRN_AIS, 16)
_REQUIRED = 1 | 2 | 4 | 8


@dataclass(frozen=True, slots=True)
class ApplicationIdentifier:
    ai: str
    format: str
    fixed_length: int | None  # predefined length: no separator follows
    max_length: int
    value_pattern: re.Pattern[str]


def _load_ais() -> dict[str, ApplicationIdentifier]:
    table = {}
    for ai, entry in _GS1_APPLICATION_IDENTIFIERS.items():
        lengths = [int(n) for n in re.findall(r"\d+", entry.format.split("+", 1)[1])]
        # The largest number of each component is its maximum length ("X..20", "N14", "N..8").
        max_length = sum(
            int(re.findall(r"\d+", token)[-1])
            for token in entry.format.split("+")[1:]
            if re.search(r"\d", token)
        )
        table[ai] = ApplicationIdentifier(
            ai=ai,
            format=entry.format,
            fixed_length=None if entry.separator_required else sum(lengths),
            max_length=max_length,
            # ASCII: in Python "\\d" also matches "١" or "２", which no GS1 element holds
            value_pattern=re.compile(entry.pattern[1 + len(ai) :], re.ASCII),
        )
    return table


AIS = _load_ais()
FMD_AIS = frozenset({"01", "17", "10", "21", *NHRN_AIS})
# The AIs the split search may cut a run-together message at (see the module docstring).
SPLIT_AIS: dict[str, frozenset[str]] = {"fmd": FMD_AIS, "gs1": frozenset(AIS)}
DEFAULT_SPLIT_AIS = "fmd"


@dataclass(frozen=True, slots=True)
class Element:
    ai: str
    value: str


@dataclass(frozen=True, slots=True)
class Reading:
    """The outcome for one message (GS1 or ISO/IEC 15434): the pack when determined, and every
    problem found."""

    pack: PackIdentifier | None
    problems: tuple[Problem, ...]

    @classmethod
    def refused(cls, code: ProblemCode, detail: str, fr: str = "") -> Reading:
        return cls(None, (error(code, detail, fr),))


def lookup_ai(
    text: str, pos: int, universe: frozenset[str] | None = None
) -> ApplicationIdentifier | None:
    """The AI starting at ``pos`` (GS1 AIs are prefix-free, so at most one matches), when it
    is in ``universe`` (default: every AI)."""
    for size in (2, 3, 4):
        code = text[pos : pos + size]
        found = AIS.get(code)
        if found is not None:
            return found if universe is None or code in universe else None
    return None


def element_is_valid(ai: ApplicationIdentifier, value: str) -> bool:
    if not ai.value_pattern.fullmatch(value):
        return False
    if ai.ai == "01":
        return is_valid_gtin(value)
    if ai.ai == "17":
        return is_valid_date(value)
    return True


def parse_gs1(text: str, aim: str | None, split_ais: str | None = DEFAULT_SPLIT_AIS) -> Reading:
    """Read a GS1 element string (AIM id already removed, GS substitutes already turned into GS).

    ``split_ais`` names the AIs the split search may use (a key of :data:`SPLIT_AIS`); None
    turns the search off (inside an ISO/IEC 15434 envelope, whose GS did arrive)."""
    if not text.replace(GS, ""):  # no element at all: never a reading without problem or pack
        return Reading.refused(
            ProblemCode.UNKNOWN_FORMAT,
            "only group separators, no GS1 element",
            "seulement des séparateurs de groupe, aucun élément GS1",
        )
    literal, literal_problems = _literal_split(text)
    if (literal is not None and not literal_problems) or GS in text or split_ais is None:
        return Reading(_pack(literal, aim) if literal is not None else None, literal_problems)
    search = _SplitSearch(text, SPLIT_AIS[split_ais])
    try:
        count = search.count(0, 0)
    except _TooManySplits:
        return Reading.refused(
            ProblemCode.GS_MISSING,
            "fields ran together and too many splits are possible",
            "les champs se suivent sans séparateur et trop de découpages sont possibles",
        )
    if count == 1:
        return Reading(
            _pack(search.unique_split(), aim),
            (
                warning(
                    ProblemCode.GS_MISSING,
                    "fields ran together; the only valid split was used",
                    "les champs se suivent sans séparateur ; le seul découpage valide a été retenu",
                ),
            ),
        )
    if count > 1:
        return Reading.refused(
            ProblemCode.GS_MISSING,
            "fields ran together and several splits are valid packs",
            "les champs se suivent sans séparateur et plusieurs découpages sont des boîtes valides",
        )
    return Reading(None, literal_problems)


def _literal_split(text: str) -> tuple[list[Element] | None, tuple[Problem, ...]]:
    """The split the separators state: a variable-length value runs to the next GS.

    Returns the FMD elements (None unless each required one is present exactly once) and every
    problem of that reading: each element's content, then presence and repetition.
    """
    elements: list[Element] = []
    problems: list[Problem] = []
    pos, end = 0, len(text)
    while pos < end:
        if text[pos] == GS:
            pos += 1
            continue
        ai = lookup_ai(text, pos)
        if ai is None:
            problems.append(
                error(
                    ProblemCode.UNKNOWN_FORMAT,
                    f"no GS1 application identifier at {text[pos : pos + 4]!r} (position {pos + 1})",
                    f"aucun identifiant d'application GS1 à {text[pos : pos + 4]!r} "
                    f"(position {pos + 1})",
                )
            )
            break
        start = pos + len(ai.ai)
        chunk_end = text.find(GS, start)
        chunk_end = end if chunk_end < 0 else chunk_end
        stop = chunk_end if ai.fixed_length is None else min(start + ai.fixed_length, chunk_end)
        elements.append(Element(ai.ai, text[start:stop]))
        pos = stop
    for element in elements:
        problems += _element_problems(element)
    fields, presence = _fmd_fields(elements)
    return fields, (*problems, *presence)


def _element_problems(element: Element) -> list[Problem]:
    ai, value = element.ai, element.value
    if ai == "01":
        return gtin_problems(GTIN_LABELS[ai], value)
    if ai == "17":
        return expiry_problems(GTIN_LABELS[ai], value)
    if ai in _FMD_BITS:
        return text_field_problems(GTIN_LABELS.get(ai) or nhrn_label(ai), value)
    definition = AIS[ai]
    if element_is_valid(definition, value):
        return []
    bad = first_outside_set_82(value)
    if bad is not None:
        return [
            error(
                ProblemCode.BAD_CHARSET,
                f"AI ({ai}) contains {char_name(bad)}",
                f"l'AI ({ai}) contient {char_name(bad)}",
            )
        ]
    return [
        error(
            ProblemCode.UNKNOWN_FORMAT,
            f"AI ({ai}) value {value!r} does not match {definition.format}",
            f"la valeur {value!r} de l'AI ({ai}) ne suit pas le format {definition.format}",
        )
    ]


def _fmd_fields(elements: list[Element]) -> tuple[list[Element] | None, list[Problem]]:
    """The FMD elements when each required one is present exactly once, else the problems."""
    if not elements:
        return None, []
    elements = list(dict.fromkeys(elements))  # the same element twice is one element
    by_ai: dict[str, list[str]] = {}
    for element in elements:
        if element.ai in _FMD_BITS:
            by_ai.setdefault("71x" if element.ai in NHRN_AIS else element.ai, []).append(element.ai)
    if "01" not in by_ai and "21" not in by_ai:
        return None, [
            error(
                ProblemCode.NOT_A_PACK_CODE,
                "a GS1 code without GTIN (01) or serial (21)",
                "un code GS1 sans GTIN (01) ni numéro de série (21)",
            )
        ]
    if not {"17", "10", "21"} & by_ai.keys():
        return None, [
            error(
                ProblemCode.NOT_A_PACK_CODE,
                "a GS1 code with a GTIN only",
                "un code GS1 qui ne porte qu'un GTIN",
            )
        ]
    problems = [
        error(ProblemCode.MISSING_FIELD, f"{label.en} is missing", f"{label.fr} est absent")
        for ai, label in GTIN_LABELS.items()
        if ai not in by_ai
    ]
    for key, ais in by_ai.items():
        if len(ais) > 1:
            label = GTIN_LABELS.get(key) or nhrn_label(", ".join(ais))
            problems.append(
                error(
                    ProblemCode.DUPLICATE_FIELD,
                    f"{label.en} appears {len(ais)} times",
                    f"{label.fr} apparaît {len(ais)} fois",
                )
            )
    if problems:
        return None, problems
    return [element for element in elements if element.ai in _FMD_BITS], []


def _pack(elements: list[Element], aim: str | None) -> PackIdentifier:
    values = {element.ai: element.value for element in elements}
    nhrn = next((Nhrn(ai, value) for ai, value in values.items() if ai in NHRN_AIS), None)
    return PackIdentifier(
        scheme="GTIN",
        product_code=values["01"],
        batch=values["10"],
        expiry=values["17"],
        serial=values["21"],
        nhrn=nhrn,
        aim=aim,
    )


class _TooManySplits(Exception):
    """The search went over MAX_STEPS: no split can be proven unique."""


class _SplitSearch:
    """Counts the valid segmentations of one message without GS (capped at 2) and rebuilds a
    unique one; ``universe``: the AIs it may cut at."""

    def __init__(self, text: str, universe: frozenset[str]) -> None:
        self.text = text
        self.universe = universe
        self.steps = 0
        # (position, FMD bits seen) → (number of valid completions capped at 2, first step taken)
        self.memo: dict[tuple[int, int], tuple[int, tuple[Element, int] | None]] = {}

    def count(self, pos: int, seen: int) -> int:
        key = (pos, seen)
        cached = self.memo.get(key)
        if cached is not None:
            return cached[0]
        total, first = 0, None
        if pos == len(self.text):
            total = 1 if seen & _REQUIRED == _REQUIRED else 0
        else:
            for element, after in self._elements_at(pos, seen):
                found = self.count(after, seen | _FMD_BITS.get(element.ai, 0))
                if found and first is None:
                    first = (element, after)
                total += found
                if total > 1:
                    total = 2
                    break
        self.memo[key] = (total, first)
        return total

    def _elements_at(self, pos: int, seen: int) -> list[tuple[Element, int]]:
        text = self.text
        ai = lookup_ai(text, pos, self.universe)
        if ai is None or _FMD_BITS.get(ai.ai, 0) & seen:
            return []
        start = pos + len(ai.ai)
        if ai.fixed_length is not None:
            stops = [start + ai.fixed_length] if start + ai.fixed_length <= len(text) else []
        else:
            stops = list(range(start + 1, min(start + ai.max_length, len(text)) + 1))
        candidates = []
        for stop in stops:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise _TooManySplits
            value = text[start:stop]
            if element_is_valid(ai, value):
                candidates.append((Element(ai.ai, value), stop))
        return candidates

    def unique_split(self) -> list[Element]:
        elements: list[Element] = []
        pos, seen = 0, 0
        while True:
            step = self.memo[(pos, seen)][1]
            if step is None:
                return [element for element in elements if element.ai in _FMD_BITS]
            element, pos = step
            seen |= _FMD_BITS.get(element.ai, 0)
            elements.append(element)
