"""Mutated GS1 pack codes: the decoder returns exactly the encoded pack or refuses, never another.

Each test generates a valid FMD pack (``tests.codes.packs``), builds the expected outcome from the
generated fields (never from the decoder), writes the element string by hand and mutates it in
one known way: separators added, dropped or lost, fields overlong, empty, missing, repeated or
holding characters outside GS1 set 82, case changed, foreign or unknown AIs, another symbology
identifier. It then checks what :func:`gateway.codes.decode.decode_text` makes of it, under both
split universes (``split_ais`` ``fmd`` and ``gs1``):

- a mutation that leaves a valid code (extra GS, an element repeated with its own value, a
  non-FMD element with its separators, a case change) gives exactly the pack the text encodes;
- a message holding at least one GS that is invalid is refused (not ``ok``) with the problem
  naming what is wrong and never ``GS_MISSING``: it is never re-cut. A pack may be shown with the
  errors only when it is the literal reading (the fields exactly as the separators cut them);
- a message whose every separator was dropped gives the exact pack with a ``GS_MISSING`` warning
  or a ``GS_MISSING`` refusal (under ``fmd`` only for FMD elements: a non-FMD element run together
  is the documented price of that setting);
- only the GS1 symbology identifiers make the data GS1: any other is ``NOT_A_PACK_CODE``.

The mutations are built so that the class holds for sure (an overlong value has 21 to 25
characters, a lost separator swallows a required element), and the overlong values often hide an
AI (``71x``, ``91``, ``240``), so that re-cutting a message with separators would be a valid,
wrong pack and these tests would catch it.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from dataclasses import replace

import pytest
from biip.gs1_application_identifiers import _GS1_APPLICATION_IDENTIFIERS
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.codes import text as text_module
from gateway.codes.decode import DecodedScan, DecodeSettings, decode_text
from gateway.codes.pack import Nhrn, PackIdentifier
from gateway.codes.problems import ProblemCode, Severity
from tests.codes.packs import GS, SET_82, expiries, gs1_elements, gtin_packs, gtins, set_82_text

# (AI, value, whether a GS must follow it when it is not last): variable length, or a
# predefined-length field that does not have its length.
Element = tuple[str, str, bool]

GS1_AIMS = ("]d2", "]C1", "]Q3", "]e0", "]J1")
NEAR_MISS_AIMS = ("]d0", "]d1", "]d3", "]C0", "]C2", "]Q0", "]Q1", "]e1", "]J0", "]E0", "]A0")
FIXED_LENGTHS = {"01": 14, "17": 6}
REQUIRED_AIS = ("01", "17", "10", "21")
NHRN_AIS = tuple(f"71{digit}" for digit in range(8))
# Two-digit starts that begin no GS1 AI of any length (checked against biip's table below).
UNKNOWN_AIS = ("04", "05", "06", "07", "08", "09", "18", "19", "26", "27", "28", "29", "89")
# Printable ASCII outside set 82 (control characters are BAD_INPUT, non-ASCII a layout hint).
OUTSIDE_SET_82 = "".join(c for c in map(chr, range(0x20, 0x7F)) if c not in SET_82)

split_universes = pytest.mark.parametrize("split_ais", ["fmd", "gs1"])
# Each property runs twice (both universes): half the profile's examples each, 50 by default.
modest = settings(max_examples=max(10, settings().max_examples // 2))


# --- building messages -----------------------------------------------------------------------


def decode(text: str, split_ais: str) -> DecodedScan:
    return decode_text(text, DecodeSettings(split_ais=split_ais))


def codes(scan: DecodedScan) -> set[ProblemCode]:
    return {problem.code for problem in scan.problems}


def severities(scan: DecodedScan) -> list[tuple[ProblemCode, Severity]]:
    return [(problem.code, problem.severity) for problem in scan.problems]


def elements_of(pack: PackIdentifier) -> list[Element]:
    """The pack's elements; a GS follows a fixed-length field whose value is not of its length."""
    return [
        (ai, value, variable or len(value) != FIXED_LENGTHS[ai])
        for ai, value, variable in gs1_elements(pack)
    ]


