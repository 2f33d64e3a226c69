"""Keyboard-wedge scanners: evdev key events → scans → text, under the scanner's own layout.

A wedge scanner types each character with the key positions of the keyboard country set in
its firmware; at evdev level no host keymap applies, so we invert the scanner's table. Pure
and I/O-free at run time: the layout tables are generated from xkb-data at build time
(:mod:`.generate`) and committed as ``layouts.json``.

Pipeline: :class:`KeyEvent` → :class:`ScanSplitter` (one per device) → :class:`KeyTrace`
(layout-independent) → :func:`type_trace` under a layout → :class:`TypedText`.
:func:`emulate` is the inverse, a virtual scanner.
"""

from gateway.codes.keyboard.emulator import SEPARATOR_STYLES, CannotType, Separators, emulate
from gateway.codes.keyboard.events import (
    CONTROL_CHARACTERS,
    CURSOR_KEY_SEPARATORS,
    EOT,
    FS,
    GS,
    RS,
    US,
    KeyEvent,
)
from gateway.codes.keyboard.layouts import LAYOUTS, key_name, table_source
from gateway.codes.keyboard.splitter import (
    AUTO_LAYOUT,
    KeyboardSettings,
    KeyStroke,
    KeyTrace,
    Modifier,
    ScanSplitter,
    alt_character,
)
from gateway.codes.keyboard.typist import TypedText, type_trace

__all__ = [
    "AUTO_LAYOUT",
    "CONTROL_CHARACTERS",
    "CURSOR_KEY_SEPARATORS",
    "EOT",
    "FS",
    "GS",
    "LAYOUTS",
    "RS",
    "SEPARATOR_STYLES",
    "US",
    "CannotType",
    "KeyEvent",
    "KeyStroke",
    "KeyTrace",
    "KeyboardSettings",
    "Modifier",
    "ScanSplitter",
    "Separators",
    "TypedText",
    "alt_character",
    "emulate",
    "key_name",
    "table_source",
    "type_trace",
]
