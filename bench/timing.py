"""Timing helpers shared by the benchmarks: sample a callable, and cut p50/p99.

Run any benchmark as a script (``.venv/bin/python bench/bench_x.py``); this module is imported
from the script's own folder.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable


def sample(
    run: Callable[[], object], rounds: int, clock: Callable[[], int], *, warm: bool = True
) -> list[float]:
    """``rounds`` timings of ``run`` in µs by ``clock`` (a ``*_ns`` clock: wall or thread CPU).
    ``warm`` runs it once first so caches (layout tables, typed keystrokes) are filled."""
    if warm:
        run()
    samples = []
    for _ in range(rounds):
        started = clock()
        run()
        samples.append((clock() - started) / 1000)
    return samples


def p50_p99(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]
