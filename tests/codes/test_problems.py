"""Every problem code, produced by a real input, with its exact message: the messages are a contract
(MQTT, the decode command, the README table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.codes import DecodeSettings, ProblemCode, decode_bytes, decode_text
from gateway.codes.problems import CATALOGUE, Problem, Severity, catalogue_markdown
from tests.codes.packs import ppn_with_check

G, RS, EOT = "\x1d", "\x1e", "\x04"
GTIN_OK = "0108586007703851"
TAIL = "17241231" + "10HB5R" + G + "21587E4QA11R"


def ppn_text(ppn: str) -> str:
    return f"[)>{RS}06{G}9N{ppn}{G}1TABC{G}D260300{G}SX1{RS}{EOT}"


CASES = [
    (
        "0108586007703852" + TAIL,
        ProblemCode.BAD_CHECK_DIGIT,
        "error",
        "A check digit is wrong (GTIN 08586007703852 should end in 1): the code was misread, scan the pack again.",
    ),
    (
        ppn_text("110375286415"),
        ProblemCode.BAD_CHECK_DIGIT,
        "error",
        "A check digit is wrong (PPN 110375286415 should end in 14): the code was misread, scan the pack again.",
    ),
    (
        ppn_text(ppn_with_check("1103752865")),
        ProblemCode.BAD_CHECK_DIGIT,
        "error",
        "A check digit is wrong (PZN 03752865 in PPN 110375286525 should end in 4): the code was misread, scan the pack again.",
    ),
    (
        ppn_text(ppn_with_check("1100000030")),
        ProblemCode.BAD_CHECK_DIGIT,
        "error",
        "A check digit is wrong (PZN 00000030 in PPN 110000003051 has no valid check digit): the code was misread, scan the pack again.",
    ),
    (
        GTIN_OK + "17241301" + "10HB5R" + G + "21X",
        ProblemCode.BAD_DATE,
        "error",
        "The expiry date is not a valid YYMMDD date (expiry (17) '241301' has month 13): scan the pack again.",
    ),
    (
        GTIN_OK + "17250229" + "10HB5R" + G + "21X",
        ProblemCode.BAD_DATE,
        "error",
        "The expiry date is not a valid YYMMDD date (expiry (17) '250229' has day 29): scan the pack again.",
    ),
    (
        GTIN_OK + "17241231" + "10HB5R" + G + "21ab#c",
        ProblemCode.BAD_CHARSET,
        "error",
        "A field holds a character that cannot appear in a pack code (serial (21) contains '#'): check the scanner's keyboard country.",
    ),
    (
        GTIN_OK + "17241231" + "10HB5R" + G + "21ABCDEFGHIJKLMNOPQRSTU",
        ProblemCode.FIELD_TOO_LONG,
        "error",
        "A field is longer than allowed (serial (21) has 21 characters, at most 20 are allowed): the separators were probably lost, check the scanner sends GS.",
    ),
    (
        "01085860077038" + G + "17241231" + "10HB5R" + G + "21X",
        ProblemCode.FIELD_TOO_SHORT,
        "error",
        "A field is shorter than its fixed length (GTIN (01) has 12 digits instead of 14): the scan was probably cut short, scan the pack again.",
    ),
    (
        GTIN_OK + "17241231" + "21X",
        ProblemCode.MISSING_FIELD,
        "error",
        "The code lacks a required field (batch (10) is missing): this pack cannot be verified from this scan.",
    ),
    (
        f"[)>{RS}06{G}9N110375286414{G}1TABC{G}D260300{RS}{EOT}",
        ProblemCode.MISSING_FIELD,
        "error",
        "The code lacks a required field (serial (S) is missing): this pack cannot be verified from this scan.",
    ),
    (
        GTIN_OK + TAIL + G + "21Y",
        ProblemCode.DUPLICATE_FIELD,
        "error",
        "A field appears twice (serial (21) appears 2 times): scan the pack again; if it repeats, set the pack aside.",
    ),
    (
        GTIN_OK + "17241231" + "10HB5R" + "21X",
        ProblemCode.GS_MISSING,
        "warning",
        "The scanner did not send the group separators (fields ran together; the only valid split was used): enable 'transmit GS / FNC1' in the scanner settings.",
    ),
    (
        GTIN_OK + "17241231" + "21AB10CD10EF",
        ProblemCode.GS_MISSING,
        "error",
        "The scanner did not send the group separators (fields ran together and several splits are valid packs): enable 'transmit GS / FNC1' in the scanner settings.",
    ),
    (
        "$d2" + GTIN_OK + TAIL,
        ProblemCode.SUSPECT_LAYOUT_MISMATCH,
        "error",
        "The characters look like a keyboard-country mix-up ('$d2' at the start looks like an AIM id ']d…' typed with another keyboard country): set the scanner's keyboard country in the gateway configuration, or calibrate the scanner (nmvs-gateway selftest --calibrate).",
    ),
    (
        # ]d2 01 08… typed by a US scanner, read with the French layout
        "$déà&àè",
        ProblemCode.SUSPECT_LAYOUT_MISMATCH,
        "error",
        "The characters look like a keyboard-country mix-up ('$dé' at the start looks like an AIM id ']d…' typed with another keyboard country): set the scanner's keyboard country in the gateway configuration, or calibrate the scanner (nmvs-gateway selftest --calibrate).",
    ),
    (
        "+d2" + GTIN_OK + TAIL,  # ]d2 from a US scanner on a German table
        ProblemCode.SUSPECT_LAYOUT_MISMATCH,
        "error",
        # the text reads as a valid pack through the layouts: the pairs are named, not the "+"
        "The characters look like a keyboard-country mix-up (it reads as a valid pack if typed with scanner layout us/gb/ie/… on de, or us/gb/ie/… on at, or us/gb/ie/… on it, and 1 more): set the scanner's keyboard country in the gateway configuration, or calibrate the scanner (nmvs-gateway selftest --calibrate).",
    ),
    (
        "à&à_(",
        ProblemCode.SUSPECT_LAYOUT_MISMATCH,
        "error",
        "The characters look like a keyboard-country mix-up ('à' at the start is what the digit 0 key types on an AZERTY keyboard without Shift): set the scanner's keyboard country in the gateway configuration, or calibrate the scanner (nmvs-gateway selftest --calibrate).",
    ),
    (
        "3400930000120",
        ProblemCode.NOT_A_PACK_CODE,
        "error",
        "This is not a medicine pack identifier (EAN-13 product barcode 3400930000120): scan the pack's DataMatrix code.",
    ),
    (
        "-03752865",  # the German PZN Code 39: its "-" is no AZERTY digit key
        ProblemCode.NOT_A_PACK_CODE,
        "error",
        "This is not a medicine pack identifier (a PZN barcode -03752865): scan the pack's DataMatrix code.",
    ),
    (
        "https://ordonnance.example/qr?id=42",
        ProblemCode.NOT_A_PACK_CODE,
        "error",
        "This is not a medicine pack identifier (a web address): scan the pack's DataMatrix code.",
    ),
    (
        "]E03400930000120",
        ProblemCode.NOT_A_PACK_CODE,
        "error",
        "This is not a medicine pack identifier (a barcode of symbology ]E0): scan the pack's DataMatrix code.",
    ),
    (
        "00012345600012345678",
        ProblemCode.NOT_A_PACK_CODE,
        "error",
        "This is not a medicine pack identifier (a GS1 code without GTIN (01) or serial (21)): scan the pack's DataMatrix code.",
    ),
    (
        "Dr Martin: 2 boxes",
        ProblemCode.UNKNOWN_FORMAT,
        "error",
        "The code format is not recognised (the code starts with 'D'): scan the pack's DataMatrix code.",
    ),
    (
        f"[)>{RS}07{G}XYZ{RS}{EOT}",
        ProblemCode.UNKNOWN_FORMAT,
        "error",
        "The code format is not recognised (ISO/IEC 15434 format '07' is not a pack code): scan the pack's DataMatrix code.",
    ),
]


@pytest.mark.parametrize(("text", "code", "severity", "message"), CASES)
def test_each_problem_has_its_code_severity_and_exact_message(
    text: str, code: ProblemCode, severity: str, message: str
) -> None:
    scan = decode_text(text, DecodeSettings())
    assert [(p.code, p.severity.value, p.message) for p in scan.problems] == [
        (code, severity, message)
    ]
    assert scan.ok is (severity == "warning")


@pytest.mark.parametrize(("text", "code", "severity", "message"), CASES)
def test_each_problem_detail_is_worded_in_french_too(
    text: str, code: ProblemCode, severity: str, message: str
) -> None:
    (problem,) = decode_text(text, DecodeSettings()).problems
    assert problem.detail_fr
    assert problem.detail_fr != problem.detail
    assert problem.to_json()["message_fr"] == CATALOGUE[code].fr.format(detail=problem.detail_fr)


@pytest.mark.parametrize(
    ("text", "message_fr"),
    [
        (
            GTIN_OK + "17241231" + "21X",
            "Le code ne contient pas un champ obligatoire (lot (10) est absent) : cette boîte ne "
            "peut pas être vérifiée avec ce scan.",
        ),
        (
            GTIN_OK + "17250229" + "10HB5R" + G + "21X",
            "La date de péremption n'est pas une date AAMMJJ valide (date de péremption (17) "
            "'250229' a le jour 29) : scannez la boîte à nouveau.",
        ),
        (
            GTIN_OK + "17241231" + "21AB10CD10EF",
            "Le scanner n'a pas transmis les séparateurs de groupe (les champs se suivent sans "
            "séparateur et plusieurs découpages sont des boîtes valides) : activez « transmettre "
            "GS / FNC1 » dans ses réglages.",
        ),
    ],
)
def test_french_messages(text: str, message_fr: str) -> None:
    (problem,) = decode_text(text, DecodeSettings()).problems
    assert problem.text("fr") == message_fr


def test_a_foreign_letter_inside_a_gs1_code_adds_the_suspicion_first() -> None:
    scan = decode_text(GTIN_OK + "17241231" + "10Lé" + G + "21X", DecodeSettings())
    assert [(p.code, p.detail) for p in scan.problems] == [
        (
            ProblemCode.SUSPECT_LAYOUT_MISMATCH,
            "'é' cannot be in a pack code but is typical of a keyboard mix-up",
        ),
        (ProblemCode.BAD_CHARSET, "batch (10) contains 'é'"),
    ]


def test_the_dmatrix_flag_misread_as_dollar_is_suspected_even_with_the_dollar_as_gs_substitute() -> (
    None
):
    # "$" as GS substitute must not hide "$d2": the AIM check runs on the raw start of the text
    scan = decode_text("$d2" + GTIN_OK + TAIL, DecodeSettings(gs_substitute="$"))
    assert [p.code for p in scan.problems] == [ProblemCode.SUSPECT_LAYOUT_MISMATCH]


def test_binary_garbage_is_bad_input() -> None:
    scan = decode_bytes(b"\x89PNG\r\n\x1a\n\x00\x00", DecodeSettings())
    assert not scan.ok
    assert [(p.code, p.message) for p in scan.problems] == [
        (
            ProblemCode.BAD_INPUT,
            "The input could not be read (binary data, U+0089 at position 1): send one scan or one JSON key event per line.",
        )
    ]


def test_french_messages_exist_for_every_code_and_differ_from_english() -> None:
    for code, text in CATALOGUE.items():
        problem = Problem(code, Severity.ERROR, "x")
        assert problem.text("fr") != problem.text("en")
        assert problem.text("fr").startswith(text.fr.split("{detail}")[0])
        assert problem.to_json()["message_fr"] == problem.text("fr")


def test_every_code_is_in_the_catalogue() -> None:
    assert set(CATALOGUE) == set(ProblemCode)


def test_readme_problem_table_is_the_catalogue() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert catalogue_markdown() in readme
