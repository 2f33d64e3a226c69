"""One keyboard-wedge trace typed under many layouts at once, fast enough for layout ``auto``.

:func:`gateway.codes.keyboard.type_trace` types each keystroke on its own (no state carries from
one stroke to the next: dead keys are reported, not composed), so a scan's text under a layout
is the concatenation of what each distinct keystroke types. A scan of ~45 keys holds ~20
distinct keystrokes, and a scanner sends the same few hundred over its life: each
(layout, keystroke) is typed once through ``type_trace`` and remembered, and layouts whose
keystrokes all type alike share one text. ``tests/codes/test_layout_typing.py`` checks the
result equals ``type_trace`` on the whole trace.
"""

from __future__ import annotations

from gateway.codes.keyboard import KeyStroke, KeyTrace, TypedText, type_trace
from gateway.codes.keyboard.splitter import UNMAPPED

_StrokeKey = tuple[int, int, str | None, str]
_MAX_REMEMBERED = 1 << 14  # keystrokes per layout; a storm of odd chords cannot grow memory

_typed_strokes: dict[str, dict[_StrokeKey, TypedText]] = {}


def _type_stroke(layout: str, key: _StrokeKey) -> TypedText:
    remembered = _typed_strokes.setdefault(layout, {})
    if len(remembered) >= _MAX_REMEMBERED:
        remembered.clear()
    code, modifiers, fixed, alt_digits = key
    stroke = KeyStroke(code, modifiers, 0.0, fixed, alt_digits)
    typed = remembered[key] = type_trace(KeyTrace((stroke,), "flush"), layout)
    return typed


def type_under(trace: KeyTrace, layouts: tuple[str, ...]) -> dict[str, TypedText]:
    """What ``trace`` types under each of ``layouts`` (same result as ``type_trace`` for each)."""
    distinct: dict[_StrokeKey, int] = {}
    order = [
        distinct.setdefault(
            (stroke.code, stroke.modifiers, stroke.fixed, stroke.alt_digits), len(distinct)
        )
        for stroke in trace.strokes
    ]
    keys = list(distinct)
    shared: dict[tuple[str, ...], TypedText] = {}
    typed_by_layout = {}
    for layout in layouts:
        remembered = _typed_strokes.get(layout, {})
        strokes = [remembered.get(key) or _type_stroke(layout, key) for key in keys]
        signature = tuple([typed.text for typed in strokes])
        typed = shared.get(signature)
        if typed is None:
            text = "".join([signature[index] for index in order])
            if UNMAPPED in text:  # unmapped chords are named per layout: such texts are not shared
                unmapped = tuple(chord for index in order for chord in strokes[index].unmapped)
                typed = TypedText(text, unmapped)
            else:
                typed = shared[signature] = TypedText(text)
        typed_by_layout[layout] = typed
    return typed_by_layout
