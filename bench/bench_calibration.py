"""Benchmark: diagnosing one calibration scan (``diagnose_keys``) against its floor.

The diagnosis types the key trace under every layout (29) and matches the card's payload; the
baseline, run in the same process, is exactly that typing alone (``type_trace`` × 29 layouts),
so the ratio is the cost of the matching and classification on top. Cases: a French scanner
with AIM and Ctrl+] (found in the first reading), and an upper-casing German scanner that
drops GS (every reading tried). Prints p50/p99 in ms of wall time. Run:
``.venv/bin/python bench/bench_calibration.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from timing import p50_p99, sample

from gateway.codes.keyboard import LAYOUTS, KeyTrace, ScanSplitter, emulate, type_trace
from gateway.selftest.calibration import diagnose_keys
from gateway.selftest.card_codes import CALIBRATION_AIM, CALIBRATION_PAYLOAD


def _trace(text: str, layout: str, separators: str) -> KeyTrace:
    splitter = ScanSplitter()
    for event in emulate(text, layout, separators=separators):  # type: ignore[arg-type]
        trace = splitter.feed(event)
        if trace is not None:
            return trace
    raise AssertionError("the scan did not end")


def _ms(run: Callable[[], object], rounds: int) -> tuple[float, float]:
    p50, p99 = p50_p99(sample(run, rounds, time.perf_counter_ns, warm=False))
    return p50 / 1000, p99 / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    rounds = parser.parse_args().rounds
    cases = {
        "fr, AIM, Ctrl+]": _trace(CALIBRATION_AIM + CALIBRATION_PAYLOAD, "fr", "ctrl_layout"),
        "de, upper case, GS dropped": _trace(CALIBRATION_PAYLOAD.upper(), "de", "dropped"),
    }
    print(f"{'case':<28} {'diagnose p50/p99 ms':>20} {'baseline p50/p99 ms':>20} {'ratio p50':>9}")
    for name, trace in cases.items():
        found = diagnose_keys("bench", trace)
        assert found.matched, name
        p50, p99 = _ms(lambda trace=trace: diagnose_keys("bench", trace), rounds)
        b50, b99 = _ms(
            lambda trace=trace: [type_trace(trace, layout) for layout in LAYOUTS], rounds
        )
        print(f"{name:<28} {p50:>9.2f} / {p99:<8.2f} {b50:>9.2f} / {b99:<8.2f} {p50 / b50:>9.2f}")


if __name__ == "__main__":
    main()
