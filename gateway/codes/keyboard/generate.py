"""Build-time generator of the scanner keyboard-layout tables (``layouts.json``) from xkb-data.

Run ``python -m gateway.codes.keyboard.generate`` (``--check`` compares instead of writing).

Why build time and not run time: the decoder must give the same answer on every gateway, and
what a *scanner* types depends on the keyboard country in its firmware, not on the host's
xkb-data. Loading libxkbcommon at run time would tie decoding to whatever xkb-data version the
host happens to have (and to the library being present at all); committing the generated
tables makes decoding pure, reproducible, reviewable in diffs, and free of native
dependencies. The tables are still never hand-typed: this script derives them with
libxkbcommon (through ctypes) and records the library and xkb-data versions it used; a test
regenerates them and compares with the committed file.

For each layout and each evdev key 1–127 the script queries, with rules ``evdev``, model
``pc105``, xkb keycode = evdev code + 8 and Num Lock on (so keypad keys give digits): no
modifier, Shift, AltGr (Level3 = ``Mod5``), Shift+AltGr, and the same four with the scanner's
Caps Lock (``Lock``) active. A level holds the character typed, ``dead_<name>`` for a dead key
(a marker, never a character), or null. AltGr levels are recorded only when Right Alt is
``ISO_Level3_Shift`` in that layout (``us``: Right Alt is plain Alt).

Non-Latin layouts: scanners type pack codes (ASCII) on the Latin level. ``bg`` uses xkb's
``bg(latin)`` layout; ``gr`` has no Latin variant in xkb-data, so a Greek keyboard is built as
the usual dual keymap ``gr,us`` and the Latin group (the second) is read.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE_PATH = Path(__file__).with_name("layouts.json")
RULES = "evdev"
MODEL = "pc105"
FIRST_KEY, LAST_KEY = 1, 127
XKB_KEYCODE_OFFSET = 8
KEY_RIGHTALT = 100
ISO_LEVEL3_SHIFT = 0xFE03


@dataclass(frozen=True)
class LayoutSource:
    """Where one of our layout ids comes from in xkb-data."""

    layout: str
    variant: str = ""
    group: int = 0  # xkb layout index (group) holding the Latin level


# Our layout id → xkb layout. Ids follow xkb names (cz, si, gr, ee, at ...).
SOURCES: dict[str, LayoutSource] = {
    "us": LayoutSource("us"),
    "gb": LayoutSource("gb"),
    "ie": LayoutSource("ie"),
    "fr": LayoutSource("fr"),
    "be": LayoutSource("be"),
    "de": LayoutSource("de"),
    "at": LayoutSource("at"),
    "ch": LayoutSource("ch"),
    "ch_fr": LayoutSource("ch", "fr"),
    "it": LayoutSource("it"),
    "es": LayoutSource("es"),
    "pt": LayoutSource("pt"),
    "nl": LayoutSource("nl"),
    "dk": LayoutSource("dk"),
    "se": LayoutSource("se"),
    "fi": LayoutSource("fi"),
    "no": LayoutSource("no"),
    "pl": LayoutSource("pl"),
    "cz": LayoutSource("cz"),
    "sk": LayoutSource("sk"),
    "hu": LayoutSource("hu"),
    "si": LayoutSource("si"),
    "hr": LayoutSource("hr"),
    "ro": LayoutSource("ro"),
    "bg": LayoutSource("bg", "latin"),
    "gr": LayoutSource("gr,us", ",", 1),
    "lt": LayoutSource("lt"),
    "lv": LayoutSource("lv"),
    "ee": LayoutSource("ee"),
}


class XkbError(RuntimeError):
    """libxkbcommon or xkb-data is missing or refused a layout."""


class _RuleNames(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_char_p) for name in ("rules", "model", "layout", "variant", "options")
    ]


def load_libxkbcommon() -> ctypes.CDLL:
    name = ctypes.util.find_library("xkbcommon") or "libxkbcommon.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise XkbError(
            f"libxkbcommon is not installed ({exc}); install the Debian package libxkbcommon0"
        ) from exc
    lib.xkb_context_new.restype = ctypes.c_void_p
    lib.xkb_context_new.argtypes = [ctypes.c_int]
    lib.xkb_context_unref.argtypes = [ctypes.c_void_p]
    lib.xkb_keymap_new_from_names.restype = ctypes.c_void_p
    lib.xkb_keymap_new_from_names.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(_RuleNames),
        ctypes.c_int,
    ]
    lib.xkb_keymap_unref.argtypes = [ctypes.c_void_p]
    lib.xkb_keymap_mod_get_index.restype = ctypes.c_uint32
    lib.xkb_keymap_mod_get_index.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.xkb_state_new.restype = ctypes.c_void_p
    lib.xkb_state_new.argtypes = [ctypes.c_void_p]
    lib.xkb_state_unref.argtypes = [ctypes.c_void_p]
    lib.xkb_state_update_mask.restype = ctypes.c_int
    lib.xkb_state_update_mask.argtypes = [ctypes.c_void_p] + [ctypes.c_uint32] * 6
    lib.xkb_state_key_get_utf8.restype = ctypes.c_int
    lib.xkb_state_key_get_utf8.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    lib.xkb_state_key_get_one_sym.restype = ctypes.c_uint32
    lib.xkb_state_key_get_one_sym.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.xkb_keysym_get_name.restype = ctypes.c_int
    lib.xkb_keysym_get_name.argtypes = [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]
    return lib


def _keysym_name(lib: ctypes.CDLL, keysym: int) -> str:
    buf = ctypes.create_string_buffer(64)
    lib.xkb_keysym_get_name(keysym, buf, len(buf))
    return buf.value.decode()


def _layout_table(lib: ctypes.CDLL, context: int, source: LayoutSource) -> dict[str, Any]:
    names = _RuleNames(
        RULES.encode(), MODEL.encode(), source.layout.encode(), source.variant.encode(), b""
    )
    keymap = lib.xkb_keymap_new_from_names(context, ctypes.byref(names), 0)
    if not keymap:
        raise XkbError(f"xkb-data has no layout {source.layout!r} variant {source.variant!r}")
    state = lib.xkb_state_new(keymap)
    try:
        mod = {
            m: 1 << lib.xkb_keymap_mod_get_index(keymap, m.encode())
            for m in ("Shift", "Lock", "Mod2", "Mod5")
        }
        buf = ctypes.create_string_buffer(16)

        def query(code: int, shift: bool, altgr: bool, caps: bool) -> str | None:
            depressed = (mod["Shift"] if shift else 0) | (mod["Mod5"] if altgr else 0)
            locked = mod["Mod2"] | (mod["Lock"] if caps else 0)
            lib.xkb_state_update_mask(state, depressed, 0, locked, 0, 0, source.group)
            keycode = code + XKB_KEYCODE_OFFSET
            name = _keysym_name(lib, lib.xkb_state_key_get_one_sym(state, keycode))
            if name.startswith("dead_"):
                return name
            size = lib.xkb_state_key_get_utf8(state, keycode, buf, len(buf))
            return buf.value.decode() if size > 0 else None

        query(KEY_RIGHTALT, False, False, False)
        altgr = (
            lib.xkb_state_key_get_one_sym(state, KEY_RIGHTALT + XKB_KEYCODE_OFFSET)
            == ISO_LEVEL3_SHIFT
        )
        altgr_levels = (False, True) if altgr else (False,)

        def levels(code: int, caps: bool) -> list[str | None]:
            found = {(s, a): query(code, s, a, caps) for a in altgr_levels for s in (False, True)}
            return [found.get((s, a)) for a in (False, True) for s in (False, True)]

        keys: dict[str, list[str | None]] = {}
        caps: dict[str, list[str | None]] = {}
        for code in range(FIRST_KEY, LAST_KEY + 1):
            plain, locked = levels(code, False), levels(code, True)
            if any(plain):
                keys[str(code)] = plain
            if locked != plain:
                caps[str(code)] = locked
        return {
            "xkb_layout": source.layout,
            "xkb_variant": source.variant,
            "xkb_group": source.group + 1,
            "altgr": altgr,
            "keys": keys,
            "caps_lock": caps,
        }
    finally:
        lib.xkb_state_unref(state)
        lib.xkb_keymap_unref(keymap)


def _package_version(package: str) -> str:
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def installed_versions() -> dict[str, str]:
    """Versions of the Debian packages that provide libxkbcommon and xkb-data here."""
    return {
        "libxkbcommon0": _package_version("libxkbcommon0"),
        "xkb-data": _package_version("xkb-data"),
    }


def _key_names() -> dict[str, str]:
    from evdev import ecodes  # build-time only: the decoder itself never imports evdev

    names: dict[str, str] = {}
    for code in range(1, 256):
        found = ecodes.KEY.get(code)
        if found is None:
            continue
        candidates = [found] if isinstance(found, str) else list(found)
        names[str(code)] = next(n for n in candidates if n != "KEY_MIN_INTERESTING")
    return names


def generate_layouts() -> dict[str, dict[str, Any]]:
    """The layout tables, computed now with the installed libxkbcommon and xkb-data."""
    lib = load_libxkbcommon()
    context = lib.xkb_context_new(0)
    if not context:
        raise XkbError("libxkbcommon could not create a context (is xkb-data installed?)")
    try:
        return {
            layout_id: _layout_table(lib, context, source) for layout_id, source in SOURCES.items()
        }
    finally:
        lib.xkb_context_unref(context)


def generate() -> dict[str, Any]:
    return {
        "generated_by": "python -m gateway.codes.keyboard.generate",
        "source": {"rules": RULES, "model": MODEL, **installed_versions()},
        "levels": ["base", "shift", "altgr", "shift+altgr"],
        "key_names": _key_names(),
        "layouts": generate_layouts(),
    }


def _render(value: Any, indent: int) -> str:
    """JSON with one line per key entry, so a regenerated table diffs readably."""
    if not isinstance(value, dict) or not value:
        return json.dumps(value, ensure_ascii=False)
    pad = " " * (indent + 1)
    items = (f"{pad}{json.dumps(k)}: {_render(v, indent + 1)}" for k, v in value.items())
    return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"


def render(data: dict[str, Any]) -> str:
    return _render(data, 0) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed tables, write nothing"
    )
    args = parser.parse_args(argv)
    try:
        text = render(generate())
    except XkbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        same = TABLE_PATH.read_text(encoding="utf-8") == text
        print("layouts.json is up to date" if same else "layouts.json differs: regenerate it")
        return 0 if same else 1
    TABLE_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE_PATH} ({len(SOURCES)} layouts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
