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


def _separated(elements: tuple[Element, ...]) -> list[tuple[str, str, bool]]:
    """Each element with whether an FNC1 separator (transmitted as GS) follows it: after a
    variable-length element that is not last."""
    last = len(elements) - 1
    return [
        (ai, value, index != last and ai[:2] not in _PREDEFINED_LENGTH_PREFIXES)
        for index, (ai, value) in enumerate(elements)
    ]


def gs1_payload(elements: tuple[Element, ...]) -> str:
    """What a scanner transmits for a GS1 DataMatrix holding ``elements``, without the AIM id
    (the leading FNC1 is the AIM identifier ``]d2``, not data)."""
    return "".join(ai + value + (GS if gs else "") for ai, value, gs in _separated(elements))


def gs1_bracketed(elements: tuple[Element, ...]) -> str:
    """The ``[AI]value`` form GS1 encoders take (square brackets: ``(`` and ``)`` are data here)."""
    return "".join(f"[{ai}]{value}" for ai, value in elements)


def shown(data: str) -> str:
    """Data as printed on the card: control characters as ``<GS>``, ``<RS>``, ``<EOT>``."""
    return data.replace(GS, "<GS>").replace(RS, "<RS>").replace(EOT, "<EOT>")


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

    def readable_lines(self) -> list[str]:
        """The content as printed under the code: one element per line, separators shown."""
        if self.kind == "gs1":
            return [
                f"({ai}) {value}" + (" <GS>" if gs else "")
                for ai, value, gs in _separated(self.elements)
            ]
        fields = self.payload.split(GS)
        return [
            shown(field) + ("<GS>" if index < len(fields) - 1 else "")
            for index, field in enumerate(fields)
        ]


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
    "Boîte française typique\u00a0: GTIN issu du CIP13 34009..., péremption, lot, numéro de série.",
)
GERMAN_PPN = CardCode(
    "german-ppn",
    "plain",
    PPN_PAYLOAD,
    (),
    "German pack, IFA PPN code (format 06: RS, GS and EOT must arrive).",
    "Boîte allemande, code PPN IFA (format 06\u00a0: RS, GS et EOT doivent arriver).",
)
DAY_00_EXPIRY = _gs1_code(
    "day-00-expiry",
    (("01", "04150138327077"), ("17", "290500"), ("10", "LOT00"), ("21", "SN00day")),
    "Expiry with day 00 (whole month): must reach the NMVS as 290500, unchanged.",
    "Péremption au jour 00 (mois entier)\u00a0: doit arriver au NMVS tel quel, 290500.",
)

CARD_CODES: Final = (CALIBRATION, FRENCH_PACK, GERMAN_PPN, DAY_00_EXPIRY)
