"""The scan-level pipeline: text options, bytes, key traces under every layout, layout ``auto``."""

from __future__ import annotations

import ast
from pathlib import Path

import evdev
import pytest
from hypothesis import assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from gateway.codes import (
    DecodedScan,
    DecodeSettings,
    PackIdentifier,
    ProblemCode,
    decode_bytes,
    decode_keys,
    decode_text,
    validate_pack,
)
from gateway.codes.keyboard import (
    LAYOUTS,
    SEPARATOR_STYLES,
    CannotType,
    KeyboardSettings,
    KeyEvent,
    KeyTrace,
    ScanSplitter,
    Separators,
    emulate,
    type_trace,
)
from gateway.codes.keyboard.events import EV_SYN, KEY_F12, SYN_DROPPED
from tests.codes.packs import GS, gs1_elements, gs1_texts, gtin_packs, ppn_packs, ppn_texts

TEXT = "]d2" + "0103400936040540" + "17270500" + "10aB-1" + GS + "21xY9z"
PACK = PackIdentifier("GTIN", "03400936040540", "aB-1", "270500", "xY9z", aim="]d2")
CODES_DIR = Path(__file__).parents[2] / "gateway" / "codes"


def traces(events: list[KeyEvent], keyboard: KeyboardSettings) -> list[KeyTrace]:
    splitter = ScanSplitter(keyboard)
    found = [trace for trace in map(splitter.feed, events) if trace is not None]
    last = splitter.flush()
    return found + ([last] if last else [])


def keys_scan(text: str, layout: str, settings: DecodeSettings, **emulation: object) -> DecodedScan:
    (trace,) = traces(emulate(text, layout, **emulation), settings.keyboard)  # type: ignore[arg-type]
    return decode_keys(trace, settings)


# --- text ------------------------------------------------------------------------------------


def test_prefix_suffix_and_line_end_are_removed_and_the_aim_id_kept() -> None:
    settings = DecodeSettings(prefix="<<", suffix="#")
    scan = decode_text("<<" + TEXT + "#\r\n", settings)
    assert scan.ok
    assert scan.pack == PACK
    assert scan.aim == "]d2"
    assert scan.text == "<<" + TEXT + "#\r\n"  # reported as received


@pytest.mark.parametrize("aim", ["]d2", "]C1", "]Q3", "]e0", "]J1"])
def test_only_gs1_symbology_identifiers_make_the_data_gs1(aim: str) -> None:
    scan = decode_text(aim + TEXT.removeprefix("]d2"), DecodeSettings())
    assert scan.ok and scan.pack is not None and scan.aim == aim


@pytest.mark.parametrize("aim", ["]d1", "]d0", "]d3", "]Q1", "]C0", "]e1", "]J0", "]E0", "]A0"])
def test_gs1_data_under_another_symbology_identifier_is_not_a_pack_code(aim: str) -> None:
    scan = decode_text(aim + TEXT.removeprefix("]d2"), DecodeSettings())
    assert scan.pack is None
    assert [p.code for p in scan.problems] == [ProblemCode.NOT_A_PACK_CODE]
    # and a run-together message is not searched for a split either
    scan = decode_text(aim + TEXT.removeprefix("]d2").replace(GS, ""), DecodeSettings())
    assert [p.code for p in scan.problems] == [ProblemCode.NOT_A_PACK_CODE]


def test_a_ppn_code_reads_under_d1_but_not_under_a_gs1_identifier() -> None:
    ppn = "[)>\x1e06\x1d9N110375286414\x1d1TB\x1dD270900\x1dS1\x1e\x04"
    assert decode_text("]d1" + ppn, DecodeSettings()).ok
    assert decode_text(ppn, DecodeSettings()).ok
    scan = decode_text("]d2" + ppn, DecodeSettings())
    assert scan.pack is None and not scan.ok


def test_the_split_search_universe_is_a_setting() -> None:
    text = "]d2" + "0103400936040540" + "17270500" + "10L21SER91XYZ"
    assert decode_text(text, DecodeSettings()).pack is not None  # fmd by default
    assert decode_text(text, DecodeSettings(split_ais="gs1")).pack is None
    with pytest.raises(ValueError, match="split_ais must be one of fmd, gs1"):
        DecodeSettings(split_ais="all")


def test_a_gs_substitute_outside_set_82_is_turned_into_gs() -> None:
    scan = decode_text(TEXT.replace(GS, "$"), DecodeSettings(gs_substitute="$"))
    assert scan.pack == PACK
    assert scan.problems == ()


