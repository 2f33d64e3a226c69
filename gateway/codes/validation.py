"""Content rules for one pack identifier: GS1 set 82, lengths, check digits, ``YYMMDD`` dates.

The same predicates serve three callers: the GS1 split enumeration (is this candidate element
valid?), the parsers (what exactly is wrong with the fields the code literally holds?) and
:func:`validate_pack` for packs that arrive already split (an LGO request over MQTT). Nothing
here changes a character: the functions only answer and explain.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from biip.checksums import gs1_standard_check_digit

from gateway.codes.pack import PackIdentifier
from gateway.codes.problems import Problem, ProblemCode, error

SET_82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
MAX_TEXT_FIELD = 20  # batch, serial and NHRN: X..20 (GS1) and the IFA PPN limits
MAX_PPN = 22
NHRN_AIS = frozenset(f"71{digit}" for digit in range(8))

_DIGITS = re.compile(r"[0-9]+")  # ASCII only: \d would also take "２" (fullwidth)
_ALNUM = re.compile(r"[0-9A-Z]+")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def char_name(char: str) -> str:
    """A character as a technician can read it in a message: ``'#'``, or ``U+001D`` for controls."""
    return repr(char) if char.isprintable() else f"U+{ord(char):04X}"


def first_outside_set_82(value: str) -> str | None:
    for char in value:
        if char not in SET_82:
            return char
    return None


def gtin_check_digit(payload: str) -> int:
    """The GS1 mod-10 check digit of the digits before it (weights 3, 1, 3, … from the right)."""
    return int(gs1_standard_check_digit(payload))


def is_valid_gtin(gtin: str) -> bool:
    return (
        len(gtin) == 14
        and gtin.isascii()
        and gtin.isdigit()
        and gtin_check_digit(gtin[:13]) == int(gtin[13])
    )


def ppn_check(ppn_body: str) -> str:
    """IFA PPN check characters: sum over (i + 2) × ASCII code, mod 97, as two digits."""
    return f"{sum((i + 2) * ord(char) for i, char in enumerate(ppn_body)) % 97:02d}"


def pzn_check_digit(pzn_body: str) -> int:
    """PZN8 mod-11 check digit over the first seven digits (weights 1…7); 10 means no valid PZN."""
    return sum((i + 1) * int(digit) for i, digit in enumerate(pzn_body)) % 11


class Label(NamedTuple):
    """A field's name in messages, in English and French."""

    en: str
    fr: str


GTIN_LABELS = {
    "01": Label("GTIN (01)", "GTIN (01)"),
    "17": Label("expiry (17)", "date de péremption (17)"),
    "10": Label("batch (10)", "lot (10)"),
    "21": Label("serial (21)", "numéro de série (21)"),
}
PPN_LABELS = {
    "9N": Label("PPN (9N)", "PPN (9N)"),
    "1T": Label("batch (1T)", "lot (1T)"),
    "D": Label("expiry (D)", "date de péremption (D)"),
    "S": Label("serial (S)", "numéro de série (S)"),
}


def nhrn_label(ai: str) -> Label:
    return Label(f"NHRN ({ai})", f"NHRN ({ai})")


def _date_reason(value: str) -> tuple[str, str] | None:
    if len(value) != 6 or not (value.isascii() and value.isdigit()):
        return f"{value!r} is not six digits", f"{value!r} n'a pas six chiffres"
    year, month, day = int(value[:2]), int(value[2:4]), int(value[4:])
    if not 1 <= month <= 12:
        return f"{value!r} has month {value[2:4]}", f"{value!r} a le mois {value[2:4]}"
    last_day = _DAYS_IN_MONTH[month - 1]
    if month == 2 and year % 4:
        last_day = 28
    if day > last_day:
        return f"{value!r} has day {value[4:]}", f"{value!r} a le jour {value[4:]}"
    return None


def date_problem(value: str) -> str | None:
    """Why ``value`` is not a GS1 ``YYMMDD`` date, or None. Day ``00`` (whole month) is legal.

    February 29 is accepted when ``YY`` is divisible by 4, which is exact for every year in the
    GS1 ±50-year window until 2050 (2000 is a leap year); no clock is needed.
    """
    reason = _date_reason(value)
    return None if reason is None else reason[0]


def is_valid_date(value: str) -> bool:
    return _date_reason(value) is None


def text_field_problems(label: Label, value: str) -> list[Problem]:
    """Batch, serial, NHRN: present, at most 20 characters, every character in set 82."""
    if not value:
        return [error(ProblemCode.MISSING_FIELD, f"{label.en} is empty", f"{label.fr} est vide")]
    problems = []
    bad = first_outside_set_82(value)
    if bad is not None:
        problems.append(
            error(
                ProblemCode.BAD_CHARSET,
                f"{label.en} contains {char_name(bad)}",
                f"{label.fr} contient {char_name(bad)}",
            )
        )
    if len(value) > MAX_TEXT_FIELD:
        problems.append(
            error(
                ProblemCode.FIELD_TOO_LONG,
                f"{label.en} has {len(value)} characters, at most {MAX_TEXT_FIELD} are allowed",
                f"{label.fr} a {len(value)} caractères, {MAX_TEXT_FIELD} au plus sont permis",
            )
        )
    return problems


