"""Calibration diagnosis: emulated scanners (every layout × GS style × case mode × AIM on/off)
must be diagnosed exactly; scans through the real capture readers (an evdev event stream at
the kernel boundary, a serial pty) reach the same diagnosis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.capture.config import ScannerConfig
from gateway.codes.keyboard import (
    GS,
    LAYOUTS,
    SEPARATOR_STYLES,
    KeyboardSettings,
    KeyEvent,
    KeyTrace,
    ScanSplitter,
    emulate,
)
from gateway.codes.keyboard.events import KEY_DOWN, KEY_ENTER, KEY_F12, KEY_LEFTCTRL
from gateway.codes.keyboard.layouts import get_layout
from gateway.codes.layout_belief import layout_families
from gateway.selftest.calibration import (
    Calibration,
    diagnose_bytes,
    diagnose_keys,
)
from gateway.selftest.card_codes import CALIBRATION_AIM, CALIBRATION_PAYLOAD
from gateway.selftest.command import NoScan, calibrate_scanner, read_one_scan
from gateway.selftest.results import CheckResult, Status
from tests.capture.kernel import KernelInput, KernelInputNode, input_events
from tests.capture.test_serial import SerialPort

CASES: dict[str, Callable[[str], str]] = {
    "none": str,
    "upper": str.upper,
    "lower": str.lower,
    "invert": str.swapcase,
}
FUNCTION_KEYS = {KEY_F12: GS}
KEY_F1 = 59


def trace_of(events: list[KeyEvent]) -> KeyTrace:
    splitter = ScanSplitter()
    traces = [t for t in map(splitter.feed, events) if t is not None]
    last = splitter.flush()
    traces += [last] if last is not None else []
    assert len(traces) == 1, traces
    return traces[0]


def expected_gs(style: str, layout: str) -> str:
    """Ctrl+] at the US position is the layout position too when ] sits there in the layout."""
    if style == "ctrl_us":
        chord = get_layout(layout).chords()["]"]
        if (chord.code, chord.shift, chord.altgr) == (27, False, False):
            return "ctrl_layout"
    return style


def line(found: Calibration, finding: str) -> CheckResult:
    """The result line of one finding (``gs``, ``aim``, ``case``…)."""
    return next(r for r in found.results() if r.name.endswith("." + finding))


def results_by_name(found: list) -> dict[str, Status]:  # type: ignore[type-arg]
    return {r.name.rsplit(".", 1)[1]: r.status for r in found}


@given(
    layout=st.sampled_from(LAYOUTS),
    style=st.sampled_from(SEPARATOR_STYLES),
    case=st.sampled_from(sorted(CASES)),
    aim=st.booleans(),
    caps_lock=st.booleans(),
    keypad_digits=st.booleans(),
    configured=st.booleans(),
)
def test_every_emulated_scanner_is_diagnosed(
    layout: str,
    style: str,
    case: str,
    aim: bool,
    caps_lock: bool,
    keypad_digits: bool,
    configured: bool,
) -> None:
    text = CASES[case]((CALIBRATION_AIM if aim else "") + CALIBRATION_PAYLOAD)
    events = emulate(
        text,
        layout,
        separators=style,  # type: ignore[arg-type]
        caps_lock=caps_lock,
        keypad_digits=keypad_digits,
        function_keys={KEY_DOWN: GS},
        substitutes={GS: "$"},
    )
    found = diagnose_keys("s1", trace_of(events), configured_layout=layout if configured else None)

    assert found.matched
    # a scanner inverting case types like one that believes Caps Lock is on: caps_lock = true
    assert found.case == ("none" if case == "invert" else case)
    assert found.assumes_caps_lock is (case == "invert")
    assert found.aim is aim
    assert found.caps_lock_style is caps_lock
    assert found.gs == expected_gs(style, layout)
    assert found.prefix == "" and found.suffix == "" and found.enter_suffix
    assert layout in found.layouts
    if configured:
        assert found.layout == layout
    else:
        same_keys = next(c for c in layout_families(found.layouts) if layout in c)
        assert found.layout in same_keys or (found.layout is None and not found.equivalent)
    statuses = results_by_name(found.results())
    if case in ("upper", "lower"):
        assert statuses["case"] is Status.FAIL
    else:
        bad = case == "invert" or caps_lock
        assert statuses["case"] is (Status.WARNING if bad else Status.OK)
    assert statuses["gs"] is (Status.FAIL if style == "dropped" else Status.OK)
    assert statuses["aim"] is (Status.OK if aim else Status.WARNING)
    settings = found.settings()
    assert settings["gs_substitute"] == ("$" if style == "substitute" else None)
    assert settings["function_keys"] == ({"KEY_DOWN": "GS"} if style == "function_key" else None)
    assert settings["caps_lock"] == (True if case == "invert" else None)


def test_the_whole_matrix_without_case_or_keypad_variations() -> None:
    """Every layout × GS style × AIM, exhaustively (hypothesis samples the larger space)."""
    wrong = []
    for layout in LAYOUTS:
        for style in SEPARATOR_STYLES:
            for aim in (False, True):
                text = (CALIBRATION_AIM if aim else "") + CALIBRATION_PAYLOAD
                events = emulate(text, layout, separators=style, function_keys=FUNCTION_KEYS)
                found = diagnose_keys("s1", trace_of(events), configured_layout=layout)
                seen = (found.layout, found.gs, found.aim, found.case)
                if seen != (layout, expected_gs(style, layout), aim, "none"):
                    wrong.append((layout, style, aim, seen))
    assert wrong == []


def test_a_configured_caps_lock_is_undone_before_the_diagnosis() -> None:
    """The hub splits with the configured initial Caps Lock: a regular scanner configured with
    caps_lock = true arrives case-inverted, and calibration must say to remove the key."""
    splitter = ScanSplitter(KeyboardSettings(caps_lock=True))
    events = emulate(CALIBRATION_PAYLOAD, "be")
    trace = next(t for t in map(splitter.feed, events) if t is not None)
    found = diagnose_keys("s1", trace, configured_layout="be", configured_caps_lock=True)
    assert (found.case, found.assumes_caps_lock) == ("none", False)
    assert found.settings()["caps_lock"] is None
    inverted = diagnose_keys("s1", trace, configured_layout="be")
    assert inverted.assumes_caps_lock and inverted.settings()["caps_lock"] is True


def test_layouts_that_type_pack_codes_differently_are_reported_as_ambiguous() -> None:
    # A Lithuanian scanner's calibration scan also reads right as Greek, but the two layouts
    # type other pack characters with different keys: the layout is not guessed.
    events = emulate(CALIBRATION_AIM + CALIBRATION_PAYLOAD, "lt")
    found = diagnose_keys("s1", trace_of(events))
    assert set(found.layouts) == {"gr", "lt"} and not found.equivalent
    assert found.layout is None and "layout" not in found.settings()
    layout = found.results()[0]
    assert layout.status is Status.WARNING and "gr, lt" in layout.detail


def test_a_us_scanner_gets_us_among_its_equivalent_layouts() -> None:
    found = diagnose_keys("s1", trace_of(emulate(CALIBRATION_PAYLOAD, "us")))
    assert found.layout == "us" and found.equivalent and len(found.layouts) > 1
    assert "equivalent for pack codes" in found.results()[0].detail


def test_prefix_suffix_and_missing_enter() -> None:
    events = emulate("AB" + CALIBRATION_AIM + CALIBRATION_PAYLOAD + "\t", "fr", suffix=None)
    found = diagnose_keys("s1", trace_of(events), configured_layout="fr")
    assert (found.prefix, found.suffix, found.enter_suffix) == ("AB", "\t", False)
    assert found.settings()["prefix"] == "AB" and found.settings()["suffix"] == "\t"
    assert results_by_name(found.results())["prefix-suffix"] is Status.WARNING


def test_an_unknown_function_key_as_gs_is_found_and_configured() -> None:
    events = emulate(
        CALIBRATION_PAYLOAD, "de", separators="function_key", function_keys=FUNCTION_KEYS
    )
    found = diagnose_keys("s1", trace_of(events), configured_layout="de")
    assert (found.gs, found.gs_key) == ("function_key", "KEY_F12")
    assert found.settings()["function_keys"] == {"KEY_F12": "GS"}


def test_a_substitute_that_can_be_data_fails() -> None:
    events = emulate(CALIBRATION_PAYLOAD, "us", separators="substitute", substitutes={GS: "+"})
    found = diagnose_keys("s1", trace_of(events), configured_layout="us")
    assert (found.gs, found.gs_substitute) == ("substitute", "+")
    gs = line(found, "gs")
    assert gs.status is Status.FAIL and "'$'" in gs.fix
    assert found.settings()["gs_substitute"] is None


def test_a_chord_that_types_nothing_is_unreadable() -> None:
    """GS as Ctrl+F1: no function-key mapping can read a chord, the scanner must change."""
    events: list[KeyEvent] = []
    for index, field in enumerate(CALIBRATION_PAYLOAD.split(GS)):
        if index:
            t = events[-1].time + 0.001
            for offset, (code, value) in enumerate(
                [(KEY_LEFTCTRL, 1), (KEY_F1, 1), (KEY_F1, 0), (KEY_LEFTCTRL, 0)]
            ):
                events.append(KeyEvent.key(code, value, t + offset * 0.001))
        start = events[-1].time + 0.001 if events else 0.0
        last = index == 2
        events += emulate(field, "us", start=start, suffix=KEY_ENTER if last else None)
    found = diagnose_keys("s1", trace_of(events), configured_layout="us")
    assert (found.gs, found.gs_key) == ("unreadable", "Ctrl+KEY_F1")
    gs = line(found, "gs")
    assert gs.status is Status.FAIL and "Ctrl+key (Ctrl+ASCII)" in gs.fix
    assert found.settings()["function_keys"] is None


def test_dropped_gs_names_the_scanner_setting() -> None:
    found = diagnose_keys("s1", trace_of(emulate(CALIBRATION_PAYLOAD, "fr", separators="dropped")))
    gs = line(found, "gs")
    assert gs.status is Status.FAIL
    assert gs.detail == "the scanner does not transmit FNC1: the fields of a pack code run together"
    assert "enable 'transmit GS'" in gs.fix


def test_a_pack_code_is_not_a_calibration_scan() -> None:
    events = emulate("]d2010340093652578817271130" + "10X23A71", "fr")
    found = diagnose_keys("s1", trace_of(events), configured_layout="fr")
    assert not found.matched and found.settings() == {}
    (only,) = found.results()
    assert only.status is Status.FAIL and only.name == "calibration.s1.scan"
    assert "]d2010340093652578817271130" in only.detail


@pytest.mark.parametrize(
    ("data", "gs", "aim", "case"),
    [
        (b"]d2" + CALIBRATION_PAYLOAD.encode(), "control", True, "none"),
        (CALIBRATION_PAYLOAD.replace(GS, "$").encode(), "substitute", False, "none"),
        (CALIBRATION_PAYLOAD.replace(GS, "").upper().encode(), "dropped", False, "upper"),
    ],
)
def test_byte_scanners(data: bytes, gs: str, aim: bool, case: str) -> None:
    found = diagnose_bytes("s1", data)
    assert (found.matched, found.gs, found.aim, found.case) == (True, gs, aim, case)
    assert "layout" not in found.settings() and "function_keys" not in found.settings()


# --- through the real capture readers ---------------------------------------------------------


async def test_an_evdev_scan_through_the_real_reader(tmp_path: Path) -> None:
    node = KernelInputNode("/dev/input/event7")
    config = ScannerConfig.from_toml(
        {"id": "till-1", "kind": "evdev", "match": "0c2e:0b61", "layout": "auto"}, 0
    )
    events = emulate(CALIBRATION_AIM + CALIBRATION_PAYLOAD, "fr", separators="alt_keypad")
    reading = asyncio.create_task(read_one_scan(config, 10, input_backend=KernelInput(node)))
    while not node.grabbed:  # noqa: ASYNC110 - the fake node has no event for its grab
        await asyncio.sleep(0.005)
    node.emit(input_events(events))
    raw = await reading
    assert isinstance(raw, KeyTrace)
    found = diagnose_keys("till-1", raw)
    assert (found.layout, found.gs, found.aim) == ("fr", "alt_keypad", True)
    assert node.desktop == []  # grabbed: the desktop saw none of the calibration keystrokes


async def test_a_serial_scan_through_the_real_reader_and_the_saved_configuration(
    tmp_path: Path,
) -> None:
    port = SerialPort(tmp_path / "usb-scanner-if00")
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(f'[[scanner]]\nid = "s1"\nkind = "serial"\npath = "{port.link}"\n')
    config = ScannerConfig.from_toml({"id": "s1", "kind": "serial", "path": str(port.link)}, 0)
    try:
        task = asyncio.create_task(calibrate_scanner(config_file, config, 10, True))
        await asyncio.sleep(0.2)  # the port opens; bytes written before would be lost
        await port.send(b"]d2" + CALIBRATION_PAYLOAD.replace(GS, "$").encode() + b"\r")
        found = await task
    finally:
        port.close()
    assert found[-1].status is Status.OK and "saved in" in found[-1].detail
    assert 'gs_substitute = "$"' in config_file.read_text()


async def test_no_scan_in_time_says_why(tmp_path: Path) -> None:
    config = ScannerConfig.from_toml(
        {"id": "s1", "kind": "serial", "path": str(tmp_path / "no-such-port")}, 0
    )
    with pytest.raises(NoScan):
        await read_one_scan(config, 0.3)
    (result,) = await calibrate_scanner(tmp_path / "x.toml", config, 0.3, False)
    assert result.status is Status.FAIL and "no scan from 's1' within 0 s" in result.detail
    assert "the device is not there" in result.detail