def run_together(elements: Iterable[Element]) -> str:
    return "".join(ai + value for ai, value, _ in elements)


def with_value(
    pack: PackIdentifier, field: str, value: str, nhrn_ai: str = "710"
) -> PackIdentifier:
    """``pack`` with ``field`` (a PackIdentifier field name or ``nhrn``) set to ``value``."""
    if field == "nhrn":
        return replace(pack, nhrn=Nhrn(pack.nhrn.ai if pack.nhrn else nhrn_ai, value))
    if field == "product_code":
        return replace(pack, product_code=value)
    if field == "expiry":
        return replace(pack, expiry=value)
    if field == "batch":
        return replace(pack, batch=value)
    assert field == "serial", field
    return replace(pack, serial=value)


def field_value(pack: PackIdentifier, field: str) -> str:
    if field == "nhrn":
        return pack.nhrn.value if pack.nhrn else ""
    return str(getattr(pack, field))


@st.composite
def packs(draw: st.DrawFn) -> PackIdentifier:
    """A valid GTIN pack, read with no AIM id or with one of the GS1 identifiers."""
    pack = draw(gtin_packs(aim=False))
    return replace(pack, aim=draw(st.sampled_from([None, *GS1_AIMS])))


@st.composite
def separated(draw: st.DrawFn, elements: Sequence[Element], at_least_one: bool = False) -> str:
    """The elements in this order with one or two GS after each one that needs it and is not last,
    and zero to two extra GS at the start, at the end and after fixed-length fields.
    ``at_least_one``: the message surely holds a GS (so the split search must not run)."""
    parts = [GS * draw(st.integers(0, 2))]
    for index, (ai, value, needs_gs) in enumerate(elements):
        parts.append(ai + value)
        if index < len(elements) - 1:
            parts.append(GS * draw(st.integers(1 if needs_gs else 0, 2)))
    parts.append(GS * draw(st.integers(0, 2)))
    text = "".join(parts)
    if at_least_one and GS not in text:
        text = draw(st.sampled_from([GS + text, text + GS]))
    return text


@st.composite
def inserted(draw: st.DrawFn, elements: Sequence[Element], extra: Element) -> list[Element]:
    """The elements in a random order with ``extra`` at a random place."""
    order = list(draw(st.permutations(elements)))
    position = draw(st.integers(0, len(order)))
    return [*order[:position], extra, *order[position:]]


@st.composite
def overlong_values(draw: st.DrawFn, hidden_ais: Sequence[str]) -> str:
    """21 to 25 set-82 characters; often ``head + AI + tail``, which a re-cut would split."""
    length = draw(st.integers(21, 25))
    if not hidden_ais or draw(st.booleans()):
        return draw(st.text(SET_82, min_size=length, max_size=length))
    ai = draw(st.sampled_from(hidden_ais))
    head = draw(st.text(SET_82, min_size=1, max_size=length - len(ai) - 1))
    tail_length = length - len(head) - len(ai)
    return head + ai + draw(st.text(SET_82, min_size=tail_length, max_size=tail_length))


def non_fmd_elements() -> st.SearchStrategy[Element]:
    """Valid elements that are not part of the FMD unique identifier."""
    return st.one_of(
        st.tuples(st.just("91"), st.text(SET_82, min_size=1, max_size=30), st.just(True)),
        st.tuples(st.just("240"), st.text(SET_82, min_size=1, max_size=30), st.just(True)),
        st.tuples(st.just("30"), st.text(string.digits, min_size=1, max_size=8), st.just(True)),
        st.tuples(st.just("11"), expiries(), st.just(False)),  # production date, predefined length
    )


