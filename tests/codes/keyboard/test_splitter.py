"""ScanSplitter: suffix and gap endings, repeats, doubled keys, SYN_DROPPED, storms, real evdev events."""

from __future__ import annotations

import evdev
import pytest
from evdev import ecodes
from hypothesis import given
from hypothesis import strategies as st

from gateway.codes.keyboard import (
    GS,
    LAYOUTS,
    KeyboardSettings,
    KeyEvent,
    ScanSplitter,
    emulate,
    type_trace,
)
from gateway.codes.keyboard.events import (
    EV_KEY,
    EV_MSC,
    EV_SYN,
    KEY_KPENTER,
    SYN_DROPPED,
    SYN_REPORT,
)
from gateway.codes.keyboard.splitter import MODIFIER_KEYS

from .helpers import KEY_8, KEY_TAB, chord, scans, typed

PACK = "]d2010858600770385117241231108HB5R" + GS + "21587E4QA11R"


def test_real_evdev_events_through_from_evdev() -> None:
    events = emulate(PACK, "fr", separators="ctrl_layout", start=1_700_000_000.0)
    raw = [
        evdev.InputEvent(int(e.time), round(e.time % 1 * 1e6), e.type, e.code, e.value)
        for e in events
    ]
    raw.insert(3, evdev.InputEvent(1_700_000_000, 2000, ecodes.EV_MSC, ecodes.MSC_SCAN, 0x70004))
    converted = [KeyEvent.from_evdev(e) for e in raw]
    assert converted[0] == KeyEvent(
        ecodes.EV_KEY, ecodes.KEY_RIGHTALT, 1, 1_700_000_000.0
    )  # ']' is AltGr+KEY_MINUS
    (trace,) = scans(converted, KeyboardSettings(layout="fr"))
    assert trace.ended_by == "suffix"
    assert type_trace(trace, "fr").text == PACK


def test_feed_fields_takes_evdev_fields_as_they_are_and_splits_like_feed() -> None:
    # Two scans ended by the inter-key gap (no suffix): time must arrive in seconds, as is.
    events = [
        *emulate(PACK, "de", suffix=None, start=1_700_000_000.0),
        *emulate("21AB", "de", suffix=None, start=1_700_000_001.0),
    ]
    raw = [
        evdev.InputEvent(int(e.time), round(e.time % 1 * 1e6), e.type, e.code, e.value)
        for e in events
    ]
    settings = KeyboardSettings(layout="de", gap_ms=50)
    by_fields, by_events = ScanSplitter(settings), ScanSplitter(settings)
    from_fields = [by_fields.feed_fields(e.type, e.code, e.value, e.timestamp()) for e in raw]
    from_events = [by_events.feed(KeyEvent.from_evdev(e)) for e in raw]
    assert from_fields == from_events
    found = [t for t in [*from_fields, by_fields.flush()] if t is not None]
    assert [(type_trace(t, "de").text, t.ended_by) for t in found] == [
        (PACK, "gap"),
        ("21AB", "flush"),
    ]


def test_repeat_events_are_ignored() -> None:
    events = emulate("88", "us", syn_reports=False)
    with_repeats = [
        r for e in events for r in ([e, KeyEvent.key(e.code, 2, e.time)] if e.value == 1 else [e])
    ]
    assert typed(with_repeats, "us") == "88"


def test_every_key_down_counts_without_key_up_between() -> None:
    events = [
        e for e in emulate("8800AA", "fr") if not (e.value == 0 and e.code not in MODIFIER_KEYS)
    ]
    assert typed(events, "fr") == "8800AA"


def test_other_event_types_are_ignored() -> None:
    noise = [KeyEvent(EV_MSC, 4, 458756), KeyEvent(EV_SYN, SYN_REPORT, 0), KeyEvent(5, 0, 1)]
    assert typed([*noise, *emulate("AB", "de"), *noise], "de") == "AB"


def test_suffix_keys_end_scans_and_are_configurable() -> None:
    assert [
        type_trace(t, "us").text for t in scans(emulate("A", "us", suffix=KEY_KPENTER) * 2)
    ] == ["A", "A"]
    tab_suffix = KeyboardSettings(suffix_keys=frozenset({KEY_TAB}), gap_ms=None)
    traces = scans(
        [*emulate("A", "us", suffix=KEY_TAB), *emulate("B", "us", suffix=KEY_TAB)], tab_suffix
    )
    assert [(type_trace(t, "us").text, t.ended_by) for t in traces] == [
        ("A", "suffix"),
        ("B", "suffix"),
    ]


def test_a_bare_suffix_is_not_a_scan() -> None:
    splitter = ScanSplitter()
    assert [splitter.feed(e) for e in chord(28)] == [None, None]
    assert splitter.flush() is None


