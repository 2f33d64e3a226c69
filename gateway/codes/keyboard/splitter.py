"""Key events of one scanner → one :class:`KeyTrace` per scan (a pure state machine, injected time).

The splitter is layout-independent: it records every key-down with the modifiers held at that
moment, so the same trace can be typed under any layout (layout auto-detection does exactly
that). What it decides itself is what does not depend on the layout: where a scan ends (suffix
key, inter-key gap, explicit flush), Alt+keypad decimal codes, the configured function/cursor
keys, the scanner's own Caps Lock state, and the bounds (a stuck key cannot grow memory).

Time is whatever the caller's events carry (``KeyEvent.time``); :meth:`ScanSplitter.poll`
takes the current time from the capture layer, so tests drive the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from gateway.codes.keyboard.events import (
    CONTROL_CHARACTERS,
    EV_KEY,
    EV_SYN,
    KEY_CAPSLOCK,
    KEY_ENTER,
    KEY_KPENTER,
    KEY_LEFTALT,
    KEY_LEFTCTRL,
    KEY_LEFTSHIFT,
    KEY_NUMLOCK,
    KEY_PRESSED,
    KEY_RELEASED,
    KEY_RIGHTALT,
    KEY_RIGHTCTRL,
    KEY_RIGHTSHIFT,
    KEY_SCROLLLOCK,
    KEYPAD_DIGITS,
    SYN_DROPPED,
    SYN_REPORT,
    KeyEvent,
)
from gateway.codes.keyboard.layouts import LAYOUTS, key_name

AUTO_LAYOUT = "auto"
MAX_ALT_DIGITS = 4  # "0255" is the longest meaningful Alt+keypad code
UNMAPPED = "\0"


class Modifier:
    """Bits of ``KeyStroke.modifiers``: the state held with each key-down (Left/Right merged
    where they mean the same). Plain ints, not an ``IntFlag``: they are combined per event."""

    NONE: Final = 0
    SHIFT: Final = 1
    CTRL: Final = 2
    ALT: Final = 4  # Left Alt
    RIGHT_ALT: Final = 8  # AltGr in most layouts, plain Alt in ``us``
    CAPS_LOCK: Final = 16  # the scanner's own Caps Lock, toggled by the Caps Lock keys it sends


# Held-modifier keys → the modifier they hold.
_MODIFIER_KEYS: dict[int, int] = {
    KEY_LEFTSHIFT: Modifier.SHIFT,
    KEY_RIGHTSHIFT: Modifier.SHIFT,
    KEY_LEFTCTRL: Modifier.CTRL,
    KEY_RIGHTCTRL: Modifier.CTRL,
    KEY_LEFTALT: Modifier.ALT,
    KEY_RIGHTALT: Modifier.RIGHT_ALT,
}
MODIFIER_KEYS = frozenset(_MODIFIER_KEYS) | {KEY_CAPSLOCK, KEY_NUMLOCK, KEY_SCROLLLOCK}

EndedBy = Literal["suffix", "gap", "flush"]


@dataclass(frozen=True, slots=True)
class KeyboardSettings:
    """How one keyboard-wedge scanner is configured.

    ``gap_ms``: a scan also ends after this much silence (for scanners without a suffix);
    None turns the gap off. ``function_keys``: key code → control character it stands for
    (e.g. ``{KEY_F12: GS}`` or the ValueTeam cursor table :data:`CURSOR_KEY_SEPARATORS`).
    ``max_scan_keys``: key-downs kept per scan; a stuck key or a storm beyond it marks the
    trace ``truncated``. ``caps_lock``: the scanner's Caps Lock state before it sends any Caps
    Lock key (true for scanners configured for a keyboard style that assumes Caps Lock on).
    """

    layout: str = "us"
    suffix_keys: frozenset[int] = frozenset({KEY_ENTER, KEY_KPENTER})
    gap_ms: int | None = 100
    function_keys: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    max_scan_keys: int = 1024
    caps_lock: bool = False

    def __post_init__(self) -> None:
        if self.layout != AUTO_LAYOUT and self.layout not in LAYOUTS:
            raise ValueError(
                f"unknown keyboard layout {self.layout!r}; choose 'auto' or one of: {', '.join(LAYOUTS)}"
            )
        if self.gap_ms is not None and self.gap_ms <= 0:
            raise ValueError(
                f"gap_ms must be a positive number of milliseconds or None, not {self.gap_ms}"
            )
        if self.max_scan_keys < 1:
            raise ValueError(f"max_scan_keys must be at least 1, not {self.max_scan_keys}")
        for code, char in self.function_keys.items():
            if char not in CONTROL_CHARACTERS:
                raise ValueError(
                    f"function key {key_name(code)} must map to GS, RS, EOT, FS or US, not {char!r}"
                )
        object.__setattr__(self, "suffix_keys", frozenset(self.suffix_keys))
        object.__setattr__(self, "function_keys", MappingProxyType(dict(self.function_keys)))


@dataclass(frozen=True, slots=True)
class KeyStroke:
    """One key-down and the modifiers held with it.

    ``fixed`` is set when the character does not depend on the layout: a configured function
    key, or an Alt+keypad code (``code`` is then ``KEY_LEFTALT`` and ``alt_digits`` the digits
    typed); ``"\\0"`` when that code maps to no character.
    """

    code: int
    modifiers: int  # Modifier bits
    time: float
    fixed: str | None = None
    alt_digits: str = ""

    def describe(self, altgr: bool = True) -> str:
        """``Ctrl+Shift+KEY_D``; ``altgr`` says whether Right Alt is AltGr in the layout used."""
        if self.alt_digits:
            return f"Alt+keypad {self.alt_digits}"
        names = [
            name
            for flag, name in (
                (Modifier.CTRL, "Ctrl"),
                (Modifier.ALT, "Alt"),
                (Modifier.RIGHT_ALT, "AltGr" if altgr else "RightAlt"),
                (Modifier.SHIFT, "Shift"),
            )
            if self.modifiers & flag
        ]
        return "+".join([*names, key_name(self.code)])


@dataclass(frozen=True, slots=True)
class KeyTrace:
    """The key-downs of one scan, enough to type it again under any layout.

    ``interrupted``: the kernel dropped events (``SYN_DROPPED``) during this scan, so its keys
    were discarded. ``truncated``: more than ``max_scan_keys`` key-downs arrived; the extra
    ones (``keys_discarded``) were not kept.
    """

    strokes: tuple[KeyStroke, ...]
    ended_by: EndedBy
    interrupted: bool = False
    truncated: bool = False
    keys_discarded: int = 0


class ScanSplitter:
    """Assembles the key events of one device into scans. Feed events in order; see the module doc."""

    def __init__(self, settings: KeyboardSettings | None = None) -> None:
        self.settings = settings or KeyboardSettings()
        self._gap = None if self.settings.gap_ms is None else self.settings.gap_ms / 1000.0
        self._held: dict[int, int] = {}
        self._modifiers = Modifier.NONE
        self._caps_lock = self.settings.caps_lock
        self._strokes: list[KeyStroke] = []
        self._alt_digits = ""
        self._alt_time = 0.0
        self._discarded = 0
        self._truncated = False
        self._interrupted = False
        self._resyncing = False  # after SYN_DROPPED: ignore events up to the next SYN_REPORT
        self._last_time: float | None = None  # time of the last key event of the scan in progress

    @property
    def caps_lock(self) -> bool:
        """The scanner's own Caps Lock state (toggled by the Caps Lock key-downs it sent)."""
        return self._caps_lock

    def feed(self, event: KeyEvent) -> KeyTrace | None:
        """Take one event; returns the scan it completed, if any."""
        return self.feed_fields(event.type, event.code, event.value, event.time)

    def feed_fields(self, kind: int, code: int, value: int, time: float) -> KeyTrace | None:
        """:meth:`feed` with the event's type, code, value and time (seconds) as they are: the
        evdev reader's per-event path, which builds no :class:`KeyEvent`."""
        if kind != EV_KEY:
            if kind == EV_SYN:
                if code == SYN_DROPPED:
                    self._drop(time)
                elif code == SYN_REPORT:
                    self._resyncing = False
            return None
        if self._resyncing or (value != KEY_PRESSED and value != KEY_RELEASED):
            return None
        ended = None
        if self._last_time is not None:  # a scan is in progress
            if self._gap is not None and time - self._last_time > self._gap:
                ended = self._finish("gap")
            else:
                self._last_time = time
        pressed = value == KEY_PRESSED
        if code in _MODIFIER_KEYS:
            self._modifier(code, pressed, time)
        elif not pressed:
            pass
        elif code == KEY_CAPSLOCK:
            self._caps_lock = not self._caps_lock
        elif code in (KEY_NUMLOCK, KEY_SCROLLLOCK):
            pass  # lock keys type nothing; keypad digits are read as digits regardless
        elif code in self.settings.suffix_keys:
            return ended or self._finish("suffix")
        else:
            self._key_down(code, time)
        return ended

    def poll(self, now: float) -> KeyTrace | None:
        """End the scan in progress if the inter-key gap has elapsed by ``now``."""
        if self._gap is None or self._last_time is None or now - self._last_time <= self._gap:
            return None
        return self._finish("gap")

    def flush(self) -> KeyTrace | None:
        """End the scan in progress now (device removed, shutdown, end of a recorded stream)."""
        return self._finish("flush")

    def _current(self) -> int:
        return self._modifiers | Modifier.CAPS_LOCK if self._caps_lock else self._modifiers

    def _modifier(self, code: int, pressed: bool, time: float) -> None:
        if pressed:
            self._held[code] = _MODIFIER_KEYS[code]
        else:
            self._held.pop(code, None)
            if code == KEY_LEFTALT and self._alt_digits:
                self._alt_code(time)
        modifiers = Modifier.NONE
        for held in self._held.values():
            modifiers |= held
        self._modifiers = modifiers

    def _key_down(self, code: int, time: float) -> None:
        modifiers = self._current()
        if self._last_time is None:
            self._last_time = time
        if code in KEYPAD_DIGITS and modifiers & Modifier.ALT:
            if len(self._alt_digits) < MAX_ALT_DIGITS + 1:  # one extra digit marks the code invalid
                self._alt_digits += KEYPAD_DIGITS[code]
                self._alt_time = time
            return
        fixed = self.settings.function_keys.get(code)
        if fixed is not None and modifiers & (Modifier.CTRL | Modifier.ALT):
            fixed = None  # a chord with a function key is not the configured separator
        self._append(KeyStroke(code, modifiers, time, fixed))

    def _alt_code(self, time: float) -> None:
        digits, self._alt_digits = self._alt_digits, ""
        self._append(
            KeyStroke(KEY_LEFTALT, Modifier.ALT, self._alt_time, alt_character(digits), digits)
        )

    def _append(self, stroke: KeyStroke) -> None:
        if self._interrupted or len(self._strokes) >= self.settings.max_scan_keys:
            self._discarded += 1
            self._truncated = self._truncated or not self._interrupted
            return
        self._strokes.append(stroke)

    def _drop(self, time: float) -> None:
        """The kernel lost events: this scan cannot be trusted, whatever arrives before it ends."""
        self._discarded += len(self._strokes)
        self._strokes.clear()
        self._alt_digits = ""
        self._held.clear()
        self._modifiers = Modifier.NONE
        self._interrupted = True
        self._resyncing = True
        self._last_time = time

    def _finish(self, ended_by: EndedBy) -> KeyTrace | None:
        if self._alt_digits:
            self._alt_code(self._alt_time)
        trace = None
        if self._strokes or self._interrupted or self._truncated:
            trace = KeyTrace(
                tuple(self._strokes), ended_by, self._interrupted, self._truncated, self._discarded
            )
        self._strokes = []
        self._discarded = 0
        self._truncated = self._interrupted = False
        self._last_time = None
        return trace


def alt_character(digits: str) -> str:
    """The character of an Alt+keypad decimal code: leading 0 = Windows ANSI (CP1252), else OEM (CP437).

    Both agree with ASCII below 0x80. Codes that name no character (0, above 255, bytes CP1252
    leaves undefined) give ``"\\0"`` so the keystroke is reported, never dropped.
    """
    value = int(digits) if digits and len(digits) <= MAX_ALT_DIGITS else 0
    if not 0 < value <= 0xFF:
        return UNMAPPED
    if value < 0x80:
        return chr(value)
    try:
        return bytes([value]).decode("cp1252" if digits.startswith("0") else "cp437")
    except UnicodeDecodeError:
        return UNMAPPED
