"""Scanned text → which kind of code it is → the pack reading, with a diagnosis when it is none.

Input is the data as the scanner sent it, with the AIM symbology identifier already split off.
Dispatch: the identifier first — another symbology is ``NOT_A_PACK_CODE``, and only the GS1
identifiers (:data:`GS1_AIMS`) make the data GS1 element strings, so a ``]d1`` Data Matrix is
read only as an ISO/IEC 15434 envelope (an IFA PPN code). Then by content: ISO/IEC 15434
(``[)>``) to :mod:`gateway.codes.iso15434`; text starting with a digit to :mod:`gateway.codes.gs1`;
recognisable non-pack codes (EAN/UPC, a PZN Code 39, a web address, another symbology) to
``NOT_A_PACK_CODE``. Characters that no pack code contains but a keyboard-country mix-up
produces (``$d2`` or ``+d2`` for ``]d2``, a code starting with what an AZERTY digit key types
without Shift — ``à&é"'(-è_ç`` —, any non-ASCII letter) add ``SUSPECT_LAYOUT_MISMATCH``.
"""

from __future__ import annotations

import re
from functools import cache

from gateway.codes.calibration_code import CALIBRATION_GTIN, CALIBRATION_PAYLOAD
from gateway.codes.gs1 import DEFAULT_SPLIT_AIS, GS, Reading, parse_gs1
from gateway.codes.iso15434 import HEADER, parse_iso15434
from gateway.codes.keyboard.layouts import get_layout
from gateway.codes.problems import Problem, ProblemCode, error
from gateway.codes.validation import char_name, gtin_check_digit

# ISO/IEC 15424 symbology identifier: "]", the symbology letter, one modifier character.
_AIM = re.compile(r"\][A-Za-z][0-9A-Za-z]")
# Data Matrix, GS1-128, QR, GS1 DataBar, GS1 DotCode: the symbologies a pack code can arrive in.
_PACK_SYMBOLOGIES = frozenset("dCQeJ")
# The identifiers that say "GS1 data" (FNC1 in first position, ISO/IEC 15424): only under these
# is the data a GS1 element string. Another modifier (``]d1`` plain Data Matrix, ``]Q1``, ``]C0``)
# carries no AIs: an ISO/IEC 15434 envelope (an IFA PPN code, ``]d1``) is read, nothing else.
GS1_AIMS = frozenset({"]d2", "]C1", "]Q3", "]e0", "]J1"})
_MISREAD_AIM = re.compile(r"[$+][dCQe].")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_PZN_CODE_39 = re.compile(r"-[0-9]{7,8}")
_RETAIL_BARCODES = {8: "EAN-8", 12: "UPC-A", 13: "EAN-13", 14: "GTIN-14"}


CALIBRATION_CODE = error(
    ProblemCode.NOT_A_PACK_CODE,
    "the gateway's calibration code, from the technician's card",
    "le code d'étalonnage de la passerelle, de la carte du technicien",
)


def split_aim(text: str) -> tuple[str | None, str]:
    """``("]d2", rest)`` when the text starts with an AIM symbology identifier, else ``(None, text)``."""
    if _AIM.match(text):
        return text[:3], text[3:]
    return None, text


