"""A virtual keyboard-wedge scanner: text → the key events a scanner set to a layout would send.

Derived from the same generated tables the decoder reads, so it types what xkb says the layout
types. Used by the property tests (emulate → split → type must give the text back), by the
``decode`` tests, the demo's virtual scanner and the self-test calibration.

Control characters (GS, RS, EOT, FS, US) are sent in the style chosen with ``separators``:

- ``ctrl_layout``: Ctrl + the chord that types ``]`` / ``^`` / ``d`` / ``\\`` / ``_`` in the layout;
- ``ctrl_us``: Ctrl + the US position of that character (``KEY_RIGHTBRACE`` for GS, …);
- ``alt_keypad``: Left Alt held, ``0`` + the three-digit decimal code on the keypad;
- ``function_key``: the key ``function_keys`` (key code → control character) assigns to it;
- ``substitute``: the printable character ``substitutes`` assigns to it, typed normally;
- ``dropped``: nothing at all (what a scanner does with a control code it cannot type).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

from gateway.codes.keyboard.events import (
    CONTROL_CHARACTERS,
    DIGIT_KEYPAD_KEYS,
    EV_SYN,
    GS,
    KEY_CAPSLOCK,
    KEY_ENTER,
    KEY_LEFTALT,
    KEY_LEFTCTRL,
    KEY_LEFTSHIFT,
    KEY_PRESSED,
    KEY_RELEASED,
    KEY_RIGHTALT,
    SYN_REPORT,
    KeyEvent,
)
from gateway.codes.keyboard.layouts import Chord, get_layout
from gateway.codes.keyboard.typist import CONTROL_OF, US_LAYOUT

Separators = Literal[
    "ctrl_layout", "ctrl_us", "alt_keypad", "function_key", "substitute", "dropped"
]
SEPARATOR_STYLES: tuple[Separators, ...] = get_args(Separators)

# Control character → the printable character whose Ctrl chord types it (the first listed wins).
_CONTROL_BASE: dict[str, str] = {
    control: printable for printable, control in reversed(CONTROL_OF.items()) if len(printable) == 1
}


class CannotType(ValueError):
    """The layout (or the chosen separator style) has no way to type a character of the text."""


class _Keys:
    """Accumulates press/release events at a steady pace."""

    def __init__(self, start: float, interval: float, syn_reports: bool) -> None:
        self.events: list[KeyEvent] = []
        self._time = start
        self._interval = interval
        self._syn = syn_reports

    def send(self, code: int, value: int) -> None:
        self.events.append(KeyEvent.key(code, value, self._time))
        if self._syn:
            self.events.append(KeyEvent(EV_SYN, SYN_REPORT, 0, self._time))
        self._time += self._interval

    def tap(self, code: int, held: tuple[int, ...] = ()) -> None:
        for modifier in held:
            self.send(modifier, KEY_PRESSED)
        self.send(code, KEY_PRESSED)
        self.send(code, KEY_RELEASED)
        for modifier in reversed(held):
            self.send(modifier, KEY_RELEASED)


def _held(chord: Chord, *extra: int) -> tuple[int, ...]:
    return (
        *extra,
        *((KEY_LEFTSHIFT,) if chord.shift else ()),
        *((KEY_RIGHTALT,) if chord.altgr else ()),
    )


def emulate(
    text: str,
    layout: str,
    *,
    separators: Separators = "ctrl_us",
    keypad_digits: bool = False,
    caps_lock: bool = False,
    function_keys: Mapping[int, str] | None = None,
    substitutes: Mapping[str, str] | None = None,
    suffix: int | None = KEY_ENTER,
    start: float = 0.0,
    interval: float = 0.001,
    syn_reports: bool = True,
) -> list[KeyEvent]:
    """The events a scanner set to ``layout`` sends to type ``text`` (then ``suffix`` unless None).

    ``caps_lock``: the scanner turns its Caps Lock on first (and off again at the end) and
    types letters with Shift inverted, like Honeywell's "Caps Lock" keyboard style.
    ``syn_reports``: follow every key event with ``EV_SYN/SYN_REPORT`` as the kernel does.
    Raises :class:`CannotType` naming the character when the layout cannot type it.
    """
    if separators not in SEPARATOR_STYLES:
        raise ValueError(
            f"unknown separator style {separators!r}; choose one of: {', '.join(SEPARATOR_STYLES)}"
        )
    chords = get_layout(layout).chords(caps_lock)
    keys = _Keys(start, interval, syn_reports)
    by_char = {char: code for code, char in (function_keys or {}).items()}
    if caps_lock:
        keys.tap(KEY_CAPSLOCK)
    for char in text:
        if char in CONTROL_CHARACTERS:
            _type_control(
                keys, char, layout, separators, chords, caps_lock, by_char, substitutes or {GS: "$"}
            )
        elif keypad_digits and char in DIGIT_KEYPAD_KEYS:
            keys.tap(DIGIT_KEYPAD_KEYS[char])
        else:
            chord = _chord(chords, char, layout)
            keys.tap(chord.code, _held(chord))
    if caps_lock:
        keys.tap(KEY_CAPSLOCK)
    if suffix is not None:
        keys.tap(suffix)
    return keys.events


def _chord(chords: Mapping[str, Chord], char: str, layout: str) -> Chord:
    found = chords.get(char)
    if found is None:
        raise CannotType(f"layout {layout!r} cannot type {char!r}")
    return found


def _type_control(
    keys: _Keys,
    char: str,
    layout: str,
    separators: Separators,
    chords: Mapping[str, Chord],
    caps_lock: bool,
    function_keys: Mapping[str, int],
    substitutes: Mapping[str, str],
) -> None:
    name = f"control character 0x{ord(char):02X}"
    if separators in ("ctrl_layout", "ctrl_us"):
        position = (
            chords if separators == "ctrl_layout" else get_layout(US_LAYOUT).chords(caps_lock)
        )
        base = _CONTROL_BASE[char]
        chord = position.get(base) or position.get("dead_circumflex" if base == "^" else base)
        if chord is None:
            raise CannotType(
                f"layout {layout!r} has no key for {base!r}, so Ctrl+{base} cannot send {name}"
            )
        keys.tap(chord.code, _held(chord, KEY_LEFTCTRL))
    elif separators == "alt_keypad":
        keys.send(KEY_LEFTALT, KEY_PRESSED)
        for digit in f"0{ord(char):03d}":
            keys.tap(DIGIT_KEYPAD_KEYS[digit])
        keys.send(KEY_LEFTALT, KEY_RELEASED)
    elif separators == "function_key":
        if char not in function_keys:
            raise CannotType(f"no function key is assigned to {name}")
        keys.tap(function_keys[char])
    elif separators == "substitute":
        if char not in substitutes:
            raise CannotType(f"no substitute character is assigned to {name}")
        chord = _chord(chords, substitutes[char], layout)
        keys.tap(chord.code, _held(chord))
    # "dropped": the scanner sends nothing