def test_a_gs_substitute_inside_set_82_is_refused_as_it_would_eat_data() -> None:
    with pytest.raises(ValueError, match=r"gs_substitute must be one character outside GS1 set 82"):
        DecodeSettings(gs_substitute="|x")
    with pytest.raises(ValueError, match=r"outside GS1 set 82 \(such as '\$'\), not '%'"):
        DecodeSettings(gs_substitute="%")


def test_unknown_auto_layouts_are_refused() -> None:
    with pytest.raises(ValueError, match=r"auto_layouts must be layouts among us, .*\['xx'\]"):
        DecodeSettings(auto_layouts=("us", "xx"))


def test_control_characters_that_python_calls_whitespace_are_never_trimmed() -> None:
    # a trailing GS (and FS/RS) must survive: only CR/LF are end-of-line
    text = "0103400936040540" + "17270500" + "10L" + GS + "21S" + GS
    scan = decode_text(text, DecodeSettings())
    assert scan.pack is not None and scan.pack.serial == "S"
    scan = decode_text(" " + TEXT, DecodeSettings())
    assert not scan.ok  # a leading space is not removed either


def test_bytes_are_read_verbatim_as_latin_1() -> None:
    scan = decode_bytes(TEXT.encode("ascii") + b"\r\n", DecodeSettings())
    assert scan.pack == PACK
    scan = decode_bytes(b"0103400936040540172705001\xe921S", DecodeSettings())
    assert scan.problems[0].code is ProblemCode.SUSPECT_LAYOUT_MISMATCH


def test_an_oversized_scan_is_bad_input() -> None:
    scan = decode_text("1" * 5000, DecodeSettings())
    assert [(p.code, p.detail) for p in scan.problems] == [
        (ProblemCode.BAD_INPUT, "5000 characters, more than any DataMatrix holds")
    ]


@given(gtin_packs().flatmap(lambda pack: st.tuples(st.just(pack), gs1_texts(pack))))
def test_case_is_never_changed(case: tuple[PackIdentifier, str]) -> None:
    pack, text = case
    assert decode_text(text, DecodeSettings()).pack == pack
    swapped = text.swapcase()
    if swapped != text:
        assert decode_text(swapped, DecodeSettings()).pack != pack


def test_no_case_folding_or_strip_call_in_the_decoder() -> None:
    """A static guard: no code in gateway/codes may change case or strip whitespace blindly."""
    forbidden = {"upper", "lower", "casefold", "capitalize", "title", "swapcase"}
    # keyboard/generate.py runs at build time on xkbcli output, never on scan data
    for path in set(CODES_DIR.rglob("*.py")) - {CODES_DIR / "keyboard" / "generate.py"}:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                assert name not in forbidden, f"{path.name}:{node.lineno} calls .{name}()"
                if name in {"strip", "lstrip", "rstrip"}:
                    assert node.args, (
                        f"{path.name}:{node.lineno} calls .{name}() without characters"
                    )


def test_json_output_has_the_contract_keys() -> None:
    data = decode_text(TEXT, DecodeSettings()).to_json()
    assert data == {
        "ok": True,
        "text": TEXT,
        "layout": None,
        "pack": PACK.to_json(),
        "problems": [],
        "aim": "]d2",
    }


def test_text_from_a_layout_mix_up_names_the_scanner_and_host_layouts_never_corrects() -> None:
    # What a PC set to us shows when an AZERTY scanner types the pack (the keys under "us").
    text = "01" + "03400931408918" + "17270131" + "10JXdhVD" + GS + "21xnE3yLVRqXKg"
    (trace,) = traces(emulate(text, "fr"), KeyboardSettings())
    shown = type_trace(trace, "us").text
    assert shown == ")!)#$))(#!$)*(!*!&@&)!#!!)JXdhVD" + GS + "@!xnE#yLVRaXKg"
    scan = decode_text(shown, DecodeSettings())
    assert (scan.pack, scan.text) == (None, shown)
    assert [(p.code, p.detail) for p in scan.problems] == [
        (
            ProblemCode.SUSPECT_LAYOUT_MISMATCH,
            "it reads as 2 different valid packs if typed with scanner layout fr/be on us, or "
            "cz/sk on us, or fr/be on pl, and 9 more",
        ),
        (ProblemCode.UNKNOWN_FORMAT, "the code starts with ')'"),
    ]
    assert scan.to_json()["problems"][0]["message_fr"].startswith(
        "Les caractères évoquent une confusion de clavier (il se lit comme 2 boîtes valides "
        "différentes s'il a été tapé avec la disposition de scanner fr/be sur us, ou cz/sk sur us"
    )


