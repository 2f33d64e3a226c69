"""The codes printed on the calibration card, and the exact data a scanner must transmit for each.

Pure data, no I/O: the calibration logic imports :data:`CALIBRATION_PAYLOAD` (and
:data:`CALIBRATION_AIM`) from here to compare a scanner's key events with what the card holds;
:mod:`gateway.selftest.card` renders these codes.

The calibration code is a valid GS1 element string that contains every GS1 set-82 character
that moves between the US, French and German keyboard layouts (``scanners.md`` §2.3/§2.4): the
twenty punctuation characters in the batch, the letters that move in both cases in the serial,
every digit, and two FNC1 separators (transmitted as GS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

GS: Final = "\x1d"
RS: Final = "\x1e"
EOT: Final = "\x04"

# GS1 element strings whose AI starts with these two digits have a predefined length and need no
# separator after them (GS1 General Specifications, gs1-barcode-engine ``fixedAIprefixes``).
_PREDEFINED_LENGTH_PREFIXES: Final = frozenset(
    [f"{n:02d}" for n in (*range(5), *range(11, 21), *range(31, 37), 41)]
)

LAYOUT_SENSITIVE_PUNCTUATION: Final = "!\"%&'()*+,-./:;<=>?_"
LAYOUT_SENSITIVE_LETTERS: Final = "aqwzymAQWZYM"

Element = tuple[str, str]
"""A GS1 element string as (application identifier, value)."""


def gs1_payload(elements: tuple[Element, ...]) -> str:
    """What a scanner transmits for a GS1 DataMatrix holding ``elements``, without the AIM id.

    The leading FNC1 becomes the AIM identifier ``]d2`` (not data); every FNC1 separator after a
    variable-length element that is not last is transmitted as GS.
    """
    parts = []
    for index, (ai, value) in enumerate(elements):
        parts.append(ai + value)
        is_last = index == len(elements) - 1
        if not is_last and ai[:2] not in _PREDEFINED_LENGTH_PREFIXES:
            parts.append(GS)
    return "".join(parts)


def gs1_bracketed(elements: tuple[Element, ...]) -> str:
    """The ``[AI]value`` form GS1 encoders take (square brackets: ``(`` and ``)`` are data here)."""
    return "".join(f"[{ai}]{value}" for ai, value in elements)


def shown(payload: str) -> str:
    """A payload as printed under its code: control characters as ``<GS>``, ``<RS>``, ``<EOT>``."""
    return payload.replace(GS, "<GS>").replace(RS, "<RS>").replace(EOT, "<EOT>")


@dataclass(frozen=True, slots=True)
class CardCode:
    """One Data Matrix on the card.

    ``gs1`` codes start with FNC1 (AIM ``]d2``) and are built from ``elements``; ``plain`` codes
    (the IFA PPN, AIM ``]d1``) hold ``payload`` as literal bytes, header and trailer included.
    """

    key: str
    kind: Literal["gs1", "plain"]
    payload: str
    elements: tuple[Element, ...]
    caption_en: str
    caption_fr: str

    @property
    def aim(self) -> str:
        return "]d2" if self.kind == "gs1" else "]d1"


def _gs1_code(
    key: str, elements: tuple[Element, ...], caption_en: str, caption_fr: str
) -> CardCode:
    return CardCode(key, "gs1", gs1_payload(elements), elements, caption_en, caption_fr)


CALIBRATION_ELEMENTS: Final[tuple[Element, ...]] = (
    ("01", "09506000134352"),
    ("17", "281231"),
    ("10", LAYOUT_SENSITIVE_PUNCTUATION),
    ("21", LAYOUT_SENSITIVE_LETTERS),
    ("710", "0123456789"),
)
CALIBRATION_AIM: Final = "]d2"
CALIBRATION_PAYLOAD: Final = gs1_payload(CALIBRATION_ELEMENTS)
"""Exactly what a correctly configured scanner transmits for the calibration code (after the AIM
identifier ``]d2`` when the scanner sends it)."""

PPN_PAYLOAD: Final = f"[)>{RS}06{GS}9N110375286414{GS}1TX4711A{GS}D280630{GS}SPX7Y3ZQK9R{RS}{EOT}"

CALIBRATION = _gs1_code(
    "calibration",
    CALIBRATION_ELEMENTS,
    "Calibration code - not a medicine. Scan it when `nmvs-gateway selftest --calibrate` asks.",
    "Code d'étalonnage - pas un médicament. À scanner quand `nmvs-gateway selftest --calibrate` le demande.",
)
FRENCH_PACK = _gs1_code(
    "french-pack",
    (("01", "03400936525788"), ("17", "271130"), ("10", "X23A71"), ("21", "5G7KZ8P1Q4WX")),
    "Typical French pack: GTIN from CIP13 34009..., expiry, batch, serial.",
    "Boîte française typique : GTIN issu du CIP13 34009..., péremption, lot, numéro de série.",
)
GERMAN_PPN = CardCode(
    "german-ppn",
    "plain",
    PPN_PAYLOAD,
    (),
    "German pack, IFA PPN code (format 06: RS, GS and EOT must arrive).",
    "Boîte allemande, code PPN IFA (format 06 : RS, GS et EOT doivent arriver).",
)
DAY_00_EXPIRY = _gs1_code(
    "day-00-expiry",
    (("01", "04150138327077"), ("17", "290500"), ("10", "LOT00"), ("21", "SN00day")),
    "Expiry with day 00 (whole month): must reach the NMVS as 290500, unchanged.",
    "Péremption au jour 00 (mois entier) : doit arriver au NMVS tel quel, 290500.",
)

CARD_CODES: Final = (CALIBRATION, FRENCH_PACK, GERMAN_PPN, DAY_00_EXPIRY)
