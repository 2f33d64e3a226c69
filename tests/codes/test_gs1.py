"""GS1 element strings: exact reading, and the missing-separator enumeration (never a wrong pack)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.codes import PackIdentifier, ProblemCode, Severity
from gateway.codes.gs1 import AIS, MAX_STEPS, SPLIT_AIS, lookup_ai, parse_gs1
from gateway.codes.problems import has_error
from tests.codes.packs import GS, gs1_elements, gtin_packs, with_gs1_text

GTIN = "03400936040540"


def fields(text: str) -> tuple[str, str, str, str] | None:
    pack = parse_gs1(text, None).pack
    return None if pack is None else (pack.product_code, pack.expiry, pack.batch, pack.serial)


def codes(text: str) -> list[tuple[ProblemCode, Severity]]:
    return [(p.code, p.severity) for p in parse_gs1(text, None).problems]


def test_the_ai_table_comes_from_biip_with_fmd_formats() -> None:
    assert len(AIS) > 500
    assert (AIS["01"].fixed_length, AIS["17"].fixed_length) == (14, 6)
    assert (AIS["10"].fixed_length, AIS["10"].max_length) == (None, 20)
    assert AIS["8006"].max_length == 18
    assert lookup_ai("7101234", 0) is AIS["710"]
    assert lookup_ai("7", 0) is None


def test_with_separators_the_literal_reading_is_taken_even_if_a_field_holds_ai_digits() -> None:
    text = f"01{GTIN}17270500" + "10A21B" + GS + "2110C17"
    assert fields(text) == (GTIN, "270500", "A21B", "10C17")
    assert codes(text) == []


def test_serial_run_into_batch_has_one_valid_split_accepted_with_a_warning() -> None:
    # biip would read serial "ABC10LOT" here: the batch would be missing
    text = f"01{GTIN}17270500" + "21ABC10LOT"
    assert fields(text) == (GTIN, "270500", "LOT", "ABC")
    assert codes(text) == [(ProblemCode.GS_MISSING, Severity.WARNING)]


def test_a_serial_containing_17_and_10_splits_uniquely_when_only_one_split_is_valid() -> None:
    # "21X17ZZ10Q17270500": "17ZZ…" is no date and 10 and 17 are each needed once, so the only
    # valid split is serial "X17ZZ", batch "Q", expiry 270500.
    text = f"01{GTIN}" + "21X17ZZ10Q" + "17270500"
    assert fields(text) == (GTIN, "270500", "Q", "X17ZZ")
    assert codes(text) == [(ProblemCode.GS_MISSING, Severity.WARNING)]


def test_an_expiry_inside_a_serial_is_found_or_refused() -> None:
    # serial "S" then expiry 270500: the only split with 17 once
    text = f"01{GTIN}" + "21S17270500" + "10L"
    assert fields(text) == (GTIN, "270500", "L", "S")
    # serial "S" + expiry 270500 + batch "L17280600", or serial "S17270500" + batch "L" +
    # expiry 280600: two valid packs, refused
    text = f"01{GTIN}" + "21S17270500" + "10L" + "17280600"
    assert parse_gs1(text, None).pack is None
    assert codes(text) == [(ProblemCode.GS_MISSING, Severity.ERROR)]


def test_a_non_fmd_element_run_together_is_a_possible_split_only_in_the_gs1_universe() -> None:
    # "21SER91XYZ": serial "SER" + AI 91 "XYZ", or serial "SER91XYZ"
    text = f"01{GTIN}17270500" + "10L" + GS + "21SER91XYZ"
    assert fields(text) == (GTIN, "270500", "L", "SER91XYZ")  # separators present: literal
    text = f"01{GTIN}17270500" + "10L21SER91XYZ"
    gs1 = parse_gs1(text, None, "gs1")  # every AI: two valid splits, refused, never guessed
    assert gs1.pack is None
    assert [(p.code, p.severity) for p in gs1.problems] == [
        (ProblemCode.GS_MISSING, Severity.ERROR)
    ]
    fmd = parse_gs1(text, None, "fmd")  # FMD elements only: one split
    assert fmd.pack is not None and (fmd.pack.batch, fmd.pack.serial) == ("L", "SER91XYZ")
    assert [(p.code, p.severity) for p in fmd.problems] == [
        (ProblemCode.GS_MISSING, Severity.WARNING)
    ]
    assert parse_gs1(text, None).problems == fmd.problems  # fmd is the default


def test_the_fmd_universe_holds_exactly_the_fmd_elements() -> None:
    assert SPLIT_AIS["fmd"] == {"01", "17", "10", "21", *(f"71{d}" for d in range(8))}
    assert SPLIT_AIS["gs1"] == set(AIS)
    assert lookup_ai("91XYZ", 0, SPLIT_AIS["fmd"]) is None
    assert lookup_ai("91XYZ", 0) is AIS["91"]


@pytest.mark.parametrize("split_ais", ["fmd", "gs1"])
@pytest.mark.parametrize(
    ("text", "code", "detail"),
    [
        # From a differential run against the GS1 Barcode Syntax Engine: each was re-cut into a
        # pack that is not on the box before the search was kept to messages without any GS.
        (
            "210UJSNVH8O0Z32GWQW" + GS + "01024092808667221745122010Z4EU21Y22QAMJVKV3RKZAAXO",
            ProblemCode.FIELD_TOO_LONG,
            "batch (10) has 24 characters",
        ),
        (
            "17270717011406388812671521478248665605359266264" + GS + "10M2T",
            ProblemCode.FIELD_TOO_LONG,
            "serial (21) has 21 characters",
        ),
        (
            "7149921048" + GS + "2167" + GS + "173009000146955001781736",
            ProblemCode.MISSING_FIELD,
            "batch",
        ),
        ("0197532109622020108Bn4k21thl8f" + GS + "17480500", ProblemCode.MISSING_FIELD, "serial"),
    ],
)
def test_a_message_with_separators_is_never_re_cut(
    text: str, code: ProblemCode, detail: str, split_ais: str
) -> None:
    reading = parse_gs1(text, "]d2", split_ais)
    assert has_error(reading.problems)  # a pack may be shown, as the separators cut it; never sent
    assert code in {p.code for p in reading.problems}
    assert any(detail in p.detail for p in reading.problems if p.code is code)
    assert ProblemCode.GS_MISSING not in {p.code for p in reading.problems}


def test_an_element_repeated_with_the_same_value_is_one_element() -> None:
    text = f"01{GTIN}17270500" + "10L" + GS + "21S" + GS + "10L"
    assert fields(text) == (GTIN, "270500", "L", "S")
    assert codes(text) == []
    text = f"01{GTIN}17270500" + "10L" + GS + "21S" + GS + "10M"
    assert parse_gs1(text, None).pack is None
    assert codes(text) == [(ProblemCode.DUPLICATE_FIELD, Severity.ERROR)]
    # two different national numbers are two NHRNs, whatever their values
    text = f"01{GTIN}17270500" + "10L" + GS + "21S" + GS + "7141" + GS + "7101"
    assert codes(text) == [(ProblemCode.DUPLICATE_FIELD, Severity.ERROR)]


def test_a_wrong_check_digit_cannot_be_rescued_by_a_split() -> None:
    text = "0103400936040541" + "17270500" + "10L21S"
    assert parse_gs1(text, None).pack is None
    assert (ProblemCode.BAD_CHECK_DIGIT, Severity.ERROR) in codes(text)


def test_the_search_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.codes.gs1.MAX_STEPS", 5)
    text = f"01{GTIN}17270500" + "21ABC10LOT"
    assert codes(text) == [(ProblemCode.GS_MISSING, Severity.ERROR)]
    assert MAX_STEPS >= 1000


def test_a_long_message_of_digits_without_separators_stays_bounded() -> None:
    text = f"01{GTIN}17270500" + "10" + "1" * 400 + "21" + "2" * 400
    reading = parse_gs1(text, None)
    assert reading.pack is None
    assert reading.problems


@given(gtin_packs(aim=False).flatmap(with_gs1_text))
def test_any_valid_pack_with_separators_reads_back_identically(
    case: tuple[PackIdentifier, str],
) -> None:
    pack, text = case
    reading = parse_gs1(text, None)
    assert reading.problems == ()
    assert reading.pack == pack


@given(gtin_packs(aim=False), st.data())
def test_without_any_separator_the_pack_is_exact_or_refused(
    pack: PackIdentifier, data: st.DataObject
) -> None:
    elements = data.draw(st.permutations(gs1_elements(pack)))
    text = "".join(ai + value for ai, value, _ in elements)
    reading = parse_gs1(text, None)
    if reading.pack is None:
        assert codes(text) == [(ProblemCode.GS_MISSING, Severity.ERROR)]
    else:
        assert reading.pack == pack
        assert codes(text) == [(ProblemCode.GS_MISSING, Severity.WARNING)]


@pytest.mark.parametrize("digits", ["١٢", "１２", "12\u0663"])
def test_a_non_fmd_element_with_non_ascii_digits_is_refused_not_skipped(digits: str) -> None:
    # AI 30 (count) is not an FMD field, but a code holding "١" is not what was printed.
    reading = parse_gs1("01" + GTIN + "17270500" + "10AB" + GS + "21XY" + GS + "30" + digits, None)
    assert reading.pack is not None  # the FMD fields were read, so they are shown
    assert [(p.code, p.detail) for p in reading.problems] == [
        (
            ProblemCode.BAD_CHARSET,
            f"AI (30) contains {next(c for c in digits if not c.isascii())!r}",
        )
    ]
