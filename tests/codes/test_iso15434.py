"""IFA PPN codes (ISO/IEC 15434 format 06) and GS1 data in format 05."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.codes import PackIdentifier, ProblemCode
from gateway.codes.iso15434 import parse_iso15434
from tests.codes.packs import EOT, GS, RS, ppn_packs, ppn_texts

HEAD = f"[)>{RS}06{GS}"


def test_the_reference_ppn_code_reads_exactly() -> None:
    text = f"{HEAD}9N110375286414{GS}1TaBc-1{GS}D270900{GS}S8k2L9{RS}{EOT}"
    reading = parse_iso15434(text, "]d1")
    assert reading.problems == ()
    assert reading.pack == PackIdentifier(
        "PPN", "110375286414", "aBc-1", "270900", "8k2L9", aim="]d1"
    )


def test_other_data_identifiers_are_ignored_and_the_trailer_may_be_missing() -> None:
    text = f"{HEAD}8P04150138327077{GS}S1{GS}9N110375286414{GS}D2709OO"[:-2] + f"00{GS}1TB"
    reading = parse_iso15434(text, None)
    assert reading.problems == ()
    assert reading.pack == PackIdentifier("PPN", "110375286414", "B", "270900", "1")


def test_format_05_carries_gs1_element_strings() -> None:
    text = f"[)>{RS}05{GS}0103400936040540{GS}17270500{GS}10L{GS}21S{RS}{EOT}"
    reading = parse_iso15434(text, None)
    assert reading.pack == PackIdentifier("GTIN", "03400936040540", "L", "270500", "S")


def test_dropped_control_characters_are_refused_not_guessed() -> None:
    reading = parse_iso15434("[)>069N1103752864141TB", None)
    assert reading.pack is None
    assert [(p.code, p.detail) for p in reading.problems] == [
        (ProblemCode.GS_MISSING, "the [)> header is not followed by RS")
    ]
    reading = parse_iso15434(f"[)>{RS}069N110375286414", None)
    assert [(p.code, p.detail) for p in reading.problems] == [
        (ProblemCode.GS_MISSING, "format 06 is not followed by GS")
    ]


def test_duplicate_and_malformed_data_identifiers() -> None:
    reading = parse_iso15434(f"{HEAD}9N110375286414{GS}1TA{GS}1TB{GS}D270900{GS}S1", None)
    assert reading.pack is None
    assert [(p.code, p.detail) for p in reading.problems] == [
        (ProblemCode.DUPLICATE_FIELD, "data identifier 1T appears 2 times")
    ]
    reading = parse_iso15434(f"{HEAD}9N110375286414{GS}?x", None)
    assert [(p.code, p.detail) for p in reading.problems] == [
        (ProblemCode.UNKNOWN_FORMAT, "no data identifier at '?x'")
    ]
    # "٨P" is no data identifier (Python's \d would take "٨" for a digit and skip the field)
    text = f"{HEAD}9N110375286414{GS}1TA{GS}D270900{GS}S1{GS}\u0668P04150138327077"
    assert [(p.code, p.detail) for p in parse_iso15434(text, None).problems] == [
        (ProblemCode.UNKNOWN_FORMAT, "no data identifier at '\u0668P04'")
    ]


def test_a_data_identifier_repeated_with_the_same_value_is_one_field() -> None:
    reading = parse_iso15434(f"{HEAD}9N110375286414{GS}1TA{GS}1TA{GS}D270900{GS}S1", None)
    assert reading.problems == ()
    assert reading.pack == PackIdentifier("PPN", "110375286414", "A", "270900", "1")


def test_format_05_fields_are_never_re_cut() -> None:
    # GS arrived in the envelope, so a run-together 10/21 is a long batch, not two fields
    text = f"[)>{RS}05{GS}0103400936040540{GS}17270500{GS}10L21S{RS}{EOT}"
    reading = parse_iso15434(text, None)
    assert [p.code for p in reading.problems] == [ProblemCode.MISSING_FIELD]


def test_two_messages_in_one_code_are_refused() -> None:
    reading = parse_iso15434(f"{HEAD}9N110375286414{RS}06{GS}S1{RS}{EOT}", None)
    assert [p.code for p in reading.problems] == [ProblemCode.UNKNOWN_FORMAT]


@given(ppn_packs().flatmap(lambda pack: st.tuples(st.just(pack), ppn_texts(pack))))
def test_any_valid_ppn_pack_reads_back_identically(case: tuple[PackIdentifier, str]) -> None:
    pack, text = case
    body = text.removeprefix(pack.aim or "")
    reading = parse_iso15434(body, pack.aim)
    assert reading.problems == ()
    assert reading.pack == pack
