"""Benchmark: the simulator's own cost per single-pack request, in process, no network.

For one G110 body (hand-written, as in tests/simulator) and a generated market, measures per
request in the same process:

* **baseline**: ``lxml.etree.fromstring`` of the body (the floor of any XML service);
* **parse**: ``soap.parse_request`` (safe parser + XSD-constraint checks);
* **full**: parse + ``Market.single`` (rules, records) + ``render_answer``.

Prints p50/p99 in microseconds and the ratios to the baseline. The HTTP-level figures (bare
httpx POST against the simulator at concurrency 1/8/32) are in ``bench/bench_nmvs.py``. Run:
``.venv/bin/python bench/bench_simulator.py [--requests N] [--packs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from lxml import etree

from gateway.simulator.market import Market
from gateway.simulator.marketfile import DEFAULT_USERS, generate_market
from gateway.simulator.soap import SingleCall, parse_request, render_answer


def body(product: str, batch: str, expiry: str, serial: str) -> bytes:
    user = DEFAULT_USERS[0]
    return (
        '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:w="urn:wsdltypes.nmvs.eu:v5.0" xmlns:t="urn:types.nmvs.eu:v5.0"><e:Body>'
        f"<w:G110Request><t:Header><t:Auth><t:ClientLoginId>{user.client_login_id}</t:ClientLoginId>"
        f"<t:UserId>{user.user_id}</t:UserId><t:Password>{user.password}</t:Password></t:Auth>"
        '<t:UserSoftware t:name="bench" t:supplier="bench" t:version="1"/>'
        "<t:Transaction><t:ClientTrxId>0f3c9d2e7a514b0c8e11d2a3b4c5d6e7</t:ClientTrxId>"
        "<t:Language>eng</t:Language></t:Transaction></t:Header><t:Body><t:Product>"
        f'<t:ProductCode t:scheme="GTIN">{product}</t:ProductCode><t:Batch><t:Id>{batch}</t:Id>'
        f'<t:ExpDate>{expiry}</t:ExpDate></t:Batch></t:Product><t:Pack t:sn="{serial}"/>'
        "</t:Body></w:G110Request></e:Body></e:Envelope>"
    ).encode()


def measure(run: Callable[[], object], requests: int) -> tuple[list[float], list[float]]:
    """Wall and thread-CPU microseconds per call (CPU time is immune to a loaded machine's
    preemption, which dominates the wall p99 on a shared box)."""
    for _ in range(min(200, requests)):
        run()
    wall, cpu = [], []
    for _ in range(requests):
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        run()
        cpu.append((time.thread_time_ns() - start_cpu) / 1000)
        wall.append((time.perf_counter_ns() - start) / 1000)
    return sorted(wall), sorted(cpu)


def percentiles(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--packs", type=int, default=100_000)
    args = parser.parse_args()
    data = generate_market(args.packs, today=datetime.now(UTC).date(), seed=1)
    market = Market(data)
    product = data.products[0]
    batch = product.batches[0]
    xml = body(product.product_code, batch.id, batch.expiry, batch.serials[0])

    def full() -> bytes:
        call = parse_request(xml, "single")
        assert isinstance(call, SingleCall)
        req = call.request
        answer = market.single(call.header, req)
        return render_answer(
            call.operation,
            call.header,
            answer,
            product=(req.scheme, req.product_code, req.batch, req.expiry),
            serial=req.serial,
        )

    results = {
        "baseline (lxml fromstring)": measure(lambda: etree.fromstring(xml), args.requests),
        "parse_request": measure(lambda: parse_request(xml, "single"), args.requests),
        "parse + rules + render": measure(full, args.requests),
    }
    base_p50 = percentiles(results["baseline (lxml fromstring)"][0])[0]
    print(f"simulator, in process: {args.requests} G110 requests, market of {args.packs} packs")
    print(
        f"{'stage':<28}{'wall p50 µs':>12}{'wall p99':>10}{'cpu p50':>10}{'cpu p99':>10}"
        f"{'× baseline p50':>16}"
    )
    for name, (wall, cpu) in results.items():
        (p50, p99), (c50, c99) = percentiles(wall), percentiles(cpu)
        print(f"{name:<28}{p50:>12.1f}{p99:>10.1f}{c50:>10.1f}{c99:>10.1f}{p50 / base_p50:>16.1f}")


if __name__ == "__main__":
    main()
