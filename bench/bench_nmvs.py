"""Benchmark: the NMVS link on loopback — our Arvato client against a bare httpx POST.

Starts the simulator as a separate process (``nmvs-gateway nmvs-sim``, plain HTTP and mutual
TLS with trustme certificates), then for each concurrency (1, 8, 32 by default) sends G110
verifies two ways in the same process:

* **bare**: one pooled ``httpx.AsyncClient`` POSTing a pre-built G110 body (the floor: what
  any client pays for HTTP + the simulator's own work);
* **client**: ``ArvatoClient.execute(VERIFY, …)`` — field checks, XML building with lxml,
  safe parsing, classification, logging.

Prints requests/second, p50/p99 latency (ms) and this process's CPU time per request (the
client side's own cost, which other load on the machine does not inflate) of both, and the
ratios client/bare. Run:
``.venv/bin/python bench/bench_nmvs.py [--requests N] [--concurrency 1 8 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog
import trustme
from lxml import etree

from gateway.codes.pack import PackIdentifier
from gateway.nmvs.arvato import ArvatoClient, ArvatoConfig, Secret
from gateway.nmvs.arvato.soap import CONTENT_TYPE, parse_answer, single_pack_request
from gateway.vocabulary import Operation

PASSWORD = "Bench-Secret-1!"
PACK = PackIdentifier("GTIN", "05000456013482", "B1", "301231", "SN0001")


@dataclass(frozen=True)
class Run:
    rps: float
    p50: float
    p99: float
    cpu_us: float  # this process's CPU per request: the client side's own cost, load-proof


def write_market(directory: Path) -> Path:
    market = {
        "users": [{"client_login_id": "PHARMA01", "user_id": "SITE0001", "password": PASSWORD}],
        "products": [
            {
                "scheme": "GTIN",
                "product_code": PACK.product_code,
                "withdrawn": False,
                "batches": [
                    {"id": "B1", "expiry": "301231", "recalled": False, "serials": [PACK.serial]}
                ],
            }
        ],
    }
    path = directory / "market.json"
    path.write_text(json.dumps(market))
    return path


def write_pki(directory: Path) -> list[str]:
    """A CA, the simulator's certificate and a client's (``client.pem``/``client.key``) in
    ``directory``; returns the simulator's HTTPS options."""
    ca = trustme.CA()
    (directory / "ca.pem").write_bytes(ca.cert_pem.bytes())
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    client = ca.issue_cert("bench.pharmacy.test")
    client.cert_chain_pems[0].write_to_path(str(directory / "client.pem"))
    client.private_key_pem.write_to_path(str(directory / "client.key"))
    return [
        "--cert", str(directory / "server.pem"), "--key", str(directory / "server.key"),
        "--client-ca", str(directory / "ca.pem"),
    ]  # fmt: skip


