"""The codes printed on the calibration card, and the exact data a scanner must transmit for each.

Pure data, no I/O: :mod:`gateway.selftest.card` renders these codes. The calibration code itself
(:data:`CALIBRATION_PAYLOAD`, :data:`CALIBRATION_AIM`) is defined beside the decoder, in
:mod:`gateway.codes.calibration_code`, which recognises it; it is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from gateway.codes.calibration_code import (
    CALIBRATION_AIM,
    CALIBRATION_ELEMENTS,
    CALIBRATION_PAYLOAD,
    GS,
    LAYOUT_SENSITIVE_LETTERS,
    LAYOUT_SENSITIVE_PUNCTUATION,
    Element,
    gs1_payload,
    separated,
)

RS: Final = "\x1e"
EOT: Final = "\x04"


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
                for ai, value, gs in separated(self.elements)
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

__all__ = [
    "CALIBRATION_AIM",
    "CALIBRATION_PAYLOAD",
    "CARD_CODES",
    "EOT",
    "GS",
    "LAYOUT_SENSITIVE_LETTERS",
    "LAYOUT_SENSITIVE_PUNCTUATION",
    "RS",
    "CardCode",
    "gs1_bracketed",
    "shown",
]
