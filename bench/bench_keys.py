"""Benchmark: key events of one scan → ScanSplitter → type_trace, per scan, under ``us`` and ``fr``.

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


if __name__ == "__main__":
    main()