def read_code(
    body: str,
    aim: str | None,
    gs_substitute: str | None = None,
    split_ais: str = DEFAULT_SPLIT_AIS,
) -> Reading:
    """Read one scan's data (without AIM id, prefix or suffix); ``gs_substitute`` stands for GS;
    ``split_ais``: the AIs a run-together GS1 message may be cut at (:data:`SPLIT_AIS`)."""
    if _MISREAD_AIM.match(body):  # before substitution: "$d2" stays visible with "$" for GS
        # A mangled AIM id: everything after it is mangled too, so this is the one diagnosis.
        return Reading.refused(
            ProblemCode.SUSPECT_LAYOUT_MISMATCH,
            f"{body[:3]!r} at the start looks like an AIM id ']{body[1]}…' typed with another keyboard country",
            f"{body[:3]!r} au début ressemble à un identifiant AIM ']{body[1]}…' tapé avec un autre pays de clavier",
        )
    if _PZN_CODE_39.fullmatch(body):  # before the AZERTY test: "-" is also what KEY_6 types
        return Reading.refused(
            ProblemCode.NOT_A_PACK_CODE, f"a PZN barcode {body}", f"un code-barres PZN {body}"
        )
    digit = _azerty_digits().get(body[:1])
    if digit is not None:
        return Reading.refused(
            ProblemCode.SUSPECT_LAYOUT_MISMATCH,
            f"{body[0]!r} at the start is what the digit {digit} key types on an AZERTY "
            "keyboard without Shift",
            f"{body[0]!r} au début est ce que tape la touche du chiffre {digit} sur un clavier "
            "AZERTY sans Maj",
        )
    suspicion = _foreign_character(body)
    if gs_substitute is not None:
        body = body.replace(gs_substitute, GS)
    if not body:
        return Reading.refused(
            ProblemCode.UNKNOWN_FORMAT, "nothing was scanned", "rien n'a été scanné"
        )
    if aim is not None and aim[1] not in _PACK_SYMBOLOGIES:
        return Reading.refused(
            ProblemCode.NOT_A_PACK_CODE,
            f"a barcode of symbology {aim}",
            f"un code-barres de symbologie {aim}",
        )
    if body == CALIBRATION_PAYLOAD:  # a valid GS1 string, but GS1's example GTIN: never sent
        return Reading(None, (CALIBRATION_CODE,))
    if body.startswith(HEADER) and aim not in GS1_AIMS:
        reading = parse_iso15434(body, aim)
    elif aim is not None and aim not in GS1_AIMS:
        return Reading.refused(
            ProblemCode.NOT_A_PACK_CODE,
            f"a {aim} symbol holds no GS1 data (GS1 codes arrive as {', '.join(sorted(GS1_AIMS))})",
            f"un symbole {aim} ne contient pas de données GS1 (les codes GS1 arrivent en "
            f"{', '.join(sorted(GS1_AIMS))})",
        )
    elif (body[0].isascii() and body[0].isdigit()) or body[0] == GS:
        name = _retail_barcode(body)
        if name is not None:
            return Reading.refused(
                ProblemCode.NOT_A_PACK_CODE,
                f"{name} product barcode {body}",
                f"code-barres produit {name} {body}",
            )
        reading = parse_gs1(body, aim, split_ais)
    elif suspicion is not None:
        return Reading(None, (suspicion,))
    elif _URL.match(body):
        return Reading.refused(ProblemCode.NOT_A_PACK_CODE, "a web address", "une adresse web")
    else:
        return Reading.refused(
            ProblemCode.UNKNOWN_FORMAT,
            f"the code starts with {char_name(body[0])}",
            f"le code commence par {char_name(body[0])}",
        )
    if reading.pack is not None and reading.pack.product_code == CALIBRATION_GTIN:
        # the card's code typed with another layout, or any code with that example GTIN
        return Reading.refused(
            ProblemCode.NOT_A_PACK_CODE,
            f"GTIN {CALIBRATION_GTIN} is GS1's example number (the calibration card's), "
            "not a medicine",
            f"le GTIN {CALIBRATION_GTIN} est le numéro d'exemple de GS1 (celui de la carte "
            "d'étalonnage), pas un médicament",
        )
    if suspicion is not None and reading.problems:
        return Reading(reading.pack, (suspicion, *reading.problems))
    return reading


def _retail_barcode(body: str) -> str | None:
    """``EAN-13`` etc. when ``body`` is a retail product number with a valid check digit."""
    name = _RETAIL_BARCODES.get(len(body))
    if name and body.isascii() and body.isdigit() and gtin_check_digit(body[:-1]) == int(body[-1]):
        return name
    return None


@cache
def _azerty_digits() -> dict[str, str]:
    """What the digit keys type without Shift on a French keyboard → the digit (from the tables)."""
    us, fr = get_layout("us"), get_layout("fr")
    chords = us.chords()
    return {
        typed: digit
        for digit in "0123456789"
        if (typed := fr.output(chords[digit].code, False, False)) is not None
    }


def _foreign_character(body: str) -> Problem | None:
    for char in body:
        if not char.isascii() and char.isprintable():
            return error(
                ProblemCode.SUSPECT_LAYOUT_MISMATCH,
                f"{char_name(char)} cannot be in a pack code but is typical of a keyboard mix-up",
                f"{char_name(char)} ne peut pas figurer dans un code de boîte mais est typique "
                "d'une confusion de clavier",
            )
    return None
