"""Scanner calibration: one scan of the card's calibration code → what the scanner does.

Pure (no I/O): :func:`diagnose_keys` (a keyboard wedge's
:class:`~gateway.codes.keyboard.KeyTrace`) and :func:`diagnose_bytes` (serial or HID POS) take
the raw scan the capture layer delivered and compare it with
:data:`~gateway.selftest.card_codes.CALIBRATION_PAYLOAD`. For a wedge scanner the trace is typed
under every layout (:func:`~gateway.codes.keyboard.type_trace`); the layouts that reproduce the
payload are the scanner's keyboard country. From the same match it reads how GS arrives (Ctrl
chord at the layout or US position, Alt+keypad, a function key, a substitute character, not at
all), whether the AIM identifier, a prefix and a suffix are sent, and whether the scanner
changes case (a scanner typing as if Caps Lock were on is read with ``caps_lock = true``; forced
upper or lower case cannot be undone).

What software can absorb becomes configuration keys (:meth:`Calibration.settings`); what it
cannot (GS dropped, case converted) becomes a scanner setting to change, never a correction of
the data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from gateway.codes.keyboard import GS, LAYOUTS, KeyStroke, KeyTrace, Modifier, key_name, type_trace
from gateway.codes.keyboard.layouts import get_layout
from gateway.codes.layout_belief import layout_families
from gateway.codes.validation import SET_82
from gateway.selftest.card_codes import CALIBRATION_AIM, CALIBRATION_PAYLOAD, shown
from gateway.selftest.results import CheckResult, fail, ok, warning

KEY_RIGHTBRACE: Final = 27  # where US-style Ctrl+] (GS) is typed
UNMAPPED: Final = "\0"

CaseMode = Literal["none", "upper", "lower", "invert"]
GsStyle = Literal[
    "control",  # serial / HID POS: the GS byte itself
    "ctrl_layout",
    "ctrl_us",
    "alt_keypad",
    "function_key",
    "substitute",
    "dropped",
    "unreadable",  # a chord the gateway cannot read as GS
]
CASE_MODES: tuple[CaseMode, ...] = ("none", "upper", "lower", "invert")
_CONVERT: dict[CaseMode, Callable[[str], str]] = {
    "none": str,
    "upper": str.upper,
    "lower": str.lower,
    "invert": str.swapcase,
}
_NOT_SENT_CASE = {
    "upper": "converts every letter to upper case",
    "lower": "converts every letter to lower case",
    "invert": "inverts the case of every letter (a Caps Lock keyboard style, or 'invert case')",
}


@dataclass(frozen=True, slots=True)
class Calibration:
    """The diagnosis of one calibration scan. ``matched`` is False when no reading of the scan
    reproduces the calibration code (wrong code scanned, or a scanner that alters characters)."""

    scanner_id: str
    wedge: bool  # keyboard wedge (layouts apply) or byte transport
    matched: bool
    received: str  # the scan as text (under the chosen layout for a wedge), for display
    layout: str | None = None
    layouts: tuple[str, ...] = ()  # every layout that reproduces the card
    equivalent: bool = True  # the candidate layouts type every pack character with the same keys
    gs: GsStyle | None = None
    gs_key: str | None = None  # the key or chord that carried GS
    gs_substitute: str | None = None
    aim: bool = False
    prefix: str = ""
    suffix: str = ""
    enter_suffix: bool = False  # the scan ended on a configured suffix key (Enter)
    case: CaseMode = "none"
    caps_lock_style: bool = False  # the scanner toggles its own Caps Lock around letters
    assumes_caps_lock: bool = False  # it types letters as if Caps Lock were on (case inverted)

    def settings(self) -> dict[str, Any]:
        """The ``[[scanner]]`` keys the gateway needs for this scanner; ``None`` = remove the key.

        Only what the calibration established: nothing when the scan did not match. The
        ``function_keys`` table is rewritten to hold just the GS key found (or removed).
        """
        if not self.matched:
            return {}
        keys: dict[str, Any] = {}
        if self.wedge and self.layout is not None:
            keys["layout"] = self.layout
        if UNMAPPED not in self.prefix:
            keys["prefix"] = self.prefix or None
        if UNMAPPED not in self.suffix:
            keys["suffix"] = self.suffix or None
        usable_substitute = self.gs == "substitute" and self.gs_substitute not in SET_82
        keys["gs_substitute"] = self.gs_substitute if usable_substitute else None
        if self.wedge:
            keys["caps_lock"] = True if self.assumes_caps_lock else None
            function_key = self.gs == "function_key" and self.gs_key
            keys["function_keys"] = {self.gs_key: "GS"} if function_key else None
        return keys

    def results(self) -> list[CheckResult]:
        """One line per finding, with the scanner setting to change when software cannot help."""
        name = f"calibration.{self.scanner_id}"
        if not self.matched:
            return [
                fail(
                    f"{name}.scan",
                    f"the scan does not match the calibration code under any keyboard layout "
                    f"or case; received {shown(self.received)!r}",
                    "scan the code captioned 'Calibration code' on the card (not a pack); if you "
                    "did, reset the scanner to its factory defaults, set its keyboard country and "
                    "'no case conversion', then calibrate again",
                )
            ]
        return [
            *self._layout(name),
            self._gs(name),
            self._aim(name),
            self._framing(name),
            self._case(name),
        ]

    def _layout(self, name: str) -> list[CheckResult]:
        if not self.wedge:
            return []
        others = [layout for layout in self.layouts if layout != self.layout]
        if self.layout is None:
            return [
                warning(
                    f"{name}.layout",
                    f"the code reads correctly under several keyboard countries that type pack "
                    f"codes differently: {', '.join(self.layouts)}",
                    "set layout in this [[scanner]] table to the scanner's keyboard country "
                    "among these, or set the scanner's keyboard country to US and calibrate again",
                )
            ]
        also = f" (equivalent for pack codes: {', '.join(others)})" if others else ""
        return [ok(f"{name}.layout", f"keyboard country {self.layout}{also}")]

    def _gs(self, name: str) -> CheckResult:
        check = f"{name}.gs"
        described = {
            "control": "sent as the GS control character",
            "ctrl_layout": f"sent as {self.gs_key} (Ctrl + the key of ] in the scanner's layout)",
            "ctrl_us": f"sent as {self.gs_key} (Ctrl + the US position of ])",
            "alt_keypad": f"sent as {self.gs_key} (Alt + numeric keypad)",
            "function_key": f"sent as the key {self.gs_key}; the gateway reads it as GS",
            "substitute": f"replaced by the character {self.gs_substitute!r}",
        }
        if self.gs == "dropped":
            return fail(
                check,
                "the scanner does not transmit FNC1: the fields of a pack code run together",
                "enable 'transmit GS' (FNC1 as GS, control characters as Ctrl+key) in the "
                "scanner's configuration, then calibrate again",
            )
        if self.gs == "unreadable":
            return fail(
                check,
                f"GS arrives as {self.gs_key}, a key combination that types nothing the gateway "
                "can read",
                "set the scanner to send control characters as Ctrl+key (Ctrl+ASCII) or "
                "Alt+numeric keypad, then calibrate again",
            )
        if self.gs == "substitute" and self.gs_substitute in SET_82:
            return fail(
                check,
                f"GS is replaced by {self.gs_substitute!r}, a character that can also be data",
                "remove the GS replacement in the scanner's data editing (send GS itself), or "
                "replace it with '$', which is never data",
            )
        assert self.gs is not None
        return ok(check, f"GS {described[self.gs]}")

    def _aim(self, name: str) -> CheckResult:
        if self.aim:
            return ok(f"{name}.aim", f"the AIM identifier {CALIBRATION_AIM} is sent")
        return warning(
            f"{name}.aim",
            "the scanner does not send the AIM identifier (]d2 for GS1 DataMatrix)",
            "enable 'AIM ID' / 'transmit symbology identifier' in the scanner's configuration: "
            "it tells a GS1 code from other codes",
        )

    def _framing(self, name: str) -> CheckResult:
        check = f"{name}.prefix-suffix"
        parts = []
        if self.prefix:
            parts.append(f"prefix {shown(self.prefix)!r}")
        if self.suffix:
            parts.append(f"suffix {shown(self.suffix)!r}")
        if UNMAPPED in self.prefix + self.suffix:
            return warning(
                check,
                f"the scanner adds keys that type nothing: {', '.join(parts)}",
                "remove the prefix/suffix in the scanner's configuration (keep only Enter at the end)",
            )
        if self.wedge and not self.enter_suffix:
            return warning(
                check,
                "no Enter after the code: scans end only after a pause"
                + (f"; {', '.join(parts)}" if parts else ""),
                "enable the Enter (CR) suffix in the scanner's configuration",
            )
        if parts:
            return ok(check, f"{' and '.join(parts)}: removed by the gateway (configuration)")
        return ok(check, "no prefix; the code ends with the end-of-line")

    def _case(self, name: str) -> CheckResult:
        check = f"{name}.case"
        if self.case != "none":
            return fail(
                check,
                f"the scanner {_NOT_SENT_CASE[self.case]}: lower-case serial numbers would be "
                "wrong and raise alerts",
                "set the scanner to 'no case conversion' and keyboard style 'Regular' (not "
                "'Caps Lock' or 'Shift Lock'), then calibrate again",
            )
        if self.assumes_caps_lock:
            return warning(
                check,
                "the scanner inverts the case of letters (it types as if Caps Lock were on); the "
                "gateway compensates with caps_lock = true",
                "set the scanner's keyboard style to 'Regular' and 'no case conversion', then "
                "calibrate again",
            )
        if self.caps_lock_style:
            return warning(
                check,
                "case is right, but the scanner toggles Caps Lock around letters (Caps Lock "
                "keyboard style); the gateway follows it",
                "set the scanner's keyboard style to 'Regular'",
            )
        return ok(check, "letters arrive in their own case")


def _pattern(case: CaseMode) -> re.Pattern[str]:
    convert = _CONVERT[case]
    first, *rest = (re.escape(convert(field)) for field in CALIBRATION_PAYLOAD.split(GS))
    separated = "".join(
        ("(?P<sep>.?)" if index == 0 else "(?P=sep)") + field for index, field in enumerate(rest)
    )
    return re.compile(
        f"(?P<prefix>.*?)(?P<aim>{re.escape(convert(CALIBRATION_AIM))})?{first}{separated}"
        "(?P<suffix>.*)",
        re.DOTALL,
    )


_PATTERNS: Final = {case: _pattern(case) for case in CASE_MODES}


def diagnose_text(scanner_id: str, text: str) -> Calibration:
    """A scan from a byte transport (serial, HID POS), decoded as Latin-1 bytes."""
    for case in CASE_MODES:
        found = _PATTERNS[case].fullmatch(text)
        if found is None:
            continue
        sep = found["sep"]
        gs: GsStyle = "control" if sep == GS else "substitute" if sep else "dropped"
        return _matched(scanner_id, False, text, found, case, gs)
    return Calibration(scanner_id, wedge=False, matched=False, received=text)


def diagnose_bytes(scanner_id: str, data: bytes) -> Calibration:
    return diagnose_text(scanner_id, data.decode("latin-1"))


def _caps_flipped(trace: KeyTrace) -> KeyTrace:
    """The trace as if the scanner's Caps Lock had started in the other state."""
    strokes = tuple(replace(s, modifiers=s.modifiers ^ Modifier.CAPS_LOCK) for s in trace.strokes)
    return replace(trace, strokes=strokes)


