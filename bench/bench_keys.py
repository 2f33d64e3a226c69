"""Benchmark: key events of one scan → ScanSplitter → type_trace, per scan, under ``us`` and ``fr``.

Each case is also run from real ``evdev.InputEvent`` objects, as the evdev reader gets them:
converted with ``KeyEvent.from_evdev`` then ``feed``, and handed over with ``feed_fields``
(what the reader does), to show what the conversion costs per scan and per event.

Prints p50/p99 in µs for a typical 40-character GS1 pack (AIM id, GTIN, expiry, batch, GS,
serial, Enter), and the ratios to two baselines run in the same process: a plain dict lookup
per character of the text, and one per key event of the scan (the least any key decoder must
do). Measured twice: wall time, and the thread's CPU time (which leaves out the time the
process was not scheduled: on a loaded machine wall p99 is mostly other processes). Run:
``.venv/bin/python bench/bench_keys.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from timing import p50_p99, sample

from gateway.capture.virtual import input_events
from gateway.codes.keyboard import GS, KeyboardSettings, KeyEvent, ScanSplitter, emulate, type_trace

PACK = "]d2010858600770385117241231108HB5R" + GS + "21587E4QA"


def _decoder(layout: str, events: list[KeyEvent]) -> Callable[[], object]:
    splitter = ScanSplitter(KeyboardSettings(layout=layout))

    def run() -> object:
        for event in events:
            trace = splitter.feed(event)
            if trace is not None:
                return type_trace(trace, layout).text
        raise AssertionError("the scan did not end")

    return run


def _evdev_decoder(
    layout: str, events: list[KeyEvent], *, via_key_event: bool
) -> Callable[[], object]:
    """The evdev reader's per-event work on real ``evdev.InputEvent`` objects: either through
    ``KeyEvent.from_evdev`` + ``feed`` (the public conversion) or ``feed_fields`` (the reader's path)."""
    inputs = input_events(events, start=1_700_000_000.0)
    splitter = ScanSplitter(KeyboardSettings(layout=layout))
    feed, feed_fields, from_evdev = splitter.feed, splitter.feed_fields, KeyEvent.from_evdev

    def run() -> object:
        for event in inputs:
            if via_key_event:
                trace = feed(from_evdev(event))
            else:
                trace = feed_fields(event.type, event.code, event.value, event.timestamp())
            if trace is not None:
                return type_trace(trace, layout).text
        raise AssertionError("the scan did not end")

    return run


def _baseline(text: str) -> Callable[[], object]:
    table = {c: c for c in text}

    def run() -> object:
        return "".join([table[c] for c in text])

    return run


def _event_baseline(events: list[KeyEvent]) -> Callable[[], object]:
    table = {e.code: "x" for e in events}

    def run() -> object:
        return "".join([table[e.code] for e in events if e.value == 1])

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    args = parser.parse_args()
    print(f"pack: {len(PACK)} characters; load average {os.getloadavg()[0]:.2f}")
    for clock_name, clock in (("wall", time.perf_counter_ns), ("thread CPU", time.thread_time_ns)):
        print(f"-- {clock_name} time per scan")
        base_p50, base_p99 = p50_p99(sample(_baseline(PACK), args.rounds, clock, warm=False))
        print(f"baseline, dict lookup per character: p50 {base_p50:.2f} µs  p99 {base_p99:.2f} µs")
        for layout, style in (("us", "ctrl_us"), ("fr", "ctrl_us"), ("fr", "alt_keypad")):
            events = emulate(PACK, layout, separators=style)
            run = _decoder(layout, events)
            assert run() == PACK
            ev_p50, ev_p99 = p50_p99(
                sample(_event_baseline(events), args.rounds, clock, warm=False)
            )
            p50, p99 = p50_p99(sample(run, args.rounds, clock, warm=False))
            print(
                f"{layout} ({style}, {len(events)} events): p50 {p50:.1f} µs  p99 {p99:.1f} µs"
                f"  = ×{p50 / base_p50:.0f} / ×{p99 / base_p99:.0f} the per-character baseline,"
                f" ×{p50 / ev_p50:.1f} / ×{p99 / ev_p99:.1f} the per-event one (p50 {ev_p50:.1f} µs)"
            )
            timings = {}
            for via_key_event in (True, False):
                decoder = _evdev_decoder(layout, events, via_key_event=via_key_event)
                assert decoder() == PACK
                timings[via_key_event] = p50_p99(sample(decoder, args.rounds, clock, warm=False))
            (old_p50, old_p99), (new_p50, new_p99) = timings[True], timings[False]
            print(
                f"  from evdev.InputEvent: KeyEvent.from_evdev + feed p50 {old_p50:.1f} µs"
                f"  p99 {old_p99:.1f} µs; feed_fields p50 {new_p50:.1f} µs  p99 {new_p99:.1f} µs"
                f"  (×{new_p50 / old_p50:.2f} / ×{new_p99 / old_p99:.2f},"
                f" {(old_p50 - new_p50) * 1000 / len(events):.0f} ns less per event at p50)"
            )


if __name__ == "__main__":
    main()
