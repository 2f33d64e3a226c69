"""Fault injection for the simulator (``POST /_sim/faults``): what goes wrong, and how often.

The plan is plain data parsed from JSON; :class:`FaultInjector` draws from it with its own
seeded random generator so a test run is reproducible. Pings are never faulted (clients use
them as a reachability probe). JSON (every key optional; ``{}`` clears all faults)::

    {"latency_ms": 300 | {"uniform": [100, 900]} | {"normal": [300, 50]},
     "http_500_rate": 0.1,      # HTTP 500, request not processed
     "rate_limit_rate": 0.1,    # HTTP 429 + NMVS_FI_SE_CLI_01, not processed
     "reset_before_rate": 0.1,  # connection reset before processing: no state change
     "reset_after_rate": 0.1,   # processed (state changed), then connection reset: no answer
     "timeout_code_rate": 0.1,  # processed, then answered NMVS_TI_TO_01 (ambiguous)
     "apply_late_rate": 0.1,    # connection reset at once, processed apply_late_ms later
     "apply_late_ms": 40000,    # (default 40 s: an NMVS applying a change after our verify)
     "next": {"count": 2, "fault": "reset_after"},   # the next N requests, before any rate
     "seed": 7}

``next.fault`` is one of the rate names without ``_rate``, or ``"latency"`` with its own
``"latency_ms"`` (e.g. to trigger a client read timeout).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Literal, get_args

FaultKind = Literal[
    "http_500",
    "rate_limit",
    "reset_before",
    "reset_after",
    "timeout_code",
    "apply_late",
    "latency",
]
RATE_KINDS: tuple[FaultKind, ...] = tuple(k for k in get_args(FaultKind) if k != "latency")
APPLY_LATE_MS = 40_000.0
_LATENCY_FORMS = '"latency_ms": N, {"uniform": [MIN, MAX]} or {"normal": [MEAN, STDDEV]}'


class FaultConfigError(ValueError):
    """The faults JSON is wrong; the message says which key and why."""


@dataclass(frozen=True, slots=True)
class Latency:
    kind: Literal["fixed", "uniform", "normal"]
    a: float
    b: float = 0.0

    def draw(self, rng: random.Random) -> float:
        """Milliseconds to wait (never negative)."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        return max(0.0, rng.gauss(self.a, self.b))


@dataclass(frozen=True, slots=True)
class FaultPlan:
    latency: Latency | None = None
    rates: tuple[tuple[FaultKind, float], ...] = ()
    next_fault: FaultKind | None = None
    next_count: int = 0
    next_latency: Latency | None = None
    apply_late_ms: float = APPLY_LATE_MS
    seed: int | None = None
    source: dict[str, Any] | None = None


def finite_number(raw: object) -> float | None:
    """``raw`` as a float if it is a JSON number that a float holds exactly enough (not a
    boolean, NaN, an infinity or an integer too large for a float), else None."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    try:
        value = float(raw)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _number(raw: object, where: str) -> float:
    value = finite_number(raw)
    if value is None or value < 0:
        raise FaultConfigError(f"{where} must be a finite non-negative number, not {raw!r}")
    return value


def _latency(raw: object, where: str) -> Latency:
    if isinstance(raw, dict) and len(raw) == 1:
        ((form, values),) = raw.items()
        if form in ("uniform", "normal") and isinstance(values, list) and len(values) == 2:
            a, b = (_number(v, f"{where}.{form}[{i}]") for i, v in enumerate(values))
            if form == "uniform" and b < a:
                raise FaultConfigError(f"{where}.uniform must be [MIN, MAX] with MIN <= MAX")
            return Latency(form, a, b)
    elif not isinstance(raw, dict):
        return Latency("fixed", _number(raw, where))
    raise FaultConfigError(f"{where} must be one of {_LATENCY_FORMS}")


def parse_faults(raw: object) -> FaultPlan:
    if not isinstance(raw, dict):
        raise FaultConfigError("the faults must be a JSON object")
    allowed = {
        "latency_ms",
        "next",
        "seed",
        "apply_late_ms",
        *(f"{kind}_rate" for kind in RATE_KINDS),
    }
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise FaultConfigError(
            f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )
    rates: list[tuple[FaultKind, float]] = []
    for kind in RATE_KINDS:
        if f"{kind}_rate" in raw:
            rate = _number(raw[f"{kind}_rate"], f"{kind}_rate")
            if rate > 1:
                raise FaultConfigError(f"{kind}_rate must be between 0 and 1, not {rate}")
            rates.append((kind, rate))
    if sum(rate for _, rate in rates) > 1:
        raise FaultConfigError("the fault rates must add up to at most 1")
    seed = raw.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise FaultConfigError(f"seed must be an integer, not {seed!r}")
    next_fault, next_count, next_latency = _next(raw.get("next"))
    return FaultPlan(
        latency=_latency(raw["latency_ms"], "latency_ms") if "latency_ms" in raw else None,
        rates=tuple(rates),
        next_fault=next_fault,
        next_count=next_count,
        next_latency=next_latency,
        apply_late_ms=_number(raw.get("apply_late_ms", APPLY_LATE_MS), "apply_late_ms"),
        seed=seed,
        source=raw,
    )


def _next(raw: object) -> tuple[FaultKind | None, int, Latency | None]:
    if raw is None:
        return None, 0, None
    kinds = (*RATE_KINDS, "latency")
    if not isinstance(raw, dict) or set(raw) - {"count", "fault", "latency_ms"}:
        raise FaultConfigError('next must be {"count": N, "fault": KIND} (optionally "latency_ms")')
    count, fault = raw.get("count"), raw.get("fault")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise FaultConfigError(f"next.count must be a positive integer, not {count!r}")
    for kind in kinds:
        if fault == kind:
            if kind == "latency":
                if "latency_ms" not in raw:
                    raise FaultConfigError('next.fault "latency" needs next.latency_ms')
                return kind, count, _latency(raw["latency_ms"], "next.latency_ms")
            return kind, count, None
    raise FaultConfigError(f"next.fault must be one of {', '.join(kinds)}, not {fault!r}")


class FaultInjector:
    """Decides the fault of each request; the server asks once per non-ping request."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.configure(plan or FaultPlan())

    def configure(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._remaining = plan.next_count
        self._rng = random.Random(plan.seed)  # noqa: S311 - fault sampling, not security

    def draw(self) -> tuple[FaultKind | None, float]:
        """This request's fault (None = none) and the latency to add first, in seconds."""
        plan = self.plan
        latency = plan.latency.draw(self._rng) if plan.latency else 0.0
        if self._remaining > 0:
            self._remaining -= 1
            if plan.next_latency is not None:
                latency += plan.next_latency.draw(self._rng)
            return plan.next_fault, latency / 1000
        roll = self._rng.random()
        for kind, rate in plan.rates:
            if roll < rate:
                return kind, latency / 1000
            roll -= rate
        return None, latency / 1000

    def describe(self) -> dict[str, Any]:
        return {"faults": self.plan.source or {}, "next_remaining": self._remaining}
