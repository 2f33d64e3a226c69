"""``nmvs-gateway report`` and ``status`` on a database written by a real engine session."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.codes import DecodedScan
from gateway.codes.problems import ProblemCode, error
from gateway.engine import Engine, Request, ScanRecord, StoreError
from gateway.engine.report import band
from gateway.engine.store import FILENAME, open_store
from gateway.vocabulary import Operation
from tests.engine.conftest import wait_final
from tests.engine.support import Rig, settings


async def fill(rig: Rig) -> None:
    """Two scanners: one clean, one producing a decode error; a repeat send prevented."""
    async with Engine.open(rig.state_dir, rig.client, settings(on_scan="dispense")) as engine:
        for i, pack in enumerate(rig.packs[:3]):
            outcome = await engine.submit_scan(
                ScanRecord(
                    f"a{i}", "good", "till-1", time.time() + 10 * i, DecodedScan("t", pack, ())
                )
            )
            assert outcome.transaction is not None
            await wait_final(engine, outcome.transaction.id)
        # a trigger bounce of the last pack: collapsed into its scan (rule 2)
        bounce = ScanRecord(
            "a-bounce", "good", "till-1", time.time() + 21, DecodedScan("t", pack, ())
        )
        assert (await engine.submit_scan(bounce)).collapsed_into == "a2"
        await engine.submit_scan(
            ScanRecord(
                "b0",
                "azerty",
                "till-2",
                time.time(),
                DecodedScan("t", None, (error(ProblemCode.UNMAPPED_KEY, "é"),)),
            )
        )
        await engine.submit(Request(Operation.DISPENSE, rig.packs[0], id="lgo-repeat"))
        queued = await engine.submit(Request(Operation.VERIFY, rig.packs[5], id="v"))
        await wait_final(engine, queued.view.id)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True
    )


def cli(*args: str) -> str:
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


async def test_report_json_counts_codes_scanners_problems_and_prevented(rig: Rig) -> None:
    await fill(rig)
    report = json.loads(
        cli("report", "--state-dir", str(rig.state_dir), "--json", "--since", "2000-01-01")
    )
    assert report["sent"] == 4 and report["alerts"] == 0
    assert report["return_codes"] == [
        {"return_code": "NMVS_SUCCESS", "count": 4, "alert": False, "hub_code": None, "rate": 1.0}
    ]
    scanners = {s["scanner_id"]: s for s in report["scanners"]}
    # every physical scan, as <base>/health counts them; the bounce apart
    assert scanners["good"]["scans"] == 4 and scanners["good"]["repeats"] == 1
    assert scanners["good"]["alerts"] == 0
    assert scanners["azerty"]["decode_errors"] == 1
    assert report["decode_problems"] == {"UNMAPPED_KEY": 1}
    assert report["prevented"]["3_already_done_here"] == 1
    assert report["prevented"]["1_decode_error"] == 1
    assert report["queue"] == {"depth": 0, "oldest_age_s": None}


async def test_report_and_status_text(rig: Rig) -> None:
    await fill(rig)
    text = cli("report", "--state-dir", str(rig.state_dir), "--since", "2000-01-01")
    assert "NMVS_SUCCESS" in text and "3_already_done_here" in text
    text = cli("status", "--state-dir", str(rig.state_dir))
    assert text.startswith("queue: 0 waiting (0 reconciling)")
    assert "last NMVS contact: 20" in text and "NMVS_SUCCESS" in text
    status = json.loads(cli("status", "--state-dir", str(rig.state_dir), "--json"))
    assert [r["outcome"] for r in status["last_results"]][:2] == ["done", "already_done_here"]


def test_commands_name_a_missing_database(tmp_path: Path) -> None:
    for command in ("report", "status"):
        proc = run_cli(command, "--state-dir", str(tmp_path))
        assert proc.returncode == 1
        assert f"no engine database at {tmp_path / FILENAME}" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_bad_since_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli("report", "--state-dir", str(tmp_path), "--since", "last week")
    assert proc.returncode == 2
    assert "--since must be a date like 2026-11-16, not 'last week'" in proc.stderr


def test_corrupt_database_is_named(tmp_path: Path) -> None:
    (tmp_path / FILENAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=f"{tmp_path / FILENAME}.*corrupt or not a database"):
        open_store(tmp_path)


def test_newer_schema_is_refused_by_name(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    with sqlite3.connect(tmp_path / FILENAME) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="schema version 99, newer than this gateway"):
        open_store(tmp_path)


def test_every_connection_is_wal_with_full_sync(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        store.close()


@pytest.mark.parametrize(
    ("rate", "flagged"),
    [(0.0, None), (0.01, None), (0.011, "1-3 %"), (0.05, "3-7 %"), (0.08, "over 7 %")],
)
def test_france_mvo_bands(rate: float, flagged: str | None) -> None:
    label = band(rate)
    assert (label is None) if flagged is None else (label is not None and label.startswith(flagged))


def test_commands_find_the_database_from_the_daemon_configuration(tmp_path: Path) -> None:
    """``--config FILE``: the state directory is the daemon's ``[gateway] state_dir`` (relative
    to the file); no secret is needed to read it."""
    open_store(tmp_path / "state").close()
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nid = "counter-1"\nstate_dir = "state"\n')
    assert cli("status", "--config", str(config)).startswith("queue: 0 waiting (0 reconciling)")
    report = json.loads(cli("report", "--config", str(config), "--json"))
    assert (report["sent"], report["queue"]["depth"]) == (0, 0)


def test_commands_name_a_configuration_problem_with_exit_78(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nid = "counter 1"\n')
    for command in ("report", "status"):
        proc = run_cli(command, "--config", str(config))
        assert proc.returncode == 78
        assert proc.stderr.startswith(f"nmvs-gateway {command}: {config}: gateway.id: ")
    proc = run_cli("status")
    assert proc.returncode == 2
    assert "one of the arguments --config --state-dir is required" in proc.stderr
