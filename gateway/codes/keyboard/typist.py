"""A :class:`KeyTrace` typed under one scanner layout → text, every keystroke accounted for.

Rules:

- Shift and the scanner's own Caps Lock choose the level as the xkb tables say; AltGr is Right
  Alt where the layout has a Level 3 (in ``us`` Right Alt is plain Alt).
- Ctrl + a key types a control character when the key, at the level held, types ``]`` (GS),
  ``^`` or a dead circumflex (RS), ``d``/``D`` (EOT), ``\\`` (FS) or ``_`` (US) in the scanner
  layout; otherwise when it is the US position of one of those (so Ctrl+``KEY_RIGHTBRACE`` is
  GS for every layout, although xkb ``fr``/``de`` type ``$``/``+`` for it; Ctrl(+Shift)+``KEY_6``
  is RS). The layout position wins where the two disagree: that happens only with Shift held
  (Ctrl+Shift+``KEY_RIGHTBRACE`` is RS in dk/se/fi/no, where Shift+that key is the dead
  circumflex).
- Alt+keypad codes and configured function keys were resolved by the splitter.
- Anything else that types no character (a dead key, an unknown key, Alt+key, any other Ctrl
  chord) becomes ``"\\0"`` in the text and is named in ``unmapped``, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from gateway.codes.keyboard.events import EOT, FS, GS, RS, US
from gateway.codes.keyboard.layouts import Layout, get_layout, is_dead
from gateway.codes.keyboard.splitter import UNMAPPED, KeyTrace, Modifier

# Character (at the level held) → the control character Ctrl with that key types.
CONTROL_OF: dict[str, str] = {
    "]": GS,
    "^": RS,
    "dead_circumflex": RS,
    "d": EOT,
    "D": EOT,
    "\\": FS,
    "_": US,
}
US_LAYOUT = "us"
SHIFT, RIGHT_ALT, CAPS, ALT = Modifier.SHIFT, Modifier.RIGHT_ALT, Modifier.CAPS_LOCK, Modifier.ALT
_CHORD = Modifier.CTRL | Modifier.ALT | Modifier.RIGHT_ALT  # needs more than a table lookup


@dataclass(frozen=True, slots=True)
class TypedText:
    """What a trace types: ``text`` (``"\\0"`` per unmapped keystroke) and the unmapped chords, in order."""

    text: str
    unmapped: tuple[str, ...] = ()


@cache
def _us_controls() -> dict[int, str]:
    """Key code → control character for Ctrl + the US position of ``] ^ d \\ _`` (Shift ignored)."""
    us = get_layout(US_LAYOUT)
    found: dict[int, str] = {}
    for code in us.rows:
        for shift in (False, True):
            typed = us.output(code, shift, False)
            if typed in CONTROL_OF:
                found.setdefault(code, CONTROL_OF[typed])
    return found


def _control(layout: Layout, code: int, modifiers: int) -> str:
    typed = layout.output(code, modifiers & SHIFT, modifiers & RIGHT_ALT, modifiers & CAPS)
    if typed is not None and typed in CONTROL_OF:
        return CONTROL_OF[typed]
    return _us_controls().get(code, UNMAPPED)


def type_trace(trace: KeyTrace, layout: str) -> TypedText:
    """Type ``trace`` as a scanner set to keyboard country ``layout`` meant it.

    Contract (``gateway.codes.layout_typing`` relies on it): each keystroke is typed on its own,
    no state carries from one to the next (dead keys are reported, not composed), so the result
    is the concatenation of what each stroke types alone.
    """
    table = get_layout(layout)
    chars: list[str] = []
    unmapped: list[str] = []
    altgr_layout = table.altgr
    for stroke in trace.strokes:
        modifiers = stroke.modifiers
        chord = modifiers & _CHORD
        if stroke.fixed is not None:
            typed: str | None = stroke.fixed
        elif not chord or (chord == RIGHT_ALT and altgr_layout):
            typed = table.output(stroke.code, modifiers & SHIFT, chord, modifiers & CAPS)
        elif chord & ALT or (chord & RIGHT_ALT and not altgr_layout):
            typed = UNMAPPED
        else:  # Ctrl, possibly with Shift or AltGr
            typed = _control(table, stroke.code, modifiers)
        if typed is None or len(typed) != 1 or typed == UNMAPPED:
            unmapped.append(
                stroke.describe(table.altgr) + (f" ({typed})" if typed and is_dead(typed) else "")
            )
            typed = UNMAPPED
        chars.append(typed)
    return TypedText("".join(chars), tuple(unmapped))