def non_gs1_aims() -> st.SearchStrategy[str]:
    any_aim = st.builds(
        lambda letter, modifier: "]" + letter + modifier,
        st.sampled_from(string.ascii_letters),
        st.sampled_from(string.digits + string.ascii_letters),
    )
    return (st.sampled_from(NEAR_MISS_AIMS) | any_aim).filter(lambda aim: aim not in GS1_AIMS)


def assert_refused(
    scan: DecodedScan, any_of: set[ProblemCode], shown: PackIdentifier | None
) -> None:
    """Not ok, for one of the named reasons, never GS_MISSING (the message was not re-cut), and
    no pack or only ``shown``, the literal reading."""
    assert not scan.ok
    assert codes(scan) & any_of, severities(scan)
    assert ProblemCode.GS_MISSING not in codes(scan), severities(scan)
    assert scan.pack is None or scan.pack == shown, scan.pack


# --- the fixtures of the tests are what they claim to be --------------------------------------


def test_the_fixtures_hold_what_their_names_say() -> None:
    table = _GS1_APPLICATION_IDENTIFIERS
    assert not [ai for ai in table if ai.startswith(UNKNOWN_AIS)]
    assert {"91", "240", "30", "11"} <= table.keys()
    assert not set(OUTSIDE_SET_82) & set(SET_82) and " " in OUTSIDE_SET_82
    assert set(GS1_AIMS) == text_module.GS1_AIMS


# --- mutations that leave a valid code: exactly the encoded pack ------------------------------


@split_universes
@modest
@given(data=st.data())
def test_leading_doubled_trailing_gs_and_gs_after_fixed_fields_keep_the_exact_pack(
    split_ais: str, data: st.DataObject
) -> None:
    pack = data.draw(packs())
    order = data.draw(st.permutations(elements_of(pack)))
    scan = decode((pack.aim or "") + data.draw(separated(order)), split_ais)
    assert scan.problems == ()
    assert scan.pack == pack


@split_universes
@modest
@given(data=st.data())
def test_non_fmd_elements_with_their_separators_keep_the_exact_pack(
    split_ais: str, data: st.DataObject
) -> None:
    pack = data.draw(packs())
    extra = data.draw(st.lists(non_fmd_elements(), min_size=1, max_size=3))
    order = data.draw(st.permutations([*elements_of(pack), *extra]))
    scan = decode((pack.aim or "") + data.draw(separated(order)), split_ais)
    assert scan.problems == ()
    assert scan.pack == pack


@split_universes
@modest
@given(data=st.data())
def test_an_element_repeated_with_the_same_value_is_the_same_pack(
    split_ais: str, data: st.DataObject
) -> None:
    pack = data.draw(packs())
    elements = elements_of(pack)
    order = data.draw(inserted(elements, data.draw(st.sampled_from(elements))))
    scan = decode((pack.aim or "") + data.draw(separated(order)), split_ais)
    assert scan.problems == ()
    assert scan.pack == pack


@split_universes
@modest
@given(data=st.data())
def test_a_case_change_is_read_as_the_texts_own_pack_never_the_printed_one(
    split_ais: str, data: st.DataObject
) -> None:
    # Lowercase is set 82: a case-changed batch or serial is a valid code of another pack, and
    # the decoder must return that pack, character for character (never a normalised case).
    printed = data.draw(packs())
    field = data.draw(
        st.sampled_from(["batch", "serial", "nhrn"] if printed.nhrn else ["batch", "serial"])
    )
    value = field_value(printed, field)
    index = data.draw(st.integers(0, len(value) - 1))
    letter = data.draw(st.sampled_from(string.ascii_letters))
    printed = with_value(printed, field, value[:index] + letter + value[index + 1 :])
    scanned = with_value(printed, field, value[:index] + letter.swapcase() + value[index + 1 :])
    order = data.draw(st.permutations(elements_of(scanned)))
    scan = decode((scanned.aim or "") + data.draw(separated(order)), split_ais)
    assert scan.problems == ()
    assert scan.pack == scanned
    assert scan.pack != printed


