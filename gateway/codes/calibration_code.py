"""The gateway's own calibration code: a valid GS1 element string that is **not** a medicine.

The technician's card (:mod:`gateway.selftest.card_codes`) prints it; the decoder recognises it
so that it never reaches the NMVS (its GTIN is GS1's example number: verifying it would be an
alert), and layout ``auto`` learns the scanner's keyboard country from it in one scan. It holds
every GS1 set-82 character that moves between the US, French and German keyboard layouts: the
twenty punctuation characters in the batch, the letters that move in both cases in the serial,
every digit, and two FNC1 separators (transmitted as GS).
"""

from __future__ import annotations

from typing import Final

GS: Final = "\x1d"

# GS1 element strings whose AI starts with these two digits have a predefined length and need no
# separator after them (GS1 General Specifications, gs1-barcode-engine ``fixedAIprefixes``).
_PREDEFINED_LENGTH_PREFIXES: Final = frozenset(
    [f"{n:02d}" for n in (*range(5), *range(11, 21), *range(31, 37), 41)]
)

LAYOUT_SENSITIVE_PUNCTUATION: Final = "!\"%&'()*+,-./:;<=>?_"
LAYOUT_SENSITIVE_LETTERS: Final = "aqwzymAQWZYM"

Element = tuple[str, str]
"""A GS1 element string as (application identifier, value)."""


def separated(elements: tuple[Element, ...]) -> list[tuple[str, str, bool]]:
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
    return "".join(ai + value + (GS if gs else "") for ai, value, gs in separated(elements))


CALIBRATION_ELEMENTS: Final[tuple[Element, ...]] = (
    ("01", "09506000134352"),
    ("17", "281231"),
    ("10", LAYOUT_SENSITIVE_PUNCTUATION),
    ("21", LAYOUT_SENSITIVE_LETTERS),
    ("710", "0123456789"),
)
CALIBRATION_GTIN: Final = CALIBRATION_ELEMENTS[0][1]  # GS1's example number: never a medicine
CALIBRATION_AIM: Final = "]d2"
CALIBRATION_PAYLOAD: Final = gs1_payload(CALIBRATION_ELEMENTS)
"""Exactly what a correctly configured scanner transmits for the calibration code (after the AIM
identifier ``]d2`` when the scanner sends it)."""
