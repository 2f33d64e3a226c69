"""The calibration card, read back from the written files by libdmtx (an independent decoder).

The card is encoded by zxing-cpp/zint; libdmtx (via pylibdmtx) reads the PNG itself and the PDF
after poppler rasterises it, so each test checks what a scanner would see on paper. libdmtx
reports FNC1 as whichever byte it is told: as GS it yields what a scanner transmits (the leading
FNC1, GS1 mode / AIM ``]d2``, shows up as a first GS); as ``|`` it proves the separators are
FNC1 codewords and not literal GS bytes (those stay GS, as in the PPN).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from ctypes import cast
from pathlib import Path

import biip
import pytest
from PIL import Image
from pylibdmtx import pylibdmtx
from pylibdmtx.wrapper import DmtxProperty, DmtxUndefined, dmtxDecodeSetProp

from gateway.cli import main
from gateway.codes.keyboard.layouts import LAYOUTS, get_layout
from gateway.codes.validation import SET_82
from gateway.selftest import card
from gateway.selftest.card_codes import (
    CALIBRATION,
    CALIBRATION_PAYLOAD,
    CARD_CODES,
    DAY_00_EXPIRY,
    FRENCH_PACK,
    GERMAN_PPN,
    GS,
    LAYOUT_SENSITIVE_LETTERS,
    LAYOUT_SENSITIVE_PUNCTUATION,
    CardCode,
)

DPI = 300
QUIET_MM = 4.0  # margin kept around each code when it is cut out of the page


def code_boxes() -> dict[str, tuple[int, int, int, int]]:
    """Where the layout puts each code on a 300 dpi page, with a quiet margin: libdmtx reads a
    cut-out in milliseconds, a whole page (text and all) in seconds."""
    boxes = {}
    for item in card.layout({code.key: card.encode(code) for code in CARD_CODES}):
        if isinstance(item, card.Symbol):
            left, top = item.x - QUIET_MM, item.y - QUIET_MM
            right, bottom = item.x + item.width_mm + QUIET_MM, item.y + item.width_mm + QUIET_MM
            boxes[item.code.key] = (
                round(left * DPI / 25.4), round(top * DPI / 25.4),
                round(right * DPI / 25.4), round(bottom * DPI / 25.4),
            )  # fmt: skip
    return boxes


def read_card(page: Image.Image, fnc1: int | None) -> dict[str, list[bytes]]:
    """What libdmtx reads at each code's place on the page."""
    assert abs(page.width - 2480) <= 1 and abs(page.height - 3508) <= 1  # A4 at 300 dpi
    return {key: read_data_matrices(page.crop(box), fnc1) for key, box in code_boxes().items()}


def read_data_matrices(image: Image.Image, fnc1: int | None) -> list[bytes]:
    """Every Data Matrix libdmtx finds in ``image``; ``fnc1`` is the byte reported for FNC1.

    pylibdmtx's ``decode()`` cannot set libdmtx's FNC1 property, so this repeats its loop
    with the property set (same private helpers, same order).
    """
    pixels, width, height, bpp = pylibdmtx._pixel_data(image.convert("L"))
    found = []
    with (
        pylibdmtx._image(
            cast(pixels, pylibdmtx.c_ubyte_p), width, height, pylibdmtx._PACK_ORDER[bpp]
        ) as dmtx_image,
        pylibdmtx._decoder(dmtx_image, 1) as decoder,
    ):
        if fnc1 is not None:
            dmtxDecodeSetProp(decoder, DmtxProperty.DmtxPropFnc1, fnc1)
        while True:
            with pylibdmtx._region(decoder, None) as region:
                if not region:
                    break
                decoded = pylibdmtx._decode_region(decoder, region, DmtxUndefined, 1)
                if decoded:
                    found.append(decoded.data)
    return sorted(found)


def expected_with_fnc1_as(fnc1: str) -> dict[str, list[bytes]]:
    """Each code's payload as libdmtx reports it when FNC1 is reported as ``fnc1``: GS1 codes
    start with FNC1 and use it as separator; the PPN's GS, RS and EOT are data bytes."""
    return {
        code.key: [
            (fnc1 + code.payload.replace(GS, fnc1) if code.kind == "gs1" else code.payload).encode()
        ]
        for code in CARD_CODES
    }


@pytest.fixture(scope="module")
def card_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("card")
    assert main(["card", "--out", str(folder / "card.pdf")]) == 0
    assert main(["card", "--out", str(folder / "card.png")]) == 0
    yield folder


def test_png_card_holds_every_code_byte_for_byte(card_dir: Path) -> None:
    with Image.open(card_dir / "card.png") as page:
        assert read_card(page, fnc1=0x1D) == expected_with_fnc1_as(GS)


def test_pdf_card_rasterised_holds_every_code_byte_for_byte(card_dir: Path) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip(
            "pdftoppm is missing: install the Debian package poppler-utils (.ci/setup does)"
        )
    subprocess.run(
        ["pdftoppm", "-r", "300", "-gray", "-aa", "no", "-aaVector", "no", "-png", "-singlefile",
         str(card_dir / "card.pdf"), str(card_dir / "pdf-page")],
        check=True,
    )  # fmt: skip
    with Image.open(card_dir / "pdf-page.png") as page:
        assert read_card(page, fnc1=0x1D) == expected_with_fnc1_as(GS)


