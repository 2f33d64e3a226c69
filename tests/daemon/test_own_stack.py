"""The "Run your own stack" recipe works as written: ``nmvs-sim`` with the sample market and
``config/samples/own-stack.toml`` agree on port, user and password (only the ports are moved to
free ones here), and a verify sent to the daemon with ``mosquitto_pub`` comes back done."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from pathlib import Path

from tests.brokers import Broker, MqttProbe
from tests.daemon.harness import Daemon, finals

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_example_configuration_points_at_the_simulators_default_port() -> None:
    example = (SAMPLES.parent / "gateway.example.toml").read_text()
    assert 'url = "http://127.0.0.1:8443"' in example
    assert (
        'default="127.0.0.1:8443"'
        in (SAMPLES.parents[1] / "gateway" / "simulator" / "command.py").read_text()
    )
    assert 'url = "http://127.0.0.1:8443"' in (SAMPLES / "own-stack.toml").read_text()


async def test_the_own_stack_recipe(tmp_path: Path, broker: Broker) -> None:
    sim_port = free_port()
    sim = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "gateway.cli", "nmvs-sim", "--plain-http"),
        *("--listen", f"127.0.0.1:{sim_port}", "--packs", str(SAMPLES / "market.json")),
        stdout=asyncio.subprocess.DEVNULL,
    )
    config = tmp_path / "own-stack.toml"
    config.write_text(
        (SAMPLES / "own-stack.toml")
        .read_text()
        .replace("127.0.0.1:8443", f"127.0.0.1:{sim_port}")
        .replace("mqtt://127.0.0.1:1883", broker.url)
        .replace('"../../state"', f'"{tmp_path / "state"}"')
        .replace('"sim-password"', f'"{SAMPLES / "sim-password"}"')
    )
    daemon = Daemon(config, tmp_path / "daemon.log")
    market = json.loads((SAMPLES / "market.json").read_text())
    product = market["products"][0]
    batch = product["batches"][0]
    pack = {
        "scheme": "GTIN",
        "product_code": product["product_code"],
        "batch": batch["id"],
        "expiry": batch["expiry"],
        "serial": batch["serials"][0],
    }
    try:
        deadline = time.monotonic() + 10
        while True:  # the simulator is up when its port answers
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", sim_port)
                writer.close()
                break
            except OSError:
                assert time.monotonic() < deadline and sim.returncode is None
                await asyncio.sleep(0.05)
        await asyncio.to_thread(daemon.start)
        async with MqttProbe(broker, ("nmvs/counter-1/result",)) as lgo:
            body = json.dumps({"id": "own-1", "op": "verify", "pack": pack})
            publisher = await asyncio.create_subprocess_exec(
                *("mosquitto_pub", "-p", str(broker.port), "-q", "1"),
                *("-t", "nmvs/counter-1/request", "-m", body),
            )
            assert await publisher.wait() == 0
            await lgo.wait_for(lambda r: "own-1" in finals(r, "nmvs/counter-1/result"))
            (done,) = finals(lgo.received, "nmvs/counter-1/result")["own-1"]
        assert done["outcome"] == "done" and done["nmvs"]["state"] == "ACTIVE"
        assert await asyncio.to_thread(daemon.terminate) == 0
    finally:
        daemon.close()
        sim.terminate()
        await sim.wait()
