"""type_trace: modifiers, control-character chords, Alt+keypad codes, unmapped keystrokes."""

from __future__ import annotations

import pytest

from gateway.codes.keyboard import (
    CURSOR_KEY_SEPARATORS,
    EOT,
    FS,
    GS,
    LAYOUTS,
    RS,
    KeyboardSettings,
    KeyEvent,
    alt_character,
    type_trace,
)
from gateway.codes.keyboard.events import (
    KEY_6,
    KEY_CAPSLOCK,
    KEY_DOWN,
    KEY_F12,
    KEY_LEFTALT,
    KEY_LEFTCTRL,
    KEY_LEFTSHIFT,
    KEY_RIGHTALT,
    KEY_RIGHTCTRL,
    KEY_RIGHTSHIFT,
)

from .helpers import (
    KEY_A,
    KEY_BACKSLASH,
    KEY_D,
    KEY_E,
    KEY_LEFTBRACE,
    KEY_MINUS,
    KEY_RIGHTBRACE,
    KP,
    chord,
    scans,
    typed,
)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_ctrl_rightbrace_is_gs_in_every_layout(layout: str) -> None:
    # The Linux trap: xkb fr/de type '$'/'+' for this chord; we read GS.
    assert typed(chord(KEY_RIGHTBRACE, KEY_LEFTCTRL), layout) == GS


@pytest.mark.parametrize("layout", LAYOUTS)
def test_ctrl_at_us_positions(layout: str) -> None:
    events = [
        *chord(KEY_6, KEY_LEFTCTRL),
        *chord(KEY_6, KEY_LEFTCTRL, KEY_LEFTSHIFT),
        *chord(KEY_D, KEY_RIGHTCTRL),
        *chord(KEY_BACKSLASH, KEY_LEFTCTRL),
    ]
    assert typed(events, layout) == RS + RS + EOT + FS


def test_ctrl_at_the_layout_position_of_the_character() -> None:
    # fr types ']' with AltGr+KEY_MINUS and '^' with AltGr+KEY_9; de ']' with AltGr+KEY_9.
    assert typed(chord(KEY_MINUS, KEY_LEFTCTRL, KEY_RIGHTALT), "fr") == GS
    assert typed(chord(10, KEY_LEFTCTRL, KEY_RIGHTALT), "fr") == RS
    assert typed(chord(KEY_LEFTBRACE, KEY_LEFTCTRL), "fr") == RS  # Ctrl + dead circumflex
    assert typed(chord(10, KEY_LEFTCTRL, KEY_RIGHTALT), "de") == GS


def test_the_layout_position_wins_over_the_us_position_when_they_differ() -> None:
    # Swedish types '^' (dead) with Shift+KEY_RIGHTBRACE: Ctrl with it is RS, while plain
    # Ctrl+KEY_RIGHTBRACE stays GS (US position).
    assert typed(chord(KEY_RIGHTBRACE, KEY_LEFTCTRL, KEY_LEFTSHIFT), "se") == RS
    assert typed(chord(KEY_RIGHTBRACE, KEY_LEFTCTRL, KEY_LEFTSHIFT), "us") == GS
    assert typed(chord(KEY_RIGHTBRACE, KEY_LEFTCTRL), "se") == GS


def test_other_ctrl_chords_are_reported_not_dropped() -> None:
    (trace,) = scans([*chord(KEY_A, KEY_LEFTCTRL), *chord(KEY_E)])
    result = type_trace(trace, "us")
    assert result.text == "\0e"
    assert result.unmapped == ("Ctrl+KEY_A",)


def test_dead_keys_give_nul_and_name_the_dead_key() -> None:
    (trace,) = scans([*chord(KEY_LEFTBRACE), *chord(KEY_E)])
    result = type_trace(trace, "fr")
    assert result.text == "\0e"
    assert result.unmapped == ("KEY_LEFTBRACE (dead_circumflex)",)


