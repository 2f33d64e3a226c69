"""Scanner keyboard layouts: the committed xkb-derived tables (``layouts.json``) as lookups.

The tables are produced by :mod:`gateway.codes.keyboard.generate` (see its docstring for why
at build time); this module reads them once, on import, and answers "what does key
*K* type with these modifiers" and the reverse "which chord types character *c*".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# Where the character of a level lives in a row of the table.
SHIFT_LEVEL, ALTGR_LEVEL = 1, 2


@cache
def _tables() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("layouts.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def table_source() -> dict[str, str]:
    """Rules, model and Debian package versions the committed tables were generated with."""
    return dict(_tables()["source"])


LAYOUTS: tuple[str, ...] = tuple(_tables()["layouts"])


def key_name(code: int) -> str:
    """``KEY_A`` for 30; unknown codes as ``KEY_<number>``."""
    name: str | None = _tables()["key_names"].get(str(code))
    return name or f"KEY_{code}"


def is_dead(output: str) -> bool:
    """A table entry that is a dead-key marker (``dead_acute``) rather than a character."""
    return len(output) > 1 and output.startswith("dead_")


Row = tuple[str | None, str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Chord:
    """How to type one character: a key and the modifiers to hold."""

    code: int
    shift: bool
    altgr: bool


@dataclass(frozen=True, eq=False)
class Layout:
    """One scanner keyboard country: per key, what the four levels type (with and without Caps Lock)."""

    name: str
    altgr: bool  # Right Alt is AltGr (Level 3); false for ``us``, where it is plain Alt
    rows: dict[int, Row]
    caps_rows: dict[int, Row]  # only the keys Caps Lock changes

    def output(self, code: int, shift: object, altgr: object, caps: object = False) -> str | None:
        """The character (or ``dead_*`` marker) key ``code`` types, or None when it types nothing.

        ``shift``/``altgr``/``caps`` are truth values (modifier bits are accepted as they are)."""
        row = self.caps_rows.get(code) if caps else None
        if row is None:
            row = self.rows.get(code)
        if row is None:
            return None
        return row[(SHIFT_LEVEL if shift else 0) + (ALTGR_LEVEL if altgr and self.altgr else 0)]

    def chords(self, caps: bool = False) -> dict[str, Chord]:
        """Character → the chord that types it, preferring the lowest modifier level.

        Order of preference: no AltGr, then any key but ``KEY_102ND`` (xkb ``us`` puts
        ``<``/``>`` there, Windows US does not; FR and DE need it), then the lowest level.
        Keypad keys are never chosen (a scanner types digits on the main row unless told
        otherwise).
        """
        return _reverse(self, caps)


@cache
def _reverse(layout: Layout, caps: bool) -> dict[str, Chord]:
    candidates: list[tuple[bool, bool, int, int, str]] = []
    for code in layout.rows:
        if key_name(code).startswith("KEY_KP"):
            continue
        for level in range(4 if layout.altgr else 2):
            shift, altgr = bool(level & SHIFT_LEVEL), bool(level & ALTGR_LEVEL)
            typed = layout.output(code, shift, altgr, caps)
            if typed is not None:
                candidates.append((altgr, key_name(code) == "KEY_102ND", level, code, typed))
    chosen: dict[str, Chord] = {}
    for _, _, level, code, typed in sorted(candidates):
        chosen.setdefault(typed, Chord(code, bool(level & SHIFT_LEVEL), bool(level & ALTGR_LEVEL)))
    return chosen


def _row(entries: list[str | None]) -> Row:
    return (entries[0], entries[1], entries[2], entries[3])


@cache
def get_layout(name: str) -> Layout:
    """The layout called ``name`` (one of :data:`LAYOUTS`); ValueError naming the choices otherwise."""
    found = _tables()["layouts"].get(name)
    if found is None:
        raise ValueError(f"unknown keyboard layout {name!r}; choose one of: {', '.join(LAYOUTS)}")
    return Layout(
        name=name,
        altgr=bool(found["altgr"]),
        rows={int(code): _row(row) for code, row in found["keys"].items()},
        caps_rows={int(code): _row(row) for code, row in found["caps_lock"].items()},
    )


__all__ = ["LAYOUTS", "Chord", "Layout", "get_layout", "is_dead", "key_name", "table_source"]
