"""Property tests: text → emulate(layout) → ScanSplitter → type_trace(layout) gives the text back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codes.keyboard import (
    EOT,
    GS,
    LAYOUTS,
    RS,
    CannotType,
    KeyboardSettings,
    KeyTrace,
    Separators,
    emulate,
    type_trace,
)
from gateway.codes.keyboard.events import KEY_F12

from .helpers import KEY_F11, scans, typed

SET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
KEY_F10 = 68
FUNCTION_KEYS = {KEY_F12: GS, KEY_F11: RS, KEY_F10: EOT}
TYPED_STYLES: tuple[Separators, ...] = ("ctrl_layout", "ctrl_us", "alt_keypad", "function_key")
PER_LAYOUT = settings(max_examples=max(10, settings().max_examples // 4))

texts = st.text(alphabet=SET_82 + GS + RS + EOT, min_size=1, max_size=60)


@pytest.mark.parametrize("layout", LAYOUTS)
@PER_LAYOUT
@given(
    text=texts,
    style=st.sampled_from(TYPED_STYLES),
    keypad_digits=st.booleans(),
    caps_lock=st.booleans(),
    aim=st.sampled_from(["", "]d2", "]d1", "]C1", "]Q3"]),
)
def test_round_trip(
    layout: str, text: str, style: Separators, keypad_digits: bool, caps_lock: bool, aim: str
) -> None:
    events = emulate(
        aim + text,
        layout,
        separators=style,
        keypad_digits=keypad_digits,
        caps_lock=caps_lock,
        function_keys=FUNCTION_KEYS,
    )
    configured = KeyboardSettings(layout=layout, function_keys=FUNCTION_KEYS, gap_ms=None)
    (trace,) = scans(events, configured)
    result = type_trace(trace, layout)
    assert (result.text, result.unmapped) == (aim + text, ())
    assert (trace.ended_by, trace.interrupted, trace.truncated) == ("suffix", False, False)


@given(text=texts, layout=st.sampled_from(LAYOUTS), gap_ms=st.integers(min_value=5, max_value=500))
def test_gap_split_scans_come_back_in_order(text: str, layout: str, gap_ms: int) -> None:
    pieces = [text, text[::-1]]
    events = []
    start = 0.0
    for piece in pieces:  # keys 1 ms apart, scans 2 gaps apart, no suffix
        typed_piece = emulate(piece, layout, suffix=None, start=start)
        events += typed_piece
        start = typed_piece[-1].time + 2 * gap_ms / 1000
    traces = scans(events, KeyboardSettings(layout=layout, gap_ms=max(gap_ms, 5)))
    assert [type_trace(t, layout).text for t in traces] == pieces
    assert [t.ended_by for t in traces] == ["gap", "flush"]


@given(text=texts, layout=st.sampled_from(LAYOUTS))
def test_substitute_and_dropped_separators(text: str, layout: str) -> None:
    substitutes = (
        {GS: "$", RS: "$", EOT: "$"}
        if layout in ("us", "fr", "de")
        else {GS: "%", RS: "%", EOT: "%"}
    )
    expected = (
        text.replace(GS, substitutes[GS]).replace(RS, substitutes[GS]).replace(EOT, substitutes[GS])
    )
    assert (
        typed(emulate(text, layout, separators="substitute", substitutes=substitutes), layout)
        == expected
    )
    dropped = "".join(c for c in text if c not in (GS, RS, EOT))
    assert typed(emulate(text, layout, separators="dropped"), layout) == dropped


@pytest.mark.parametrize("layout", ["us", "fr", "de"])
def test_dollar_substitute_needs_no_altgr(layout: str) -> None:
    # '$' is typeable without AltGr in US/FR/DE.
    events = emulate(GS, layout, separators="substitute", suffix=None)
    assert 100 not in {e.code for e in events}


def test_us_scanner_read_as_french_gives_the_classic_corruption() -> None:
    # The classic corruption: a US scanner's "]d2010340093…" arrives as "$déà&à\"'ààç\"…" in FR.
    (trace,) = scans(emulate("]d2010340093", "us"))
    assert type_trace(trace, "fr").text == '$déà&à"\'ààç"'
    assert type_trace(trace, "us").text == "]d2010340093"


def test_us_scanner_read_as_german_swaps_y_and_z() -> None:
    (trace,) = scans(emulate("Y7-ZA/2", "us"))
    assert type_trace(trace, "de").text == "Z7ßYA-2"


def test_aim_flag_needs_altgr_on_fr_and_de() -> None:
    for layout, key in (("fr", 12), ("de", 10)):
        events = emulate("]", layout, suffix=None, syn_reports=False)
        assert [(e.code, e.value) for e in events] == [(100, 1), (key, 1), (key, 0), (100, 0)]


def test_characters_a_layout_cannot_type_are_refused_by_name() -> None:
    with pytest.raises(CannotType, match="layout 'us' cannot type 'é'"):
        emulate("é", "us")
    with pytest.raises(CannotType, match="no function key is assigned to control character 0x1D"):
        emulate(GS, "us", separators="function_key")


@given(
    text=st.text(alphabet=SET_82 + "]$[{}éàç€" + GS, min_size=1, max_size=30),
    typed_as=st.sampled_from(LAYOUTS),
    read_as=st.sampled_from(LAYOUTS),
)
def test_each_keystroke_is_typed_on_its_own(text: str, typed_as: str, read_as: str) -> None:
    try:
        events = emulate(text, typed_as)
    except CannotType:
        return
    (trace,) = scans(events)
    alone = [type_trace(KeyTrace((stroke,), "flush"), read_as) for stroke in trace.strokes]
    whole = type_trace(trace, read_as)
    assert whole.text == "".join(t.text for t in alone)
    assert whole.unmapped == tuple(chord for t in alone for chord in t.unmapped)


def test_an_unknown_separator_style_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"^unknown separator style 'ctrl-us'; choose one of: ctrl_layout, "
    ):
        emulate(GS, "us", separators="ctrl-us")  # type: ignore[arg-type]
