"""Hand-built key-event streams for the keyboard tests (chords the emulator never sends)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.codes.keyboard import KeyboardSettings, KeyEvent, KeyTrace, ScanSplitter, type_trace

KEY_D, KEY_A, KEY_E, KEY_8, KEY_TAB = 32, 30, 18, 9, 15
KEY_BACKSLASH, KEY_RIGHTBRACE, KEY_LEFTBRACE, KEY_MINUS, KEY_F11 = 43, 27, 26, 12, 87
KP = {d: c for d, c in zip("0123456789", (82, 79, 80, 81, 75, 76, 77, 71, 72, 73), strict=True)}


def chord(code: int, *held: int, time: float = 0.0) -> list[KeyEvent]:
    """Hold ``held`` (in order), tap ``code``, release ``held`` (reversed); 1 ms apart."""
    sequence = [*((m, 1) for m in held), (code, 1), (code, 0), *((m, 0) for m in reversed(held))]
    return [KeyEvent.key(c, v, time + i / 1000) for i, (c, v) in enumerate(sequence)]


def scans(events: Iterable[KeyEvent], settings: KeyboardSettings | None = None) -> list[KeyTrace]:
    """Every scan the events complete, then whatever a flush ends."""
    splitter = ScanSplitter(settings or KeyboardSettings(gap_ms=None))
    found = [t for t in map(splitter.feed, events) if t is not None]
    last = splitter.flush()
    return found + ([last] if last else [])


def typed(events: Iterable[KeyEvent], layout: str, settings: KeyboardSettings | None = None) -> str:
    return "".join(type_trace(t, layout).text for t in scans(events, settings))