def diagnose_keys(
    scanner_id: str,
    trace: KeyTrace,
    *,
    configured_layout: str | None = None,
    configured_caps_lock: bool = False,
    layouts: tuple[str, ...] = LAYOUTS,
) -> Calibration:
    """A keyboard-wedge scan, as the capture layer split it with the scanner's configuration
    (``configured_caps_lock``: the initial Caps Lock state it assumed, undone here). The
    configured layout is kept when it is among the candidates.

    Readings tried in order: letters as sent; letters as sent by a scanner that assumes Caps
    Lock is on (fixable with ``caps_lock = true``); then case conversions, which are not."""
    sent = _caps_flipped(trace) if configured_caps_lock else trace
    flipped = _caps_flipped(sent)
    readings: list[tuple[CaseMode, bool]] = [
        ("none", False),
        ("none", True),
        *((case, False) for case in CASE_MODES if case != "none"),
    ]
    typings: dict[bool, dict[str, str]] = {}  # each trace is typed once, under every layout
    for case, assumes_caps in readings:
        reading = flipped if assumes_caps else sent
        if assumes_caps not in typings:
            typings[assumes_caps] = {layout: type_trace(reading, layout).text for layout in layouts}
        texts = typings[assumes_caps]
        matches = {
            layout: found
            for layout in layouts
            if (found := _PATTERNS[case].fullmatch(texts[layout])) is not None
        }
        if matches:
            return _from_keys(
                scanner_id,
                reading,
                case,
                matches,
                texts,
                configured_layout,
                assumes_caps,
                caps_lock_style=any(s.modifiers & Modifier.CAPS_LOCK for s in sent.strokes),
            )
    # show the scan as the configured layout types it, else as the layout that types it best
    typed = typings[False]
    fewest_unmapped = min(layouts, key=lambda layout: typed[layout].count(UNMAPPED))
    shown_layout = configured_layout if configured_layout in typed else fewest_unmapped
    return Calibration(scanner_id, wedge=True, matched=False, received=typed[shown_layout])


