"""A :class:`KeyTrace` typed under one scanner layout → text, every keystroke accounted for.

Rules (reference ``scanners.md`` §2.3, §3.4):

- Shift and the scanner's own Caps Lock choose the level as the xkb tables say; AltGr is Right
  Alt where the layout has a Level 3 (in ``us`` Right Alt is plain Alt).
- Ctrl + a key types a control character when the key, at the level held, types ``]`` (GS),
  ``^`` or a dead circumflex (RS), ``d``/``D`` (EOT), ``\\`` (FS) or ``_`` (US) in the scanner
  layout; otherwise when it is the US position of one of those (so Ctrl+``KEY_RIGHTBRACE`` is
  GS for every layout, the Linux trap of §3.3; Ctrl(+Shift)+``KEY_6`` is RS).
- Alt+keypad codes and configured function keys were resolved by the splitter.
- Anything else that types no character (a dead key, an unknown key, Alt+key, any other Ctrl
  chord) becomes ``"\\0"`` in the text and is named in ``unmapped``, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from gateway.codes.keyboard.events import EOT, FS, GS, RS, US
from gateway.codes.keyboard.layouts import Layout, get_layout, is_dead
from gateway.codes.keyboard.splitter import UNMAPPED, KeyStroke, KeyTrace, Modifier

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


def _control(layout: Layout, stroke: KeyStroke, shift: bool, altgr: bool, caps: bool) -> str:
    typed = layout.output(stroke.code, shift, altgr, caps)
    if typed is not None and typed in CONTROL_OF:
        return CONTROL_OF[typed]
    return _us_controls().get(stroke.code, UNMAPPED)


def type_trace(trace: KeyTrace, layout: str) -> TypedText:
    """Type ``trace`` as a scanner set to keyboard country ``layout`` meant it."""
    table = get_layout(layout)
    chars: list[str] = []
    unmapped: list[str] = []
    for stroke in trace.strokes:
        modifiers = stroke.modifiers
        if stroke.fixed is not None:
            typed: str | None = stroke.fixed
        else:
            right_alt = bool(modifiers & Modifier.RIGHT_ALT)
            altgr = right_alt and table.altgr
            shift = bool(modifiers & Modifier.SHIFT)
            caps = bool(modifiers & Modifier.CAPS_LOCK)
            if modifiers & Modifier.ALT or (right_alt and not table.altgr):
                typed = UNMAPPED
            elif modifiers & Modifier.CTRL:
                typed = _control(table, stroke, shift, altgr, caps)
            else:
                typed = table.output(stroke.code, shift, altgr, caps)
        if typed is None or typed == UNMAPPED or is_dead(typed):
            unmapped.append(
                stroke.describe(table.altgr) + (f" ({typed})" if typed and is_dead(typed) else "")
            )
            typed = UNMAPPED
        chars.append(typed)
    return TypedText("".join(chars), tuple(unmapped))
