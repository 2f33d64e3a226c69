"""Layout ``auto`` on ordinary streams: how many scans decode exactly, how many are refused, how
many are wrong (must be 0), and after how many scans each scanner's layout is settled.

For each scanner layout, a stream of real-shaped French/German/… packs (GTIN with its check
digit, upper-case batches such as ``HYM21074-25A``, 12–20 character serials, mixed case in
some) is typed as key events by a scanner set to that layout (:func:`emulate`) and decoded in
order, twice in the same process:

- **per scan** (the gateway before layout learning: every scan judged alone), and
- **learned** (one :class:`~gateway.codes.layout_belief.LayoutBelief` carried through the
  stream, as the daemon keeps one per scanner), and
- **card first** (the same, after one scan of the calibration card).

It also prints the CPU time per scan (p50/p99) of both, learned from a settled belief.

    .venv/bin/python bench/bench_layout_learning.py [--packs 139] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import string
import time

from timing import p50_p99

from gateway.codes.calibration_code import CALIBRATION_AIM, CALIBRATION_PAYLOAD
from gateway.codes.decode import DecodeSettings, decode_keys
from gateway.codes.keyboard import GS, CannotType, KeyboardSettings, KeyTrace, ScanSplitter, emulate
from gateway.codes.layout_belief import LayoutBelief
from gateway.codes.pack import PackIdentifier

LAYOUTS = ("us", "gb", "fr", "de", "be", "it", "ch", "nl", "es")
SETTINGS = DecodeSettings(keyboard=KeyboardSettings(layout="auto"))


def gtin(rng: random.Random) -> str:
    body = rng.choice(["03400", "04150", "08001", "05000", "07612"]) + "".join(
        rng.choices(string.digits, k=8)
    )
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def real_shaped_pack(rng: random.Random) -> PackIdentifier:
    upper = string.ascii_uppercase + string.digits
    batch = "".join(rng.choices(upper, k=rng.randint(4, 8)))
    if rng.random() < 0.3:
        batch += rng.choice("-/.") + "".join(rng.choices(upper, k=rng.randint(1, 3)))
    alphabet = upper if rng.random() < 0.8 else string.ascii_letters + string.digits
    serial = "".join(rng.choices(alphabet, k=rng.randint(12, 20)))
    month = rng.randint(1, 12)
    expiry = f"{rng.randint(26, 31):02d}{month:02d}{rng.choice([0, rng.randint(1, 28)]):02d}"
    return PackIdentifier("GTIN", gtin(rng), batch, expiry, serial, aim="]d2")


def text_of(pack: PackIdentifier) -> str:
    return f"]d201{pack.product_code}17{pack.expiry}10{pack.batch}{GS}21{pack.serial}"


def trace_of(text: str, layout: str) -> KeyTrace | None:
    try:
        events = emulate(text, layout)
    except CannotType:
        return None
    splitter = ScanSplitter(SETTINGS.keyboard)
    traces = [t for t in map(splitter.feed, events) if t is not None]
    return traces[0]


def run_stream(
    layout: str, packs: list[PackIdentifier], learn: bool, card_first: bool = False
) -> dict[str, object]:
    belief = LayoutBelief.fresh(SETTINGS.auto_layouts) if learn else None
    if card_first:
        card = trace_of(CALIBRATION_AIM + CALIBRATION_PAYLOAD, layout)
        assert card is not None
        belief = decode_keys(card, SETTINGS, belief).belief
    exact = refused = wrong = typed = 0
    settled_after: int | None = None
    for number, pack in enumerate(packs, 1):
        trace = trace_of(text_of(pack), layout)
        if trace is None:
            continue
        typed += 1
        scan = decode_keys(trace, SETTINGS, belief)
        if learn:
            belief = scan.belief
            if settled_after is None and belief is not None and belief.settled:
                settled_after = number
        if scan.ok and scan.pack is not None:
            if scan.pack == pack:
                exact += 1
            else:
                wrong += 1
        else:
            refused += 1
    return {
        "scans": typed,
        "exact": exact,
        "refused": refused,
        "wrong": wrong,
        "settled": settled_after,
        "belief": belief,
    }


def cpu_per_scan(
    layout: str, packs: list[PackIdentifier], belief: LayoutBelief | None
) -> list[float]:
    traces = [t for t in (trace_of(text_of(p), layout) for p in packs) if t is not None]
    samples = []
    for trace in traces:
        started = time.thread_time_ns()
        decode_keys(trace, SETTINGS, belief)
        samples.append((time.thread_time_ns() - started) / 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packs", type=int, default=139)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    packs = [real_shaped_pack(rng) for _ in range(args.packs)]
    print(f"{args.packs} real-shaped packs per scanner layout, layout = auto, seed {args.seed}")
    print(
        f"{'layout':7} {'per scan':>11} {'learned':>11} {'settled after':>14} "
        f"{'card first':>11}  learned as"
    )
    modes = {"per scan": {}, "learned": {}, "card first": {}}  # type: dict[str, dict[str, int]]
    learned_cpu: list[float] = []
    alone_cpu: list[float] = []
    for layout in LAYOUTS:
        results = {
            "per scan": run_stream(layout, packs, learn=False),
            "learned": run_stream(layout, packs, learn=True),
            "card first": run_stream(layout, packs, learn=True, card_first=True),
        }
        for mode, result in results.items():
            for key in ("scans", "exact", "wrong"):
                modes[mode][key] = modes[mode].get(key, 0) + int(str(result[key]))
        belief = results["learned"]["belief"]
        assert isinstance(belief, LayoutBelief)
        shown = {m: f"{r['exact']}/{r['scans']}" for m, r in results.items()}
        print(
            f"{layout:7} {shown['per scan']:>11} {shown['learned']:>11} "
            f"{results['learned']['settled'] or '-':>14} {shown['card first']:>11}  "
            f"{'/'.join(belief.candidates)}"
        )
        alone_cpu += cpu_per_scan(layout, packs, None)
        learned_cpu += cpu_per_scan(layout, packs, belief)
    for mode, total in modes.items():
        scans, exact, wrong = total["scans"], total["exact"], total["wrong"]
        print(f"{mode:10}: {exact}/{scans} exact ({100 * exact / scans:.1f} %), {wrong} wrong")
    for label, samples in (("per scan", alone_cpu), ("learned (settled)", learned_cpu)):
        p50, p99 = p50_p99(samples)
        print(f"CPU per scan, {label}: p50 {p50:.0f} µs, p99 {p99:.0f} µs")
    a50, _ = p50_p99(alone_cpu)
    l50, _ = p50_p99(learned_cpu)
    print(f"ratio learned / per scan (p50): {l50 / a50:.2f}")


if __name__ == "__main__":
    main()