def test_text_whose_fields_were_read_gets_no_layout_pair_hint() -> None:
    # The serial's "#" could be a mix-up under many pairs, but the fields say what is wrong.
    scan = decode_text("0103400936040540" + "17270500" + "10aB-1" + GS + "21ab#c", DecodeSettings())
    assert [(p.code, p.detail) for p in scan.problems] == [
        (ProblemCode.BAD_CHARSET, "serial (21) contains '#'")
    ]


# Characters that make codes, mangled codes and control characters, and anything at all.
_SCANNABLE = st.sampled_from([*"0123456789" * 4, *"]d2[)>\x1d\x1e\x04$+-(aAzZyY#£éàù§\r\n:;"])


@hypothesis_settings(max_examples=max(300, hypothesis_settings().max_examples))
@given(
    text=st.text(_SCANNABLE, max_size=60) | st.text(max_size=40),
    gs_substitute=st.sampled_from([None, "$", "§"]),
)
def test_any_text_gives_problems_or_an_exact_valid_pack(
    text: str, gs_substitute: str | None
) -> None:
    scan = decode_text(text, DecodeSettings(gs_substitute=gs_substitute))
    scan.to_json()
    if scan.ok:
        assert scan.pack is not None  # never "ok" without a pack
        assert validate_pack(scan.pack) == ()
        for value in (scan.pack.product_code, scan.pack.batch, scan.pack.expiry, scan.pack.serial):
            assert value in text  # every field is in the text, character for character
    else:
        assert scan.problems


@pytest.mark.parametrize(
    "text", [GS, GS + GS, "]d2" + GS, "[)>\x1e05\x1d", "[)>\x1e05\x1d\x1e\x04"]
)
def test_separators_alone_are_refused_never_ok_without_a_pack(text: str) -> None:
    scan = decode_text(text, DecodeSettings())
    assert (scan.ok, scan.pack) == (False, None)
    assert [(p.code, p.detail) for p in scan.problems] == [
        (ProblemCode.UNKNOWN_FORMAT, "only group separators, no GS1 element")
    ]


# --- keys ------------------------------------------------------------------------------------


@st.composite
def keyboard_cases(draw: st.DrawFn, layout: str) -> tuple[PackIdentifier, str, dict[str, object]]:
    """A valid pack, its text, and how a scanner set to ``layout`` types it."""
    style = draw(
        st.sampled_from(["ctrl_layout", "ctrl_us", "alt_keypad", "function_key", "substitute"])
    )
    if style == "substitute":
        pack = draw(gtin_packs())
        text = draw(gs1_texts(pack))
    else:
        pack = draw(gtin_packs() | ppn_packs())
        text = draw(gs1_texts(pack) if pack.scheme == "GTIN" else ppn_texts(pack))
    emulation: dict[str, object] = {
        "separators": style,
        "keypad_digits": draw(st.booleans()),
        "caps_lock": draw(st.booleans()),
        "function_keys": {KEY_F12: GS},
    }
    return pack, text, emulation


def settings_for(layout: str, emulation: dict[str, object]) -> DecodeSettings:
    return DecodeSettings(
        keyboard=KeyboardSettings(layout=layout, function_keys={KEY_F12: GS}),
        gs_substitute="$" if emulation["separators"] == "substitute" else None,
    )