def test_gs1_separators_are_fnc1_codewords_and_ppn_controls_are_data(card_dir: Path) -> None:
    # Report FNC1 as "|" (outside set 82 and absent from every payload): FNC1 codewords then
    # read as "|", while GS stored as a data byte would still read as GS.
    assert all("|" not in code.payload for code in CARD_CODES)
    assert all(GS in code.payload for code in CARD_CODES)
    with Image.open(card_dir / "card.png") as page:
        assert read_card(page, fnc1=ord("|")) == expected_with_fnc1_as("|")


def test_calibration_payload_is_the_exact_contract() -> None:
    assert CALIBRATION.payload == CALIBRATION_PAYLOAD
    assert CALIBRATION_PAYLOAD == (
        "0109506000134352" "17281231" "10!\"%&'()*+,-./:;<=>?_" "\x1d"
        "21aqwzymAQWZYM" "\x1d" "7100123456789"
    )  # fmt: skip


def test_calibration_code_has_every_character_whose_key_differs_between_supported_layouts() -> None:
    # From the keyboard tables the decoder uses (all supported scanner layouts): a layout added
    # there that moves another set-82 character makes this fail until the card carries it.
    chords = [get_layout(name).chords() for name in LAYOUTS]
    moving = {char for char in SET_82 if len({layout[char] for layout in chords}) > 1}
    assert moving <= set(CALIBRATION_PAYLOAD)
    assert moving == set(LAYOUT_SENSITIVE_PUNCTUATION + LAYOUT_SENSITIVE_LETTERS + "0123456789")


def test_calibration_code_has_every_layout_sensitive_letter_in_both_cases() -> None:
    letters = [char for char in CALIBRATION_PAYLOAD if char.isalpha()]
    assert {char.lower() for char in letters if char.isupper()} == {
        char for char in letters if char.islower()
    }
    assert CALIBRATION_PAYLOAD.count(GS) == 2


@pytest.mark.parametrize("code", [CALIBRATION, FRENCH_PACK, DAY_00_EXPIRY], ids=lambda c: c.key)
def test_gs1_codes_are_valid_element_strings(code: CardCode) -> None:
    result = biip.parse(code.aim + code.payload)
    assert result.gs1_message_error is None
    assert result.gtin_error is None
    message = result.gs1_message
    assert message is not None
    parsed = [(element.ai.ai, element.value) for element in message.element_strings]
    assert parsed == list(code.elements)
    for element in message.element_strings:
        assert element.gtin_error is None
        assert len(element.value) <= 20


def test_french_pack_carries_a_cip13_and_day_00_code_keeps_its_raw_expiry() -> None:
    gtin = dict(FRENCH_PACK.elements)["01"]
    assert gtin.startswith("034009") and len(gtin) == 14
    message = biip.parse(DAY_00_EXPIRY.aim + DAY_00_EXPIRY.payload).gs1_message
    assert message is not None
    expiry = message.element_strings.get(ai="17")
    assert expiry is not None
    assert expiry.value == "290500"
    assert str(expiry.date) == "2029-05-31"  # day 00 means the whole month


def test_german_ppn_is_format_06_with_a_valid_ppn() -> None:
    body = GERMAN_PPN.payload
    assert body.startswith("[)>\x1e06\x1d") and body.endswith("\x1e\x04")
    fields = body[len("[)>\x1e06\x1d") : -2].split(GS)
    assert [field[:2] if field[0].isdigit() else field[0] for field in fields] == [
        "9N",
        "1T",
        "D",
        "S",
    ]
    ppn = fields[0][2:]
    assert sum((i + 2) * ord(char) for i, char in enumerate(ppn[:10])) % 97 == int(ppn[10:])
    assert GERMAN_PPN.aim == "]d1"


def test_missing_output_folder_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "no-such-folder" / "card.pdf"
    assert main(["card", "--out", str(out)]) == 1
    assert capsys.readouterr().out == (
        f"nmvs-gateway card: cannot write {out}: the folder {out.parent} does not exist\n"
    )


def test_png_without_dejavu_fonts_says_which_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(card, "PNG_FONT_DIR", tmp_path)
    assert main(["card", "--out", str(tmp_path / "card.png")]) == 1
    out = capsys.readouterr().out
    assert "install the Debian package fonts-dejavu-core, or write a PDF card instead" in out
    assert not (tmp_path / "card.png").exists()


def test_card_prints_each_element_on_its_own_line_with_its_separators() -> None:
    assert CALIBRATION.readable_lines() == [
        "(01) 09506000134352",
        "(17) 281231",
        "(10) !\"%&'()*+,-./:;<=>?_ <GS>",
        "(21) aqwzymAQWZYM <GS>",
        "(710) 0123456789",
    ]
    assert GERMAN_PPN.readable_lines() == [
        "[)><RS>06<GS>",
        "9N110375286414<GS>",
        "1TX4711A<GS>",
        "D280630<GS>",
        "SPX7Y3ZQK9R<RS><EOT>",
    ]
