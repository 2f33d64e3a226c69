"""GS1 element strings: exact reading, and the missing-separator enumeration (never a wrong pack)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.codes import PackIdentifier, ProblemCode, Severity
from gateway.codes.gs1 import AIS, MAX_STEPS, lookup_ai, parse_gs1
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


def test_a_non_fmd_element_run_together_counts_as_a_possible_split() -> None:
    # "21SER91XYZ": serial "SER" + AI 91 "XYZ", or serial "SER91XYZ": refuse, never guess
    text = f"01{GTIN}17270500" + "10L" + GS + "21SER91XYZ"
    assert fields(text) == (GTIN, "270500", "L", "SER91XYZ")  # separators present: literal
    text = f"01{GTIN}17270500" + "10L21SER91XYZ"
    assert parse_gs1(text, None).pack is None
    assert codes(text) == [(ProblemCode.GS_MISSING, Severity.ERROR)]


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