@pytest.mark.parametrize("layout", LAYOUTS)
@hypothesis_settings(
    max_examples=max(20, hypothesis_settings().max_examples // 3)
)  # x29 layouts: keep the suite fast
@given(data=st.data())
def test_every_layout_round_trips_valid_packs_through_key_events(
    layout: str, data: st.DataObject
) -> None:
    pack, text, emulation = data.draw(keyboard_cases(layout))
    try:
        events = emulate(text, layout, **emulation)  # type: ignore[arg-type]
    except CannotType:
        assume(False)
    settings = settings_for(layout, emulation)
    (trace,) = traces(events, settings.keyboard)
    scan = decode_keys(trace, settings)
    assert scan.problems == ()
    assert scan.pack == pack
    assert scan.layout == layout


@given(data=st.data())
def test_auto_layout_returns_the_pack_or_says_the_layouts_disagree(data: st.DataObject) -> None:
    layout = data.draw(st.sampled_from(LAYOUTS))
    pack, text, emulation = data.draw(keyboard_cases(layout))
    assume(emulation["separators"] != "substitute")
    try:
        events = emulate(text, layout, **emulation)  # type: ignore[arg-type]
    except CannotType:
        assume(False)
    settings = DecodeSettings(keyboard=KeyboardSettings(layout="auto", function_keys={KEY_F12: GS}))
    (trace,) = traces(events, settings.keyboard)
    scan = decode_keys(trace, settings)
    if scan.pack is None:
        assert [p.code for p in scan.problems] == [ProblemCode.LAYOUT_AMBIGUOUS]
    else:
        assert scan.pack == pack
        assert scan.ok
    assert layout in scan.layouts


@given(gtin_packs())
def test_keys_with_dropped_separators_give_the_exact_pack_or_a_refusal(
    pack: PackIdentifier,
) -> None:
    text = "".join(
        ai + value + GS for ai, value, _ in gs1_elements(pack)
    )  # the GS are not sent at all
    settings = DecodeSettings()
    scan = keys_scan((pack.aim or "") + text, "us", settings, separators="dropped")
    gs_missing = [p for p in scan.problems if p.code is ProblemCode.GS_MISSING]
    assert len(gs_missing) == 1
    if scan.pack is None:
        assert not scan.ok
    else:
        assert scan.pack == pack
        assert scan.ok


def test_real_evdev_input_events_decode_through_from_evdev() -> None:
    settings = DecodeSettings(keyboard=KeyboardSettings(layout="fr"))
    events = [
        KeyEvent.from_evdev(
            evdev.InputEvent(int(e.time), round(e.time % 1 * 1e6), e.type, e.code, e.value)
        )
        for e in emulate(TEXT, "fr", start=1_700_000_000.0)
    ]
    (trace,) = traces(events, settings.keyboard)
    assert decode_keys(trace, settings).pack == PACK


def test_auto_finds_the_only_layout_that_reads_a_valid_pack() -> None:
    # French scanner: digits need Shift, so no other layout reads this as a valid pack
    settings = DecodeSettings(keyboard=KeyboardSettings(layout="auto"))
    scan = keys_scan(TEXT, "fr", settings)
    assert scan.ok
    assert scan.pack == PACK
    assert (scan.layout, scan.layouts) == ("fr", ("fr",))
    assert scan.to_json()["layouts"] == ["fr"]


def test_auto_refuses_when_layouts_read_different_valid_packs() -> None:
    # A US scanner types serial "Y7": with a German table KEY_Y is "z", also a valid serial.
    text = "0103400936040540" + "17270500" + "10L" + GS + "21Y7"
    settings = DecodeSettings(
        keyboard=KeyboardSettings(layout="auto"), auto_layouts=("us", "fr", "de")
    )
    scan = keys_scan(text, "us", settings)
    assert scan.pack is None
    assert [(p.code, p.message) for p in scan.problems] == [
        (
            ProblemCode.LAYOUT_AMBIGUOUS,
            "The scanner's keyboard country could not be told apart (layouts us, de read 2 "
            "different valid packs): set the scanner layout in the configuration.",
        )
    ]
    assert scan.layouts == ("us", "de")


def test_a_wrong_fixed_layout_is_diagnosed_with_the_layouts_that_read_a_valid_pack() -> None:
    settings = DecodeSettings(keyboard=KeyboardSettings(layout="de"))
    scan = keys_scan(TEXT, "fr", settings)
    assert scan.pack is None
    assert scan.problems[0].message == (
        "The characters look like a keyboard-country mix-up (the keys give a valid pack with "
        "layout fr, not with de): set the scanner's keyboard country in the gateway "
        "configuration, or calibrate the scanner (nmvs-gateway selftest --calibrate)."
    )


def test_a_wrong_fixed_layout_with_no_other_candidate_keeps_its_own_diagnosis() -> None:
    settings = DecodeSettings(keyboard=KeyboardSettings(layout="de"), auto_layouts=("de",))
    scan = keys_scan(TEXT, "fr", settings)  # the French AIM flag key types "§" in German
    assert scan.pack is None
    assert [(p.code, p.detail) for p in scan.problems] == [
        (
            ProblemCode.SUSPECT_LAYOUT_MISMATCH,
            "'§' cannot be in a pack code but is typical of a keyboard mix-up",
        )
    ]


def test_unmapped_keys_are_named() -> None:
    settings = DecodeSettings(keyboard=KeyboardSettings(layout="us"))
    events = emulate(TEXT, "us", separators="function_key", function_keys={KEY_F12: GS})
    (trace,) = traces(events, settings.keyboard)  # F12 not configured: it types nothing
    scan = decode_keys(trace, settings)
    assert scan.pack is None
    assert "\0" in scan.text
    assert [(p.code, p.message) for p in scan.problems] == [
        (
            ProblemCode.UNMAPPED_KEY,
            "The scanner typed a key that its keyboard country does not map (KEY_F12 in layout "
            "us): check the scanner's keyboard country.",
        )
    ]


def test_dropped_events_interrupt_the_scan() -> None:
    settings = DecodeSettings()
    events = emulate(TEXT, "us")
    events.insert(20, KeyEvent(EV_SYN, SYN_DROPPED, 0, events[20].time))
    found = traces(events, settings.keyboard)
    scan = decode_keys(found[0], settings)
    assert (scan.pack, scan.text) == (None, "")  # the splitter discards a scan with a gap in it
    assert [(p.code, p.message) for p in scan.problems] == [
        (
            ProblemCode.SCAN_INTERRUPTED,
            "The scan was cut short (the system dropped key events during the scan): scan the "
            "pack again.",
        )
    ]


def test_a_key_storm_is_truncated_and_refused() -> None:
    settings = DecodeSettings(keyboard=KeyboardSettings(max_scan_keys=10))
    (trace,) = traces(emulate(TEXT, "us"), settings.keyboard)
    scan = decode_keys(trace, settings)
    assert scan.pack is None
    assert scan.text == TEXT[: len(scan.text)] and scan.text  # what arrived, for diagnosis
    assert [p.code for p in scan.problems] == [ProblemCode.SCAN_INTERRUPTED]
    assert "keys beyond the per-scan limit were dropped" in scan.problems[0].message


@hypothesis_settings(max_examples=max(100, hypothesis_settings().max_examples))
@given(
    typed_by=st.sampled_from(LAYOUTS),
    configured=st.sampled_from(LAYOUTS),
    separators=st.sampled_from(SEPARATOR_STYLES[1:3]),
    data=st.data(),
)
def test_a_wrong_fixed_layout_gives_the_pack_or_a_layout_error_never_another_pack(
    typed_by: str, configured: str, separators: Separators, data: st.DataObject
) -> None:
    pack = data.draw(gtin_packs() | ppn_packs())
    text = data.draw(gs1_texts(pack) if pack.scheme == "GTIN" else ppn_texts(pack))
    settings = DecodeSettings(keyboard=KeyboardSettings(layout=configured))
    try:
        (trace,) = traces(emulate(text, typed_by, separators=separators), settings.keyboard)
    except CannotType:
        assume(False)
    disagree = type_trace(trace, typed_by).text != type_trace(trace, configured).text
    assume(disagree)
    scan = decode_keys(trace, settings)
    if scan.ok:
        assert scan.pack is not None
        if scan.pack != pack:
            # Not told apart: the configured table reads a valid pack from these keys (QWERTZ
            # "Y7" and QWERTY "Z7" are the same keys), so the configuration is what is read.
            assert (scan.layout, scan.text) == (configured, type_trace(trace, configured).text)
            assert decode_text(scan.text, DecodeSettings()).pack == scan.pack
        return
    assert scan.problems[0].code in (
        ProblemCode.SUSPECT_LAYOUT_MISMATCH,
        ProblemCode.LAYOUT_AMBIGUOUS,
    ), scan.problems
    assert typed_by in scan.problems[0].detail  # the layout that typed it is named


def test_a_wrong_fixed_layout_says_so_when_other_layouts_read_different_packs() -> None:
    # An AZERTY scanner read as us: fr and be read the pack, cz and sk read another valid one.
    text = "01" + "03400931408918" + "17270131" + "10JXdhVD" + GS + "21xnE3yLVRqXKg"
    scan = keys_scan(text, "fr", DecodeSettings(keyboard=KeyboardSettings(layout="us")))
    assert scan.pack is None
    assert [(p.code, p.message) for p in scan.problems] == [
        (
            ProblemCode.SUSPECT_LAYOUT_MISMATCH,
            "The characters look like a keyboard-country mix-up (the keys give 2 different valid "
            "packs with layouts fr, be, cz, sk, none with us): set the scanner's keyboard "
            "country in the gateway configuration, or calibrate the scanner (nmvs-gateway "
            "selftest --calibrate).",
        ),
        (ProblemCode.UNKNOWN_FORMAT, scan.problems[1].message),
    ]