def start_simulator(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "nmvs-sim", "--listen", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    if not first.startswith("listening "):
        process.kill()
        raise SystemExit(f"simulator did not start: {first!r}")
    return process, first.removeprefix("listening ")


async def measure(send: Callable[[int], Awaitable[None]], requests: int, workers: int) -> Run:
    latencies: list[float] = []
    counter = iter(range(requests))

    async def worker() -> None:
        for index in counter:
            started = time.perf_counter()
            await send(index)
            latencies.append((time.perf_counter() - started) * 1000)

    for index in range(min(50, requests)):  # warm the pool and both code paths
        await send(-1 - index)
    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    cuts = statistics.quantiles(latencies, n=100)
    return Run(requests / elapsed, cuts[49], cuts[98], cpu / requests * 1e6)


async def bench_mode(
    url: str, config: ArvatoConfig, concurrency: list[int], requests: int
) -> list[tuple[int, Run, Run]]:
    body = single_pack_request("G110", config.credentials(), PACK, "0" * 32)
    verify: ssl.SSLContext | bool = config.ssl_context() if config.uses_tls else True
    rows = []
    for workers in concurrency:
        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        async with httpx.AsyncClient(verify=verify, limits=limits) as bare:

            async def post(_: int, http: httpx.AsyncClient = bare) -> None:
                response = await http.post(
                    url, content=body, headers={"Content-Type": CONTENT_TYPE}
                )
                response.raise_for_status()

            bare_run = await measure(post, requests, workers)
        sized = ArvatoConfig(**{**config.__dict__, "max_connections": workers})
        async with ArvatoClient(sized) as client:

            async def verify_pack(index: int, arvato: ArvatoClient = client) -> None:
                result = await arvato.execute(
                    Operation.VERIFY, PACK, client_trx_id=f"{index & 0xFFFFFFFF:032x}"
                )
                if not result.success:
                    raise SystemExit(f"unexpected answer {result.return_code}")

            client_run = await measure(verify_pack, requests, workers)
        rows.append((workers, bare_run, client_run))
    return rows


def codec_cost(config: ArvatoConfig, rounds: int = 5000) -> tuple[float, float, float]:
    """Thread-CPU µs (p50, p99) to build one G110 and read one answer, and the p50 of a bare
    ``lxml.etree.fromstring`` of the same answer: the client's XML work without any network."""
    credentials = config.credentials()
    answer = (
        b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>'
        b'<ns2:G110Response xmlns:ns2="urn:wsdltypes.nmvs.eu:v5.0" xmlns:ns1="urn:types.nmvs.eu:v5.0">'
        b"<ns1:Header><ns1:Transaction><ns1:Language>eng</ns1:Language>"
        b"<ns1:ClientTrxId>" + b"0" * 32 + b"</ns1:ClientTrxId>"
        b"<ns1:NMVSTrxId>" + b"N" * 32 + b"</ns1:NMVSTrxId>"
        b"<ns1:Timestamp>2026-01-31T10:15:02.123Z</ns1:Timestamp></ns1:Transaction></ns1:Header>"
        b'<ns1:Body><ns1:Pack ns1:sn="SN0001" ns1:state="ACTIVE"/>'
        b'<ns1:ReturnCode ns1:code="NMVS_SUCCESS" ns1:desc="ok"/></ns1:Body>'
        b"</ns2:G110Response></env:Body></env:Envelope>"
    )

    def timed(run: Callable[[], object]) -> list[float]:
        samples = []
        for _ in range(rounds):
            started = time.thread_time_ns()
            run()
            samples.append((time.thread_time_ns() - started) / 1000)
        return samples

    ours = timed(
        lambda: parse_answer(
            answer if single_pack_request("G110", credentials, PACK, "0" * 32) else b"",
            "G110Response",
        )
    )
    bare = timed(lambda: etree.fromstring(answer))
    ours_cuts, bare_cuts = statistics.quantiles(ours, n=100), statistics.quantiles(bare, n=100)
    return ours_cuts[49], ours_cuts[98], bare_cuts[49]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        market = write_market(directory)
        tls_args = write_pki(directory)
        base = {
            "client_login_id": "PHARMA01",
            "user_id": "SITE0001",
            "password": Secret(PASSWORD),
            "software_supplier": "bench",
            "read_timeout": 30.0,
            "pool_timeout": 30.0,
        }
        print(
            f"{args.requests} G110 verifies per row; latency in ms; cpu = this process's CPU "
            "µs per request (simulator excluded); ratio = client / bare"
        )
        print(
            f"{'mode':<6}{'conc':>5} |{'bare rps':>9}{'p50':>8}{'p99':>8}{'cpu':>7} |"
            f"{'client rps':>11}{'p50':>8}{'p99':>8}{'cpu':>7} |"
            f"{'rps':>6}{'p50':>6}{'p99':>6}{'cpu':>6}"
        )
        config = ArvatoConfig(endpoint="http://127.0.0.1:1/x", **base)  # type: ignore[arg-type]
        p50, p99, parse_only = codec_cost(config)
        print(
            f"codec (build G110 + read answer, thread CPU): p50 {p50:.0f} µs, p99 {p99:.0f} µs; "
            f"bare lxml parse of the answer p50 {parse_only:.0f} µs (ratio {p50 / parse_only:.1f})"
        )
        for mode, sim_args in (("plain", ["--plain-http"]), ("tls", tls_args)):
            process, url = start_simulator(["--packs", str(market), *sim_args])
            try:
                endpoint = url + "/WS_SINGLE_TRANSACTIONS_V1/SinglePackServiceV50"
                tls = (
                    {
                        "cert_file": directory / "client.pem",
                        "key_file": directory / "client.key",
                        "ca_file": directory / "ca.pem",
                    }
                    if mode == "tls"
                    else {}
                )
                config = ArvatoConfig(endpoint=endpoint, **base, **tls)  # type: ignore[arg-type]
                rows = asyncio.run(bench_mode(endpoint, config, args.concurrency, args.requests))
            finally:
                process.terminate()
                process.wait(timeout=10)
            for workers, bare, ours in rows:
                print(
                    f"{mode:<6}{workers:>5} |{bare.rps:>9.0f}{bare.p50:>8.2f}{bare.p99:>8.2f}"
                    f"{bare.cpu_us:>7.0f} |{ours.rps:>11.0f}{ours.p50:>8.2f}{ours.p99:>8.2f}"
                    f"{ours.cpu_us:>7.0f} |{ours.rps / bare.rps:>6.2f}{ours.p50 / bare.p50:>6.2f}"
                    f"{ours.p99 / bare.p99:>6.2f}{ours.cpu_us / bare.cpu_us:>6.2f}"
                )


if __name__ == "__main__":
    main()