# --- every separator dropped: the exact pack with a warning, or a GS_MISSING refusal ----------


@split_universes
@modest
@given(data=st.data())
def test_every_separator_dropped_gives_the_exact_pack_or_a_gs_missing_refusal(
    split_ais: str, data: st.DataObject
) -> None:
    pack = data.draw(packs())
    elements = elements_of(pack)
    if split_ais == "gs1":  # under fmd a run-together non-FMD element is the documented price
        elements += data.draw(st.lists(non_fmd_elements(), max_size=2))
    order = data.draw(st.permutations(elements))
    scan = decode((pack.aim or "") + run_together(order), split_ais)
    if scan.pack is None:
        assert severities(scan) == [(ProblemCode.GS_MISSING, Severity.ERROR)]
    else:
        assert scan.pack == pack
        assert severities(scan) == [(ProblemCode.GS_MISSING, Severity.WARNING)]


# --- invalid messages with separators: refused with their own problem, never re-cut -----------


@split_universes
@modest
@given(data=st.data())
def test_an_overlong_batch_serial_or_nhrn_is_too_long_never_re_cut(
    split_ais: str, data: st.DataObject
) -> None:
    pack = data.draw(packs())
    field = data.draw(st.sampled_from(["batch", "serial", "nhrn"]))
    # AIs hidden in the value that would make a re-cut valid: 91 and 240 (gs1), an NHRN (fmd)
    hidden = ["91", "240", *(NHRN_AIS if field != "nhrn" and pack.nhrn is None else ())]
    value = data.draw(overlong_values(hidden))
    mutated = with_value(pack, field, value, data.draw(st.sampled_from(NHRN_AIS)))
    order = data.draw(st.permutations(elements_of(mutated)))
    scan = decode((pack.aim or "") + data.draw(separated(order)), split_ais)
    assert_refused(scan, {ProblemCode.FIELD_TOO_LONG}, shown=mutated)


@split_universes
@modest
@given(data=st.data())
def test_an_empty_field_is_refused(split_ais: str, data: st.DataObject) -> None:
    pack = data.draw(packs())
    field = data.draw(st.sampled_from(["product_code", "expiry", "batch", "serial", "nhrn"]))
    mutated = with_value(pack, field, "", data.draw(st.sampled_from(NHRN_AIS)))
    expected = {
        "product_code": {ProblemCode.MISSING_FIELD, ProblemCode.FIELD_TOO_SHORT},
        "expiry": {ProblemCode.MISSING_FIELD, ProblemCode.FIELD_TOO_SHORT, ProblemCode.BAD_DATE},
    }.get(field, {ProblemCode.MISSING_FIELD})
    if field == "product_code":  # the decoder says "GTIN (01) is empty, only digits are allowed"
        expected.add(ProblemCode.BAD_CHARSET)
    order = data.draw(st.permutations(elements_of(mutated)))
    scan = decode((pack.aim or "") + data.draw(separated(order)), split_ais)
    assert_refused(scan, expected, shown=mutated)


@split_universes
@modest
@given(data=st.data())
def test_a_missing_gtin_expiry_batch_or_serial_is_missing_never_searched_for(
    split_ais: str, data: st.DataObject
) -> None:
    pack = data.draw(packs())
    missing = data.draw(st.sampled_from(REQUIRED_AIS))
    order = data.draw(st.permutations([e for e in elements_of(pack) if e[0] != missing]))
    scan = decode((pack.aim or "") + data.draw(separated(order, at_least_one=True)), split_ais)
    assert_refused(scan, {ProblemCode.MISSING_FIELD}, shown=None)


