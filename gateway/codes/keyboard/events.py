"""Input events as the decoder sees them, and the few Linux key codes it gives meaning to.

The numbers are the kernel's ABI (``linux/input-event-codes.h``). ``evdev`` is never imported
here: :meth:`KeyEvent.from_evdev` is duck-typed, so the decoder runs where python-evdev is
absent (the ``decode`` command, tests, other platforms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

EV_SYN = 0x00
EV_KEY = 0x01
EV_MSC = 0x04
SYN_REPORT = 0
SYN_DROPPED = 3

KEY_RELEASED, KEY_PRESSED, KEY_REPEATED = 0, 1, 2

KEY_ESC = 1
KEY_6 = 7
KEY_ENTER = 28
KEY_LEFTCTRL = 29
KEY_LEFTSHIFT = 42
KEY_RIGHTSHIFT = 54
KEY_LEFTALT = 56
KEY_CAPSLOCK = 58
KEY_F12 = 88
KEY_NUMLOCK = 69
KEY_SCROLLLOCK = 70
KEY_KPENTER = 96
KEY_RIGHTCTRL = 97
KEY_RIGHTALT = 100
KEY_UP = 103
KEY_LEFT = 105
KEY_RIGHT = 106
KEY_DOWN = 108

# Keypad digit keys → the digit they stand for (Alt+keypad codes are read from these).
KEYPAD_DIGITS: dict[int, str] = {
    82: "0",
    79: "1",
    80: "2",
    81: "3",
    75: "4",
    76: "5",
    77: "6",
    71: "7",
    72: "8",
    73: "9",
}
DIGIT_KEYPAD_KEYS: dict[str, int] = {digit: code for code, digit in KEYPAD_DIGITS.items()}

GS, RS, EOT, FS, US = "\x1d", "\x1e", "\x04", "\x1c", "\x1f"
CONTROL_CHARACTERS = frozenset({GS, RS, EOT, FS, US})


class EvdevLikeEvent(Protocol):
    type: int
    code: int
    value: int

    def timestamp(self) -> float: ...


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """One input event: ``type``/``code``/``value`` as the kernel sends them, ``time`` in seconds."""

    type: int
    code: int
    value: int
    time: float = 0.0

    @classmethod
    def from_evdev(cls, event: EvdevLikeEvent) -> KeyEvent:
        """Convert an ``evdev.InputEvent`` (or anything with the same attributes)."""
        return cls(int(event.type), int(event.code), int(event.value), float(event.timestamp()))

    @classmethod
    def key(cls, code: int, value: int, time: float = 0.0) -> KeyEvent:
        return cls(EV_KEY, code, value, time)


# Hand Held Products ValueTeam "keyboard function code" table: a ready-made
# ``KeyboardSettings.function_keys`` for scanners that send separators as cursor keys.
CURSOR_KEY_SEPARATORS: dict[int, str] = {KEY_DOWN: GS, KEY_UP: FS, KEY_LEFT: RS, KEY_RIGHT: US}
