"""type_under (the memoised many-layout typing used by layout auto) equals type_trace exactly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.codes.keyboard import LAYOUTS, KeyStroke, KeyTrace, Modifier, type_trace
from gateway.codes.layout_typing import type_under

# Main-block keys, keypad digits, a few function keys and codes no layout knows.
_CODES = st.sampled_from([*range(2, 58), *range(71, 84), 86, 87, 88, 100, 103, 108, 0x2FE])
_MODIFIERS = st.sampled_from(
    [
        Modifier.NONE,
        Modifier.SHIFT,
        Modifier.CTRL,
        Modifier.RIGHT_ALT,
        Modifier.SHIFT | Modifier.RIGHT_ALT,
        Modifier.CTRL | Modifier.SHIFT,
        Modifier.ALT,
        Modifier.CAPS_LOCK,
        Modifier.CAPS_LOCK | Modifier.SHIFT,
    ]
)
_STROKES = st.builds(
    KeyStroke,
    code=_CODES,
    modifiers=_MODIFIERS,
    time=st.floats(0, 1),
    fixed=st.none() | st.sampled_from(["\x1d", "\x1e", "\0"]),
)
_TRACES = st.builds(
    KeyTrace, strokes=st.lists(_STROKES, max_size=40).map(tuple), ended_by=st.just("suffix")
)


@given(_TRACES)
def test_typing_under_many_layouts_equals_typing_each(trace: KeyTrace) -> None:
    typed = type_under(trace, LAYOUTS)
    assert list(typed) == list(LAYOUTS)
    for layout in LAYOUTS:
        assert typed[layout] == type_trace(trace, layout), layout


@given(_TRACES)
def test_an_alphabet_leaves_out_exactly_the_layouts_typing_other_characters(
    trace: KeyTrace,
) -> None:
    alphabet = frozenset("0123456789ABCabc\x1d")
    kept = type_under(trace, LAYOUTS, alphabet)
    for layout in LAYOUTS:
        typed = type_trace(trace, layout)
        if alphabet.issuperset(typed.text):
            assert kept[layout] == typed
        else:
            assert layout not in kept
