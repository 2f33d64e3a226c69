"""Benchmark: the Solidsoft REST link on loopback — our client against a bare httpx GET.

Starts the simulator's REST face as a separate process (``nmvs-gateway nmvs-sim --protocol
solidsoft-rest``, plain HTTP and mutual TLS with trustme certificates), then for each
concurrency sends verifies two ways in the same process:

* **bare**: one pooled ``httpx.AsyncClient`` GETting a pre-built pack URL with a token fetched
  once (the floor: HTTP + the simulator's own work);
* **client**: ``SolidsoftClient.execute(VERIFY, …)`` — the pack's checks, percent-encoding,
  the token cache, JSON reading, classification and logging.

Prints requests/second, p50/p99 latency (ms) and this process's CPU time per request of both,
and the ratios client/bare. Run:
``.venv/bin/python bench/bench_solidsoft.py [--requests N] [--concurrency 1 8 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import tempfile
from pathlib import Path

import httpx
import structlog
from bench_nmvs import PACK, PASSWORD, Run, measure, start_simulator, write_market, write_pki

from gateway.nmvs.secret import Secret
from gateway.nmvs.solidsoft import SolidsoftClient, SolidsoftConfig
from gateway.nmvs.solidsoft.request import pack_path
from gateway.nmvs.tls import ClientTls
from gateway.vocabulary import Operation


async def bench_mode(
    config: SolidsoftConfig, concurrency: list[int], requests: int
) -> list[tuple[int, Run, Run]]:
    verify: ssl.SSLContext | bool = config.ssl_context() if config.uses_tls else True
    url = config.api_url + pack_path(PACK)
    rows = []
    for workers in concurrency:
        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        async with httpx.AsyncClient(verify=verify, limits=limits) as bare:
            form = {
                "grant_type": "client_credentials",
                "client_id": config.client_id,
                "client_secret": config.client_secret.reveal(),
            }
            token = (await bare.post(config.token_url, data=form)).json()["access_token"]
            headers = {
                "Authorization": f"Bearer {token}",
                "emvs-data-entry-mode": "non-manual",
                "Accept": "application/json",
            }

            async def get(
                _: int, http: httpx.AsyncClient = bare, sent: dict[str, str] = headers
            ) -> None:
                response = await http.get(url, headers=sent)
                response.raise_for_status()

            bare_run = await measure(get, requests, workers)
        sized = SolidsoftConfig(**{**config.__dict__, "max_connections": workers})
        async with SolidsoftClient(sized) as client:

            async def verify_pack(index: int, solidsoft: SolidsoftClient = client) -> None:
                result = await solidsoft.execute(
                    Operation.VERIFY, PACK, client_trx_id=f"{index & 0xFFFFFFFF:032x}"
                )
                if not result.success:
                    raise SystemExit(f"unexpected answer {result.return_code}")

            client_run = await measure(verify_pack, requests, workers)
        rows.append((workers, bare_run, client_run))
    return rows


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
        tls = ClientTls(
            cert_file=directory / "client.pem",
            key_file=directory / "client.key",
            ca_file=directory / "ca.pem",
        )
        print(
            f"{args.requests} verifies per row; latency in ms; cpu = this process's CPU "
            "µs per request (simulator excluded); ratio = client / bare"
        )
        print(
            f"{'mode':<6}{'conc':>5} |{'bare rps':>9}{'p50':>8}{'p99':>8}{'cpu':>7} |"
            f"{'client rps':>11}{'p50':>8}{'p99':>8}{'cpu':>7} |"
            f"{'rps':>6}{'p50':>6}{'p99':>6}{'cpu':>6}"
        )
        for mode, sim_args in (("plain", ["--plain-http"]), ("tls", tls_args)):
            process, url = start_simulator(
                ["--protocol", "solidsoft-rest", "--packs", str(market), *sim_args]
            )
            try:
                config = SolidsoftConfig(
                    url + "/api/",
                    url + "/identity/connect/token",
                    "SITE0001",  # the market's account: its user id is the client id
                    Secret(PASSWORD),
                    tls=tls if mode == "tls" else ClientTls(),
                    read_timeout=30.0,
                    pool_timeout=30.0,
                )
                rows = asyncio.run(bench_mode(config, args.concurrency, args.requests))
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
