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


class _Remembered:
    """What each keystroke already met types under one layout: its character and, when it
    types none, the chord as ``type_trace`` names it."""

    def __init__(self, layout: str) -> None:
        self.layout = layout
        self.text: dict[_StrokeKey, str] = {}
        self.unmapped: dict[_StrokeKey, tuple[str, ...]] = {}

    def learn(self, keys: list[_StrokeKey]) -> None:
        if len(self.text) + len(keys) > _MAX_REMEMBERED:
            self.text.clear()
            self.unmapped.clear()
        for key in keys:
            if key not in self.text:
                code, modifiers, fixed, alt_digits = key
                stroke = KeyStroke(code, modifiers, 0.0, fixed, alt_digits)
                typed = type_trace(KeyTrace((stroke,), "flush"), self.layout)
                self.text[key] = typed.text
                self.unmapped[key] = typed.unmapped


_remembered: dict[str, _Remembered] = {}


def type_under(
    trace: KeyTrace, layouts: tuple[str, ...], alphabet: frozenset[str] | None = None
) -> dict[str, TypedText]:
    """What ``trace`` types under each of ``layouts`` (same result as ``type_trace`` for each).

    With ``alphabet``, layouts under which a keystroke types a character outside it are left
    out (checked on the distinct keystrokes, before any text is built).
    """
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
        remembered = _remembered.get(layout) or _remembered.setdefault(layout, _Remembered(layout))
        try:
            signature = tuple(map(remembered.text.__getitem__, keys))
        except KeyError:
            remembered.learn(keys)
            signature = tuple(map(remembered.text.__getitem__, keys))
        if alphabet is not None and not alphabet.issuperset(signature):
            continue
        typed = shared.get(signature)
        if typed is None:
            text = "".join(map(signature.__getitem__, order))
            if UNMAPPED in text:  # unmapped chords are named per layout: such texts are not shared
                unmapped = remembered.unmapped
                typed = TypedText(
                    text, tuple(chord for index in order for chord in unmapped[keys[index]])
                )
            else:
                typed = shared[signature] = TypedText(text)
        typed_by_layout[layout] = typed
    return typed_by_layout
