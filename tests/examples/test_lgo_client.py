"""``examples/lgo_client.py`` against the real daemon and mosquitto: a verify, a dispense by the
result's pack, a re-send of the same id (the same answer, sent once to the NMVS), and an id
reused for another operation (answered as an error, exit 2)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from tests.brokers import Broker
from tests.daemon.harness import BASE, Daemon, Rig

CLIENT = Path(__file__).resolve().parents[2] / "examples" / "lgo_client.py"


async def lgo(broker: Broker, *args: str) -> tuple[int, dict[str, object]]:
    proc = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            str(CLIENT),
            "--broker",
            broker.url,
            "--base",
            BASE,
            "--timeout",
            "5",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


async def test_the_example_client_verifies_dispenses_and_meets_an_id_conflict(
    broker: Broker, nmvs: Rig, daemon: Daemon
) -> None:
    await asyncio.to_thread(daemon.start)
    pack = json.dumps(nmvs.packs[0].to_json())
    code, verify = await lgo(broker, "--id", "ex-verify-1", "verify", "--pack", pack)
    assert code == 0 and verify["status"] == "done" and verify["outcome"] == "done"
    code, dispense = await lgo(broker, "--id", "ex-sale-1", "dispense", "--pack", pack)
    assert code == 0 and dispense["outcome"] == "done"
    assert dispense["nmvs"]["state"] == "INACTIVE"  # type: ignore[index]
    code, again = await lgo(broker, "--id", "ex-sale-1", "dispense", "--pack", pack)
    assert code == 0 and again["outcome"] == "done"
    code, conflict = await lgo(broker, "--id", "ex-sale-1", "undo_dispense", "--pack", pack)
    assert code == 2 and conflict["reason"] == "id_conflict"
    assert [t["use_case"] for t in await nmvs.transactions()] == ["G110", "G120"]
    assert await nmvs.alerts() == []
    assert await asyncio.to_thread(daemon.terminate) == 0
