"""Benchmark: the whole decode of one scan (text → pack, and key events → pack), p50/p99 in µs.

Cases: GS1 text with AIM id; GS1 text whose separators were dropped (the split enumeration);
an IFA PPN code; key events of one scan split and decoded under a fixed layout (us, fr); layout
``auto`` (every one of the 29 layouts tried); a wrong fixed layout (the failure path, which
also tries the other layouts to name the right one); and ``decode_keys`` alone on a trace
split beforehand (the decoder's share, without the event splitting). The baseline, run in the same process on
the same text, is ``biip.parse`` alone (which neither validates the FMD rules nor enumerates
splits). Measured with wall time and with the thread's CPU time (which leaves out the time the
process was not scheduled: on a loaded machine wall p99 is mostly other processes). Run:
``.venv/bin/python bench/bench_decode.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import biip
from timing import p50_p99, sample

from gateway.codes import DecodeSettings, decode_keys, decode_text
from gateway.codes.keyboard import (
    GS,
    KeyboardSettings,
    KeyEvent,
    ScanSplitter,
    emulate,
    type_trace,
)

GS1 = "]d2" + "0103400936040540" + "17270500" + "102A45B" + GS + "21Hx9kQ2mP7vT"
GS1_NO_SEPARATOR = GS1.replace(GS, "")
PPN = "[)>\x1e06\x1d9N110375286414\x1d1T4711ab\x1dD270900\x1dS8K2L9P3Q\x1e\x04"


def _text_decoder(text: str, expect_ok: bool = True) -> Callable[[], object]:
    settings = DecodeSettings()

    def run() -> object:
        scan = decode_text(text, settings)
        assert scan.ok is expect_ok, scan.problems
        return scan

    return run


def _key_decoder(
    events: list[KeyEvent], layout: str, expect_ok: bool = True
) -> Callable[[], object]:
    settings = DecodeSettings(keyboard=KeyboardSettings(layout=layout))

    def run() -> object:
        splitter = ScanSplitter(settings.keyboard)
        for event in events:
            trace = splitter.feed(event)
            if trace is not None:
                scan = decode_keys(trace, settings)
                assert scan.ok is expect_ok, scan.problems
                return scan
        raise AssertionError("the scan did not end")

    return run


def _trace_decoder(events: list[KeyEvent], layout: str) -> Callable[[], object]:
    """decode_keys alone, on a trace split beforehand: the decoder's share of a key scan."""
    settings = DecodeSettings(keyboard=KeyboardSettings(layout=layout))
    splitter = ScanSplitter(settings.keyboard)
    (trace,) = [t for t in map(splitter.feed, events) if t is not None]

    def run() -> object:
        scan = decode_keys(trace, settings)
        assert scan.ok, scan.problems
        return scan

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5_000)
    args = parser.parse_args()
    us_events = emulate(GS1, "us")
    fr_events = emulate(GS1, "fr")
    # What a PC set to us shows when an AZERTY scanner types the pack: no field can be read, so
    # the layout pairs are tried for the hint (the ratio is to biip.parse on the true text).
    no_aim = GS1[3:]  # the AIM flag is AltGr+KEY_MINUS on AZERTY, which us does not type
    (fr_trace,) = [t for t in map(ScanSplitter().feed, emulate(no_aim, "fr")) if t is not None]
    azerty_on_us = type_trace(fr_trace, "us").text
    cases: list[tuple[str, str, Callable[[], object]]] = [
        ("text GS1", GS1, _text_decoder(GS1)),
        ("text GS1, GS dropped", GS1_NO_SEPARATOR, _text_decoder(GS1_NO_SEPARATOR)),
        ("text IFA PPN", PPN, _text_decoder(PPN)),
        ("text AZERTY on us host (hint)", no_aim, _text_decoder(azerty_on_us, expect_ok=False)),
        (f"keys us ({len(us_events)} events)", GS1, _key_decoder(us_events, "us")),
        (f"keys fr ({len(fr_events)} events)", GS1, _key_decoder(fr_events, "fr")),
        ("keys us, layout auto", GS1, _key_decoder(us_events, "auto")),
        ("keys fr, layout auto", GS1, _key_decoder(fr_events, "auto")),
        ("keys fr read as de (error path)", GS1, _key_decoder(fr_events, "de", expect_ok=False)),
        ("decode_keys only, fr", GS1, _trace_decoder(fr_events, "fr")),
        ("decode_keys only, fr, layout auto", GS1, _trace_decoder(fr_events, "auto")),
    ]
    print(f"{len(GS1)}-character GS1 pack; load average {os.getloadavg()[0]:.2f}")
    for clock_name, clock in (("wall", time.perf_counter_ns), ("thread CPU", time.thread_time_ns)):
        print(
            f"-- {clock_name} time per scan (µs); ratio = p50 / p50 of biip.parse on the same text"
        )
        baselines: dict[str, float] = {}
        for name, text, run in cases:
            if text not in baselines:
                baselines[text] = p50_p99(sample(lambda t=text: biip.parse(t), args.rounds, clock))[
                    0
                ]
            p50, p99 = p50_p99(sample(run, args.rounds, clock))
            print(
                f"{name:34} p50 {p50:7.1f}  p99 {p99:7.1f}  ×{p50 / baselines[text]:.2f} biip.parse"
                f" (p50 {baselines[text]:.1f})"
            )


if __name__ == "__main__":
    main()