@split_universes
@modest
@given(data=st.data())
def test_one_lost_separator_swallows_an_element_and_is_never_re_cut(
    split_ais: str, data: st.DataObject
) -> None:
    # The shape of the differential-test findings: a variable field runs into the required
    # element after it while another GS is still there; re-cutting would rebuild a pack.
    pack = data.draw(packs())
    order = list(data.draw(st.permutations(elements_of(pack))))
    candidates = [
        index
        for index in range(len(order) - 1)
        if order[index][2] and order[index + 1][0] in REQUIRED_AIS
    ]
    assume(candidates)
    index = data.draw(st.sampled_from(candidates))
    (ai, value, _), (next_ai, next_value, _) = order[index], order[index + 1]
    merged = [*order[:index], (ai, value + next_ai + next_value, True), *order[index + 2 :]]
    scan = decode((pack.aim or "") + data.draw(separated(merged, at_least_one=True)), split_ais)
    assert_refused(scan, {ProblemCode.MISSING_FIELD}, shown=None)


@split_universes
@modest
@given(data=st.data())
def test_a_character_outside_set_82_is_bad_charset(split_ais: str, data: st.DataObject) -> None:
    pack = data.draw(packs())
    field = data.draw(st.sampled_from(["product_code", "batch", "serial", "nhrn"]))
    bad = data.draw(st.sampled_from(OUTSIDE_SET_82))
    value = field_value(pack, field)
    if field == "product_code":  # a digit replaced: the GTIN keeps its 14 characters
        index = data.draw(st.integers(0, 13))
        mutated = with_value(pack, field, value[:index] + bad + value[index + 1 :])
    else:
        index = data.draw(st.integers(0, len(value)))
        nhrn_ai = data.draw(st.sampled_from(NHRN_AIS))
        mutated = with_value(pack, field, value[:index] + bad + value[index:], nhrn_ai)
    order = data.draw(st.permutations(elements_of(mutated)))
    scan = decode((pack.aim or "") + data.draw(separated(order)), split_ais)
    assert_refused(scan, {ProblemCode.BAD_CHARSET}, shown=mutated)


@split_universes
@modest
@given(data=st.data())
def test_an_element_repeated_with_another_value_is_a_duplicate(
    split_ais: str, data: st.DataObject
) -> None:
    pack = data.draw(packs())
    elements = elements_of(pack)
    ai, value, needs_gs = data.draw(st.sampled_from(elements))
    if ai == "01":
        other = data.draw(gtins.filter(lambda gtin: gtin != value))
    elif ai == "17":
        other = data.draw(expiries().filter(lambda expiry: expiry != value))
    elif ai in NHRN_AIS:  # a second NHRN, of the same country or another one
        other_ai, other = data.draw(st.sampled_from(NHRN_AIS)), data.draw(set_82_text)
        assume((other_ai, other) != (ai, value))
        ai = other_ai
    else:
        other = data.draw(set_82_text.filter(lambda text: text != value))
    order = data.draw(inserted(elements, (ai, other, needs_gs)))
    scan = decode((pack.aim or "") + data.draw(separated(order)), split_ais)
    assert_refused(scan, {ProblemCode.DUPLICATE_FIELD}, shown=None)


@split_universes
@modest
@given(data=st.data())
def test_an_unknown_ai_is_unknown_format(split_ais: str, data: st.DataObject) -> None:
    pack = data.draw(packs())
    unknown = (data.draw(st.sampled_from(UNKNOWN_AIS)), data.draw(set_82_text), True)
    order = data.draw(inserted(elements_of(pack), unknown))
    scan = decode((pack.aim or "") + data.draw(separated(order)), split_ais)
    # The literal reading stops at the unknown AI: a pack can only be what came before it.
    before = order[: order.index(unknown)]
    read = {ai for ai, _, _ in before}
    shown = None
    if set(REQUIRED_AIS) <= read:
        shown = replace(pack, nhrn=pack.nhrn if read & set(NHRN_AIS) else None)
    assert_refused(scan, {ProblemCode.UNKNOWN_FORMAT}, shown=shown)