def _from_keys(
    scanner_id: str,
    trace: KeyTrace,
    case: CaseMode,
    matches: Mapping[str, re.Match[str]],
    typed: Mapping[str, str],
    configured_layout: str | None,
    assumes_caps_lock: bool,
    *,
    caps_lock_style: bool,
) -> Calibration:
    candidates = tuple(matches)
    classes = layout_families(candidates)
    if configured_layout in matches:
        chosen: str | None = configured_layout
    else:
        chosen = candidates[0] if len(classes) == 1 else None
    shown_layout = chosen or candidates[0]
    found = matches[shown_layout]
    sep = found["sep"]
    gs: GsStyle = "dropped"
    gs_key = None
    if sep:
        gs, gs_key = _gs_style(trace.strokes[found.start("sep")], sep, shown_layout)
    return _matched(
        scanner_id,
        True,
        typed[shown_layout],
        found,
        case,
        gs,
        layout=chosen,
        layouts=candidates,
        equivalent=len(classes) == 1,
        gs_key=gs_key,
        enter_suffix=trace.ended_by == "suffix",
        caps_lock_style=caps_lock_style,
        assumes_caps_lock=assumes_caps_lock,
    )


def _matched(
    scanner_id: str,
    wedge: bool,
    received: str,
    found: re.Match[str],
    case: CaseMode,
    gs: GsStyle,
    **wedge_findings: Any,
) -> Calibration:
    return Calibration(
        scanner_id,
        wedge=wedge,
        matched=True,
        received=received,
        gs=gs,
        gs_substitute=found["sep"] if gs == "substitute" else None,
        aim=found["aim"] is not None,
        prefix=found["prefix"],
        suffix=found["suffix"],
        case=case,
        **wedge_findings,
    )


def _gs_style(stroke: KeyStroke, sep: str, layout: str) -> tuple[GsStyle, str | None]:
    """How the keystroke that stood where GS belongs carried it (``sep``: what it typed)."""
    chord = stroke.describe(get_layout(layout).altgr)
    chorded = stroke.modifiers & (Modifier.CTRL | Modifier.ALT)
    if sep == GS:  # the gateway reads it as GS already
        if stroke.alt_digits:
            return "alt_keypad", chord
        if stroke.fixed is not None:  # a function key the configuration maps
            return "function_key", key_name(stroke.code)
        right = get_layout(layout).chords().get("]")
        at_layout = right is not None and (right.code, right.shift, right.altgr) == (
            stroke.code,
            bool(stroke.modifiers & Modifier.SHIFT),
            bool(stroke.modifiers & Modifier.RIGHT_ALT),
        )
        us_position = stroke.code == KEY_RIGHTBRACE and not at_layout
        return ("ctrl_us" if us_position else "ctrl_layout"), chord
    if sep == UNMAPPED:  # a key that types nothing: usable as GS unless chorded
        if chorded or stroke.alt_digits:
            return "unreadable", chord
        return "function_key", key_name(stroke.code)
    return "substitute", chord