def _bad_character(label: Label, value: str, allowed: str, named: Label) -> Problem:
    bad = next((c for c in value if c not in allowed), "")
    return error(
        ProblemCode.BAD_CHARSET,
        f"{label.en} {f'contains {char_name(bad)}' if bad else 'is empty'}, "
        f"only {named.en} are allowed",
        f"{label.fr} {f'contient {char_name(bad)}' if bad else 'est vide'}, "
        f"seuls {named.fr} sont permis",
    )


_DIGIT_CHARACTERS = "0123456789"
_PPN_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def gtin_problems(label: Label, gtin: str) -> list[Problem]:
    if not _DIGITS.fullmatch(gtin):
        return [_bad_character(label, gtin, _DIGIT_CHARACTERS, Label("digits", "les chiffres"))]
    if len(gtin) != 14:
        return [
            error(
                ProblemCode.FIELD_TOO_SHORT if len(gtin) < 14 else ProblemCode.FIELD_TOO_LONG,
                f"{label.en} has {len(gtin)} digits instead of 14",
                f"{label.fr} a {len(gtin)} chiffres au lieu de 14",
            )
        ]
    expected = gtin_check_digit(gtin[:13])
    if expected != int(gtin[13]):
        return [
            error(
                ProblemCode.BAD_CHECK_DIGIT,
                f"GTIN {gtin} should end in {expected}",
                f"le GTIN {gtin} devrait finir par {expected}",
            )
        ]
    return []


def ppn_problems(label: Label, ppn: str) -> list[Problem]:
    """PPN: 0-9/A-Z, PRA code + product number + two mod-97 check digits; PZN8 checked for PRA 11."""
    if not _ALNUM.fullmatch(ppn):
        return [_bad_character(label, ppn, _PPN_CHARACTERS, Label("0-9 and A-Z", "0-9 et A-Z"))]
    if len(ppn) < 5:
        return [
            error(
                ProblemCode.FIELD_TOO_SHORT,
                f"{label.en} has {len(ppn)} characters, at least 5 are needed",
                f"{label.fr} a {len(ppn)} caractères, il en faut au moins 5",
            )
        ]
    if len(ppn) > MAX_PPN:
        return [
            error(
                ProblemCode.FIELD_TOO_LONG,
                f"{label.en} has {len(ppn)} characters, at most {MAX_PPN} are allowed",
                f"{label.fr} a {len(ppn)} caractères, {MAX_PPN} au plus sont permis",
            )
        ]
    expected = ppn_check(ppn[:-2])
    if expected != ppn[-2:]:
        return [
            error(
                ProblemCode.BAD_CHECK_DIGIT,
                f"PPN {ppn} should end in {expected}",
                f"le PPN {ppn} devrait finir par {expected}",
            )
        ]
    if ppn.startswith("11"):
        pzn = ppn[2:-2]
        if len(pzn) != 8 or not pzn.isdigit():
            return [
                error(
                    ProblemCode.BAD_CHARSET,
                    f"PZN {pzn} in PPN {ppn} is not eight digits",
                    f"le PZN {pzn} du PPN {ppn} n'a pas huit chiffres",
                )
            ]
        pzn_check = pzn_check_digit(pzn[:7])
        if pzn_check == 10:
            return [
                error(
                    ProblemCode.BAD_CHECK_DIGIT,
                    f"PZN {pzn} in PPN {ppn} has no valid check digit",
                    f"le PZN {pzn} du PPN {ppn} n'a pas de clé de contrôle valide",
                )
            ]
        if pzn_check != int(pzn[7]):
            return [
                error(
                    ProblemCode.BAD_CHECK_DIGIT,
                    f"PZN {pzn} in PPN {ppn} should end in {pzn_check}",
                    f"le PZN {pzn} du PPN {ppn} devrait finir par {pzn_check}",
                )
            ]
    return []


def expiry_problems(label: Label, expiry: str) -> list[Problem]:
    reason = _date_reason(expiry)
    if reason is None:
        return []
    return [error(ProblemCode.BAD_DATE, f"{label.en} {reason[0]}", f"{label.fr} {reason[1]}")]


def field_labels(scheme: str) -> dict[str, Label]:
    """How each field is named in messages: by its GS1 AI or its ISO/IEC 15434 data identifier."""
    labels, keys = (
        (PPN_LABELS, ("9N", "1T", "D", "S"))
        if scheme == "PPN"
        else (GTIN_LABELS, ("01", "10", "17", "21"))
    )
    return {
        field: labels[key]
        for field, key in zip(("product_code", "batch", "expiry", "serial"), keys, strict=True)
    }


def validate_pack(pack: PackIdentifier) -> tuple[Problem, ...]:
    """Every content problem of a pack that is already split into fields; empty when valid."""
    labels = field_labels(pack.scheme)
    if pack.scheme == "PPN":
        problems = ppn_problems(labels["product_code"], pack.product_code)
    else:
        problems = gtin_problems(labels["product_code"], pack.product_code)
    problems += text_field_problems(labels["batch"], pack.batch)
    problems += expiry_problems(labels["expiry"], pack.expiry)
    problems += text_field_problems(labels["serial"], pack.serial)
    if pack.nhrn is not None:
        if pack.nhrn.ai not in NHRN_AIS:
            problems.append(
                error(
                    ProblemCode.UNKNOWN_FORMAT,
                    f"NHRN AI {pack.nhrn.ai!r} is not one of 710-717",
                    f"l'AI de NHRN {pack.nhrn.ai!r} n'est pas l'un de 710 à 717",
                )
            )
        problems += text_field_problems(nhrn_label(pack.nhrn.ai), pack.nhrn.value)
    return tuple(problems)