def test_right_alt_is_altgr_in_fr_but_plain_alt_in_us() -> None:
    (trace,) = scans(chord(KEY_E, KEY_RIGHTALT))
    assert type_trace(trace, "fr").text == "€"
    assert type_trace(trace, "us").text == "\0"
    assert type_trace(trace, "us").unmapped == ("RightAlt+KEY_E",)


def test_both_shifts() -> None:
    events = [*chord(KEY_A, KEY_LEFTSHIFT), *chord(KEY_A, KEY_RIGHTSHIFT), *chord(KEY_A)]
    assert typed(events, "us") == "AAa"


def test_left_alt_with_a_letter_is_an_unmapped_chord() -> None:
    (trace,) = scans(chord(KEY_A, KEY_LEFTALT))
    assert type_trace(trace, "de").unmapped == ("Alt+KEY_A",)


def _alt_code(digits: str) -> list[KeyEvent]:
    keys = [KP[d] for d in digits]
    events = [(KEY_LEFTALT, 1), *((k, v) for k in keys for v in (1, 0)), (KEY_LEFTALT, 0)]
    return [KeyEvent.key(c, v, i / 1000) for i, (c, v) in enumerate(events)]


@pytest.mark.parametrize(
    ("digits", "text"),
    [
        ("029", GS),
        ("29", GS),
        ("030", RS),
        ("004", EOT),
        ("065", "A"),
        ("130", "é"),  # OEM code page 437
        ("0130", "‚"),  # leading 0: Windows ANSI (CP1252) 0x82
        ("0233", "é"),
        ("0129", "\0"),  # CP1252 leaves 0x81 undefined
        ("300", "\0"),
        ("0", "\0"),
        ("00065", "\0"),  # too many digits
    ],
)
def test_alt_keypad_codes(digits: str, text: str) -> None:
    assert typed(_alt_code(digits), "fr") == text
    assert alt_character(digits) == text


def test_alt_keypad_code_is_emitted_on_alt_release_and_reported_when_invalid() -> None:
    (trace,) = scans(_alt_code("300"))
    assert type_trace(trace, "us").unmapped == ("Alt+keypad 300",)


def test_keypad_digits_do_not_depend_on_the_layout() -> None:
    events = [e for d in "0123456789" for e in chord(KP[d])]
    for layout in LAYOUTS:
        assert typed(events, layout) == "0123456789"


def test_scanner_caps_lock_inverts_letters_and_persists_across_scans() -> None:
    enter = 28
    events = [
        *chord(KEY_CAPSLOCK),
        *chord(KEY_A),
        *chord(KEY_A, KEY_LEFTSHIFT),
        *chord(2),
        *chord(enter),
        *chord(KEY_A),
        *chord(KEY_CAPSLOCK),
        *chord(KEY_A),
        *chord(enter),
    ]
    first, second = scans(events)
    assert type_trace(first, "us").text == "Aa1"
    assert type_trace(second, "us").text == "Aa"


def test_scanner_caps_lock_can_start_on() -> None:
    events = [*chord(KEY_A, KEY_LEFTSHIFT), *chord(KEY_A), *chord(KEY_CAPSLOCK), *chord(KEY_A)]
    assert typed(events, "de", KeyboardSettings(caps_lock=True, gap_ms=None)) == "aAa"


def test_function_keys_map_to_control_characters_when_configured() -> None:
    events = [*chord(KEY_F12), *chord(KEY_DOWN)]
    configured = KeyboardSettings(gap_ms=None, function_keys={KEY_F12: GS, **CURSOR_KEY_SEPARATORS})
    assert typed(events, "fr", configured) == GS + GS
    (trace,) = scans(events)
    assert type_trace(trace, "fr").text == "\0\0"
    assert type_trace(trace, "fr").unmapped == ("KEY_F12", "KEY_DOWN")


def test_unknown_key_codes_are_reported() -> None:
    (trace,) = scans(chord(240))
    result = type_trace(trace, "de")
    assert (result.text, result.unmapped) == ("\0", ("KEY_UNKNOWN",))