@split_universes
@modest
@given(data=st.data())
def test_a_wrong_check_digit_impossible_date_or_short_gtin_is_refused(
    split_ais: str, data: st.DataObject
) -> None:
    pack = data.draw(packs())
    kind = data.draw(st.sampled_from(["check digit", "date", "short"]))
    if kind == "check digit":
        wrong = (int(pack.product_code[13]) + data.draw(st.integers(1, 9))) % 10
        mutated, expected = (
            replace(pack, product_code=pack.product_code[:13] + str(wrong)),
            (ProblemCode.BAD_CHECK_DIGIT),
        )
    elif kind == "date":
        month = data.draw(st.sampled_from([0, *range(13, 100)]))
        day = data.draw(st.integers(0, 99))
        if data.draw(st.booleans()):  # a real month, a day after its last
            month, day = data.draw(st.integers(1, 12)), data.draw(st.integers(32, 99))
        expiry = f"{pack.expiry[:2]}{month:02d}{day:02d}"
        mutated, expected = replace(pack, expiry=expiry), ProblemCode.BAD_DATE
    else:
        length = data.draw(st.integers(1, 13))
        mutated = replace(pack, product_code=pack.product_code[:length])
        expected = ProblemCode.FIELD_TOO_SHORT
    order = data.draw(st.permutations(elements_of(mutated)))
    scan = decode((pack.aim or "") + data.draw(separated(order)), split_ais)
    assert_refused(scan, {expected}, shown=mutated)


# --- symbology identifiers ---------------------------------------------------------------------


@split_universes
@modest
@given(data=st.data())
def test_a_gs1_element_string_under_another_symbology_identifier_is_not_a_pack_code(
    split_ais: str, data: st.DataObject
) -> None:
    aim = data.draw(non_gs1_aims())
    pack = data.draw(gtin_packs(aim=False))
    order = data.draw(st.permutations(elements_of(pack)))
    body = data.draw(separated(order)) if data.draw(st.booleans()) else run_together(order)
    scan = decode(aim + body, split_ais)
    assert severities(scan) == [(ProblemCode.NOT_A_PACK_CODE, Severity.ERROR)]
    assert scan.pack is None


# --- regressions from a differential test against the GS1 Barcode Syntax Engine ---------------


@split_universes
@pytest.mark.parametrize(
    ("text", "code", "literal"),
    [
        (  # the batch runs 24 characters; never batch "Z4EU21Y" + serial "22QAMJ…"
            "]d2"
            + "210UJSNVH8O0Z32GWQW"
            + GS
            + "01024092808667221745122010Z4EU21Y22QAMJVKV3RKZAAXO",
            ProblemCode.FIELD_TOO_LONG,
            PackIdentifier(
                "GTIN",
                "02409280866722",
                "Z4EU21Y22QAMJVKV3RKZAAXO",
                "451220",
                "0UJSNVH8O0Z32GWQW",
                aim="]d2",
            ),
        ),
        (  # as first reported, with a space: no AI at "1 0Z", the batch is lost
            "]d2"
            + "210UJSNVH8O0Z32GWQW"
            + GS
            + "0102409280866722174512201 0Z4EU21Y22QAMJVKV3RKZAAXO",
            ProblemCode.UNKNOWN_FORMAT,
            None,
        ),
        (  # a 21-character serial
            "17270717011406388812671521478248665605359266264" + GS + "10M2T",
            ProblemCode.FIELD_TOO_LONG,
            PackIdentifier("GTIN", "14063888126715", "M2T", "270717", "478248665605359266264"),
        ),
        (
            "]d2" + "7149921048" + GS + "2167" + GS + "173009000146955001781736",
            ProblemCode.MISSING_FIELD,
            None,
        ),
        ("0197532109622020108Bn4k21thl8f" + GS + "17480500", ProblemCode.MISSING_FIELD, None),
    ],
)
def test_differential_findings_are_refused_with_their_own_problem(
    text: str, code: ProblemCode, literal: PackIdentifier | None, split_ais: str
) -> None:
    assert_refused(decode(text, split_ais), {code}, shown=literal)
