"""The committed layout tables: regenerated from xkb-data they are identical; spot checks of
known keys."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gateway.codes.keyboard import LAYOUTS, generate, key_name, table_source
from gateway.codes.keyboard.layouts import Chord, get_layout

SET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
KEY_2, KEY_Y, KEY_MINUS, KEY_EQUAL, KEY_LEFTBRACE, KEY_102ND = 3, 21, 12, 13, 26, 86


def _xkb_available() -> str | None:
    try:
        generate.load_libxkbcommon()
    except generate.XkbError as exc:
        return str(exc)
    return None


def test_regenerated_tables_equal_the_committed_ones() -> None:
    missing = _xkb_available()
    if missing:
        pytest.skip(f"cannot regenerate the layout tables here: {missing}")
    committed_text = generate.TABLE_PATH.read_text(encoding="utf-8")
    regenerated = generate.generate()
    if json.loads(committed_text)["source"] != regenerated["source"]:
        pytest.skip(
            f"tables were generated with {json.loads(committed_text)['source']}, this machine has "
            f"{regenerated['source']}; run python -m gateway.codes.keyboard.generate --check"
        )
    assert generate.render(regenerated) == committed_text


def test_tables_say_which_xkb_produced_them() -> None:
    source = table_source()
    assert source["rules"] == "evdev" and source["model"] == "pc105"
    assert source["libxkbcommon0"].startswith("1.5.0")
    assert source["xkb-data"].startswith("2.35.1")


def test_every_required_country_is_supported() -> None:
    required = "us gb ie fr be de at ch it es pt nl dk se fi no pl cz sk hu si hr ro bg gr lt lv ee"
    assert set(required.split()) <= set(LAYOUTS)


@pytest.mark.parametrize(
    ("layout", "code", "levels"),
    [
        ("fr", KEY_2, ("é", "2", "~")),
        ("fr", KEY_MINUS, (")", "°", "]")),
        ("de", KEY_Y, ("z", "Z", "←")),
        ("de", 10, ("9", ")", "]")),
        ("us", KEY_102ND, ("<", ">")),
        ("us", 27, ("]", "}")),
    ],
)
def test_levels_match_the_reference_table(layout: str, code: int, levels: tuple[str, ...]) -> None:
    table = get_layout(layout)
    found = tuple(table.output(code, bool(i & 1), bool(i & 2)) for i in range(len(levels)))
    assert found == levels


def test_dead_keys_are_markers_never_characters() -> None:
    fr, de = get_layout("fr"), get_layout("de")
    assert fr.output(KEY_LEFTBRACE, False, False) == "dead_circumflex"
    assert de.output(KEY_EQUAL, False, False) == "dead_acute"
    assert de.output(KEY_EQUAL, True, False) == "dead_grave"


def test_right_alt_is_altgr_except_in_us() -> None:
    assert not get_layout("us").altgr
    assert get_layout("fr").altgr and get_layout("de").altgr
    assert get_layout("us").output(KEY_2, False, True) == "2"  # Right Alt adds no level in us


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_types_set_82_and_the_aim_flag(layout: str) -> None:
    chords = get_layout(layout).chords()
    assert set(SET_82 + "]") <= set(chords)
    assert all(not key_name(chords[c].code).startswith("KEY_KP") for c in SET_82)


@pytest.mark.parametrize("layout", ["us", "fr", "de"])
def test_set_82_needs_no_altgr_in_us_fr_de(layout: str) -> None:
    chords = get_layout(layout).chords()
    assert [c for c in SET_82 if chords[c].altgr] == []


def test_keypad_digits_are_the_same_in_every_layout() -> None:
    keypad = {
        code: f"{d}"
        for d, code in zip("0123456789", (82, 79, 80, 81, 75, 76, 77, 71, 72, 73), strict=True)
    }
    for layout in LAYOUTS:
        table = get_layout(layout)
        assert {code: table.output(code, False, False) for code in keypad} == keypad, layout


def test_latin_level_is_used_for_non_latin_countries() -> None:
    for layout in ("bg", "gr"):
        chords = get_layout(layout).chords()
        assert chords["q"].code == 16 and not chords["q"].shift


def test_chords_prefer_no_altgr_then_not_102nd_then_the_lowest_level() -> None:
    us, fr = get_layout("us").chords(), get_layout("fr").chords()
    assert us["<"] == Chord(51, shift=True, altgr=False)  # Shift+KEY_COMMA, as Windows US types it
    assert fr["<"] == Chord(KEY_102ND, shift=False, altgr=False)
    assert fr["2"] == Chord(KEY_2, shift=True, altgr=False)
    assert fr["]"] == Chord(KEY_MINUS, shift=False, altgr=True)
    assert "dead_circumflex" in fr and "^" in fr  # the reverse map keeps dead keys apart


def test_generator_check_mode_reports_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    missing = _xkb_available()
    if missing:
        pytest.skip(f"cannot regenerate the layout tables here: {missing}")
    if table_source() != generate.generate()["source"]:
        pytest.skip("installed xkb versions differ from the ones the tables were generated with")
    assert generate.main(["--check"]) == 0
    assert capsys.readouterr().out == "layouts.json is up to date\n"


def test_the_decoder_does_not_need_evdev() -> None:
    code = (
        "import sys, gateway.codes.keyboard as k; k.type_trace; assert 'evdev' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
