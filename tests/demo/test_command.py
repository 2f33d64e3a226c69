"""``nmvs-gateway demo`` as a newcomer runs it: a subprocess with its real mosquitto, the
simulator, the daemon and the virtual scanners; the numbers are read from its summary."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.demo import mosquitto

DEMO = [sys.executable, "-m", "gateway.cli", "demo"]


def summary_number(output: str, label: str) -> int:
    found = re.search(rf"^  {label}: (\d+)", output, re.MULTILINE)
    assert found, f"no {label!r} line in the summary:\n{output}"
    return int(found[1])


def started_parts(output: str) -> tuple[int, Path]:
    """The mosquitto pid and the temporary directory the demo announced."""
    found = re.search(r"\(pid (\d+), private, config in (\S+)\)", output)
    assert found, output
    return int(found[1]), Path(found[2])


def processes_using(directory: Path) -> list[str]:
    """Command lines of live processes that mention ``directory`` (mosquitto -c <dir>/…)."""
    users = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(directory) in cmdline:
                users.append(f"{entry.name}: {cmdline}")
    return users


def assert_all_gone(mosquitto_pid: int, tmp: Path) -> None:
    assert not Path(f"/proc/{mosquitto_pid}").exists(), "mosquitto is still running"
    assert processes_using(tmp) == []
    assert not tmp.exists(), "the temporary directory was left behind"


def test_the_demo_plays_its_scenario_and_exits_0_with_its_summary() -> None:
    done = subprocess.run(
        [*DEMO, "--duration", "20", "--pace", "0.2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "Traceback" not in out + done.stderr
    assert done.stderr == ""
    # the LGO's view: scans from each virtual scanner and their results
    assert re.search(r"scan +till-1-serial +scan +ok +GS_MISSING\(w\)", out)
    assert re.search(r"scan +till-1-serial +scan +refused +GS_MISSING\n", out)
    assert re.search(r"scan +till-2-azerty-as-us +scan +refused +SUSPECT_LAYOUT_MISMATCH", out)
    assert re.search(r"scan +till-3-azerty-as-fr +scan +ok\n", out)
    assert re.search(r"result +sale-1001 +dispense +done +done +NMVS_SUCCESS INACTIVE", out)
    assert len(re.findall(r"result +sale-1001 +dispense +done", out)) == 2  # the repeat
    assert re.search(r"result +till-2-sale-77 +dispense +rejected +already_done_here", out)
    assert re.search(r"result +sale-1001-undo +undo_dispense +done +done +NMVS_SUCCESS ACTIVE", out)
    assert re.search(r"result +sale-1002 +dispense +rejected +not_active", out)
    assert re.search(r"result +sale-1002-undo +undo_dispense +rejected +undo_not_allowed", out)
    assert re.search(r"result +sale-1003 +dispense +rejected +not_active", out)
    assert "NMVS_SUCCESS INACTIVE EXPIRED" in out and "NMVS_SUCCESS INACTIVE SUPPLIED" in out
    # the summary
    assert "scenario: done; 15 steps played, 0 unexpected" in out
    # the collapsed repeat is published as a scan naming the first one, and starts nothing
    assert "▶   (published as a scan collapsed into …" in out
    scan_rows = re.findall(r"^\S+ +scan +till-", out, re.MULTILINE)
    assert summary_number(out, "scans") == len(scan_rows) == 8
    assert "(2 refused by the decoder)" in out
    assert summary_number(out, "nmvs calls") == 7
    assert "(G110 x5, G120 x1, G121 x1); 1 by another user" in out
    assert summary_number(out, "alerts raised") == 0
    assert summary_number(out, "alerts prevented") == 7
    assert (
        "1_decode_error x2, 2_repeat_scan x1, 3_already_done_here x1, 4_not_active x2, "
        "5_undo_not_allowed x1" in out
    )
    assert_all_gone(*started_parts(out))


def test_the_demo_plays_the_same_scenario_over_the_solidsoft_rest_backend() -> None:
    done = subprocess.run(
        [*DEMO, "--backend", "solidsoft-rest", "--duration", "20", "--pace", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "(solidsoft-rest, in this process;" in out
    # Solidsoft's 8-digit operation codes in the results, the same outcomes as with Arvato
    assert re.search(r"result +sale-1001 +dispense +done +done +11200000 INACTIVE", out)
    assert re.search(r"result +sale-1001-undo +undo_dispense +done +done +11400000 ACTIVE", out)
    assert re.search(r"result +sale-1002-undo +undo_dispense +rejected +undo_not_allowed", out)
    assert "scenario: done; 15 steps played, 0 unexpected" in out
    assert summary_number(out, "nmvs calls") == 7
    assert summary_number(out, "alerts raised") == 0
    assert_all_gone(*started_parts(out))


def test_ctrl_c_mid_run_stops_everything_cleanly() -> None:
    process = subprocess.Popen(
        DEMO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen.append(line)
        if line.startswith("▶ step 4/") or not line:
            break
    assert any(line.startswith("▶ step 4/") for line in seen), "".join(seen)
    process.send_signal(signal.SIGINT)
    rest, errors = process.communicate(timeout=30)
    out = "".join(seen) + rest
    assert process.returncode == 0, out + errors
    assert "Traceback" not in out + errors
    assert "scenario: stopped" in out
    assert summary_number(out, "alerts raised") == 0
    assert_all_gone(*started_parts(out))


def test_without_mosquitto_it_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(mosquitto, "MOSQUITTO_CANDIDATES", (str(tmp_path / "mosquitto"),))
    assert main(["demo", "--duration", "5"]) == 1
    error = capsys.readouterr().err
    assert "mosquitto not found" in error
    assert "sudo apt-get install mosquitto" in error and ".ci/setup" in error


@pytest.mark.parametrize(
    ("option", "value", "wanted"),
    [
        ("--duration", "nan", "a positive number of seconds"),
        ("--duration", "inf", "a positive number of seconds"),
        ("--duration", "0", "a positive number of seconds"),
        ("--duration", "-5", "a positive number of seconds"),
        ("--duration", "soon", "a positive number of seconds"),
        ("--pace", "nan", "a number of seconds, 0 or more"),
        ("--pace", "inf", "a number of seconds, 0 or more"),
        ("--pace", "-0.5", "a number of seconds, 0 or more"),
    ],
)
def test_durations_that_are_no_number_of_seconds_are_refused(
    capsys: pytest.CaptureFixture[str], option: str, value: str, wanted: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", option, value])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"nmvs-gateway demo: error: argument {option}: must be {wanted}, not {value!r}"
    )