def test_gap_ends_a_scan_without_suffix() -> None:
    splitter = ScanSplitter(KeyboardSettings(gap_ms=50))
    first = emulate("AB", "us", suffix=None, start=10.0)
    second = emulate("CD", "us", suffix=None, start=10.2)
    assert [splitter.feed(e) for e in first] == [None] * len(first)
    last = first[-1].time
    assert splitter.poll(last + 0.049) is None
    ended = [t for t in map(splitter.feed, second) if t]
    assert [(type_trace(t, "us").text, t.ended_by) for t in ended] == [("AB", "gap")]
    assert splitter.poll(second[-1].time + 0.049) is None
    trace = splitter.poll(second[-1].time + 0.051)
    assert trace is not None and (type_trace(trace, "us").text, trace.ended_by) == ("CD", "gap")
    assert splitter.poll(100.0) is None and splitter.flush() is None


def test_without_gap_only_suffix_or_flush_ends_a_scan() -> None:
    splitter = ScanSplitter(KeyboardSettings(gap_ms=None))
    for e in emulate("AB", "us", suffix=None):
        splitter.feed(e)
    assert splitter.poll(1e9) is None
    trace = splitter.flush()
    assert trace is not None and (type_trace(trace, "us").text, trace.ended_by) == ("AB", "flush")


def test_syn_dropped_discards_the_scan_and_marks_it_interrupted() -> None:
    events = emulate(PACK, "de", start=5.0)
    cut = len(events) // 2
    lost = [KeyEvent(EV_SYN, SYN_DROPPED, 0, events[cut].time), *chord(30, time=events[cut].time)]
    after = emulate("NEXT", "de", start=9.0)
    traces = scans([*events[:cut], *lost, *events[cut:], *after])
    assert [(t.interrupted, t.strokes == (), type_trace(t, "de").text) for t in traces] == [
        (True, True, ""),
        (False, False, "NEXT"),
    ]
    assert traces[0].keys_discarded > 0


def test_syn_dropped_while_idle_is_reported_after_the_gap() -> None:
    splitter = ScanSplitter(KeyboardSettings(gap_ms=100))
    assert splitter.feed(KeyEvent(EV_SYN, SYN_DROPPED, 0, 1.0)) is None
    trace = splitter.poll(1.2)
    assert trace is not None and trace.interrupted and trace.ended_by == "gap"


def test_key_storm_is_capped_and_reported() -> None:
    storm = [KeyEvent.key(KEY_8, 1, i * 1e-4) for i in range(20_000)]
    (trace,) = scans(
        [*storm, KeyEvent.key(28, 1, 2.0)], KeyboardSettings(max_scan_keys=500, gap_ms=None)
    )
    assert trace.truncated and len(trace.strokes) == 500 and trace.keys_discarded == 19_500
    assert type_trace(trace, "us").text == "8" * 500


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"layout": "xx"}, "unknown keyboard layout 'xx'; choose 'auto' or one of: us, gb"),
        ({"gap_ms": 0}, "gap_ms must be a positive number of milliseconds or None, not 0"),
        ({"max_scan_keys": 0}, "max_scan_keys must be at least 1, not 0"),
        (
            {"function_keys": {88: "x"}},
            "function key KEY_F12 must map to GS, RS, EOT, FS or US, not 'x'",
        ),
    ],
)
def test_bad_settings_name_the_thing_to_fix(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        KeyboardSettings(**settings)  # type: ignore[arg-type]


def test_auto_layout_is_a_valid_setting() -> None:
    assert KeyboardSettings(layout="auto").layout == "auto"


events_at_random = st.lists(
    st.builds(
        KeyEvent,
        type=st.sampled_from([EV_KEY, EV_KEY, EV_KEY, EV_SYN, EV_MSC, 3, 0x15]),
        code=st.one_of(st.integers(0, 130), st.integers(-5, 1000)),
        value=st.integers(-2, 3),
        time=st.floats(0, 10, allow_nan=False),
    ),
    max_size=200,
)


@given(events=events_at_random, layout=st.sampled_from(LAYOUTS), max_keys=st.integers(1, 50))
def test_any_event_stream_gives_traces_every_layout_can_type(
    events: list[KeyEvent], layout: str, max_keys: int
) -> None:
    splitter = ScanSplitter(KeyboardSettings(layout=layout, max_scan_keys=max_keys, gap_ms=30))
    traces = []
    for event in events:
        traces += [t for t in (splitter.feed(event), splitter.poll(event.time + 0.01)) if t]
    traces += [t for t in (splitter.flush(),) if t]
    for trace in traces:
        assert len(trace.strokes) <= max_keys
        typed_text = type_trace(trace, layout)
        assert len(typed_text.text) == len(trace.strokes)
        assert len(typed_text.unmapped) == typed_text.text.count("\0")
