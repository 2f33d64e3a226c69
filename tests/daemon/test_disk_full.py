"""A full disk under the state directory (a real tmpfs of 4 MiB, filled) is a state, not a
crash: requests are refused on ``<base>/error`` with ``storage_full``, the daemon stays up, and
once space is freed it accepts again. Needs the right to mount a tmpfs (root, as in CI)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers import Broker, MqttProbe
from tests.daemon.harness import BASE, Daemon, Rig, finals, request, write_config

RESULT, ERROR, REQUEST = f"{BASE}/result", f"{BASE}/error", f"{BASE}/request"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    return filler


def daemon_on(state_dir: Path, tmp_path: Path, broker: Broker, nmvs: Rig) -> Daemon:
    config = write_config(tmp_path / "gw", broker, nmvs.sim.url)
    config.write_text(
        config.read_text().replace(
            f'state_dir = "{tmp_path / "gw" / "state"}"', f'state_dir = "{state_dir}"'
        )
    )
    return Daemon(config, tmp_path / "daemon.log")


async def test_a_full_disk_refuses_requests_and_the_daemon_stays_up(
    tmp_path: Path, broker: Broker, nmvs: Rig, small_disk: Path
) -> None:
    daemon = daemon_on(small_disk, tmp_path, broker, nmvs)
    try:
        await asyncio.to_thread(daemon.start)
        async with MqttProbe(broker, (RESULT, ERROR)) as lgo:
            await lgo.publish(REQUEST, request("first", "verify", nmvs.packs[0]))
            await lgo.wait_for(lambda r: "first" in finals(r, RESULT))
            filler = fill(small_disk)
            refused = None
            for number, pack in enumerate(nmvs.packs[1:80], 1):
                await lgo.publish(REQUEST, request(f"r{number}", "verify", pack))
                await lgo.wait_for(
                    lambda r, n=number: (
                        f"r{n}" in finals(r, RESULT)
                        or any(
                            json.loads(m.payload)["request_id"] == f"r{n}"
                            for m in r
                            if m.topic == ERROR
                        )
                    )
                )
                errors = [json.loads(m.payload) for m in lgo.on(ERROR)]
                if errors:
                    refused = errors[0]
                    break
            assert refused is not None, "the full disk never refused a request"
            assert refused["reason"] == "storage_full"
            assert "is full: free space there" in refused["problems"][0]["detail"]
            assert refused["problems"][0]["message_fr"].startswith("La requête n'est pas valide")
            filler.unlink()  # space again: the same id is accepted now
            retry = refused["request_id"]
            await lgo.publish(REQUEST, request(retry, "verify", nmvs.packs[int(retry[1:])]))
            await lgo.wait_for(lambda r: retry in finals(r, RESULT), within=30)
        assert daemon.process is not None and daemon.process.poll() is None
        assert await asyncio.to_thread(daemon.terminate) == 0
        log = daemon.log_text()
        assert "mqtt_handler_failed" not in log and "Traceback" not in log
    finally:
        daemon.close()


async def test_a_start_on_a_full_disk_waits_for_space_and_then_serves_what_waited(
    tmp_path: Path, broker: Broker, nmvs: Rig, small_disk: Path
) -> None:
    """The disk fills while the daemon is stopped: at the next start it neither exits (systemd
    would start it again on the same full disk, or give up) nor serves; it tells systemd why,
    and the request published meanwhile is answered once space is back."""
    daemon = daemon_on(small_disk, tmp_path, broker, nmvs)
    try:
        await asyncio.to_thread(daemon.start)
        async with MqttProbe(broker, (RESULT, ERROR)) as lgo:
            await lgo.publish(REQUEST, request("before", "verify", nmvs.packs[0]))
            await lgo.wait_for(lambda r: "before" in finals(r, RESULT))
        assert await asyncio.to_thread(daemon.terminate) == 0
        filler = fill(small_disk)
        await asyncio.to_thread(daemon.start)  # READY=1 with the reason in STATUS
        assert any("waiting for free space" in n for n in daemon.notifications)
        async with MqttProbe(broker, (RESULT, ERROR)) as lgo:
            await lgo.publish(REQUEST, request("meanwhile", "dispense", nmvs.packs[1]))
            await asyncio.sleep(1.0)
            assert not lgo.on(RESULT) and not lgo.on(ERROR)  # not served, not refused: waiting
            assert daemon.process is not None and daemon.process.poll() is None
            filler.unlink()
            await lgo.wait_for(lambda r: "meanwhile" in finals(r, RESULT), within=30)
            (done,) = [json.loads(m.payload) for m in lgo.on(RESULT) if b"meanwhile" in m.payload][
                -1:
            ]
            assert done["outcome"] == "done"
        assert await asyncio.to_thread(daemon.terminate) == 0
        log = daemon.log_text()
        assert log.count("state_dir_full_at_start") == 1 and "Traceback" not in log
    finally:
        daemon.close()
