"""Check digits, dates and validate_pack for packs that arrive already split (LGO over MQTT)."""

from __future__ import annotations

import pytest
from hypothesis import given

from gateway.codes import Nhrn, PackIdentifier, ProblemCode, validate_pack
from gateway.codes.validation import (
    date_problem,
    gtin_check_digit,
    ppn_check,
    pzn_check_digit,
)
from tests.codes.packs import gtin_packs, ppn_packs


def test_published_check_digit_examples() -> None:
    assert gtin_check_digit("0858600770385") == 1  # GS1 lint_csum example
    assert ppn_check("1103752864") == "14"  # IFA worked example: sum 3409, mod 97
    assert pzn_check_digit("0375286") == 4  # 147 mod 11


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("270500", None),  # day 00: the whole month, legal
        ("240229", None),  # leap year
        ("250229", "'250229' has day 29"),
        ("270000", "'270000' has month 00"),
        ("271301", "'271301' has month 13"),
        ("270431", "'270431' has day 31"),
        ("2705", "'2705' is not six digits"),
        ("27O500", "'27O500' is not six digits"),
        (
            "２７０５００",
            "'２７０５００' is not six digits",
        ),  # fullwidth digits are not digits here
    ],
)
def test_dates(value: str, problem: str | None) -> None:
    assert date_problem(value) == problem


@given(gtin_packs())
def test_valid_gtin_packs_have_no_problem(pack: PackIdentifier) -> None:
    assert validate_pack(pack) == ()


@given(ppn_packs())
def test_valid_ppn_packs_have_no_problem(pack: PackIdentifier) -> None:
    assert validate_pack(pack) == ()


def test_every_field_of_a_bad_pack_is_reported() -> None:
    pack = PackIdentifier(
        scheme="GTIN",
        product_code="0340093604054",
        batch="",
        expiry="271232",
        serial="x" * 21,
        nhrn=Nhrn("719", "a b"),
    )
    assert [(p.code, p.detail) for p in validate_pack(pack)] == [
        (ProblemCode.FIELD_TOO_SHORT, "GTIN (01) has 13 digits instead of 14"),
        (ProblemCode.MISSING_FIELD, "batch (10) is empty"),
        (ProblemCode.BAD_DATE, "expiry (17) '271232' has day 32"),
        (ProblemCode.FIELD_TOO_LONG, "serial (21) has 21 characters, at most 20 are allowed"),
        (ProblemCode.UNKNOWN_FORMAT, "NHRN AI '719' is not one of 710-717"),
        (ProblemCode.BAD_CHARSET, "NHRN (719) contains ' '"),
    ]


def test_ppn_pack_problems_are_named_by_data_identifier() -> None:
    pack = PackIdentifier("PPN", "11037528641", "B#", "270900", "S")
    assert [(p.code, p.detail) for p in validate_pack(pack)] == [
        (ProblemCode.BAD_CHECK_DIGIT, "PPN 11037528641 should end in 24"),
        (ProblemCode.BAD_CHARSET, "batch (1T) contains '#'"),
    ]
    pack = PackIdentifier("PPN", "11037528641a", "B", "270900", "S")
    assert [(p.code, p.detail) for p in validate_pack(pack)] == [
        (ProblemCode.BAD_CHARSET, "PPN (9N) contains 'a', only 0-9 and A-Z are allowed"),
    ]


def test_a_pack_from_json_is_validated_without_changing_it() -> None:
    data = {
        "scheme": "GTIN",
        "product_code": "03400936040540",
        "batch": "aBc",
        "expiry": "270500",
        "serial": "xYz",
    }
    pack = PackIdentifier.from_json(data)
    assert validate_pack(pack) == ()
    assert pack.to_json() == data
