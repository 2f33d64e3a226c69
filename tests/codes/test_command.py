"""``nmvs-gateway decode`` as a real subprocess: the JSON-lines contract, escapes, --keys, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway.codes.keyboard import KeyEvent, emulate
from gateway.codes.keyboard.events import EV_MSC

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "config" / "samples" / "scans.txt"
GS = "\x1d"
BODY = "0103400936040540" + "17270500" + "10aB1"
PACK = {
    "scheme": "GTIN",
    "product_code": "03400936040540",
    "batch": "aB1",
    "expiry": "270500",
    "serial": "xY2",
}


def decode(stdin: bytes | int, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "decode", *args],
        input=stdin if isinstance(stdin, bytes) else None,
        stdin=stdin if isinstance(stdin, int) else None,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    lines = proc.stdout.decode("utf-8").splitlines()
    return proc.returncode, [json.loads(line) for line in lines], proc.stderr.decode()


def key_lines(events: list[KeyEvent]) -> bytes:
    """JSON lines as an evdev dump would give them, with an EV_MSC scan code before each key."""
    out = []
    for event in events:
        if event.type == 1:
            out.append(
                {"type": EV_MSC, "code": 4, "value": 0x70000 + event.code, "time": event.time}
            )
        out.append(
            {"type": event.type, "code": event.code, "value": event.value, "time": event.time}
        )
    return "".join(json.dumps(item) + "\n" for item in out).encode()


def test_the_bundled_sample_gives_one_object_per_line_in_order() -> None:
    code, results, stderr = decode(SAMPLE.read_bytes())
    assert code == 0, stderr
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    assert len(results) == len(lines)
    for result in results:
        assert set(result) >= {"ok", "text", "layout", "pack", "problems"}
        assert result["ok"] is not any(p["severity"] == "error" for p in result["problems"])
        for problem in result["problems"]:
            assert set(problem) >= {"code", "severity", "message"}
    assert [r["ok"] for r in results] == [True] * 5 + [False] * 6
    assert results[0]["pack"]["aim"] == "]d2"
    assert results[2]["pack"]["scheme"] == "PPN"


def test_control_characters_raw_or_written_as_hex_escapes() -> None:
    lines = [BODY + GS + "21xY2", BODY + "\\x1d21xY2", BODY + "\\x1D21xY2"]
    code, results, stderr = decode("\n".join(lines).encode() + b"\n")
    assert code == 0
    assert [r["pack"] for r in results] == [PACK] * 3
    assert all(r["text"] == BODY + GS + "21xY2" for r in results)
    assert all(r["layout"] is None for r in results)
    assert stderr == ""


def test_named_escapes_are_set_82_data_unless_asked_for() -> None:
    # "<GS>" is four set-82 characters: a serial may hold them, so they are data by default
    line = (BODY + "<GS>21xY2\n").encode()
    code, results, stderr = decode(line)
    assert code == 0
    assert results[0]["text"] == BODY + "<GS>21xY2"
    assert results[0]["pack"] != PACK
    assert "line 1 holds '<GS>', read as data; pass --escapes" in stderr
    code, results, stderr = decode(line + line, "--escapes")
    assert [r["pack"] for r in results] == [PACK, PACK]
    assert stderr == ""


def test_the_split_universe_is_an_option() -> None:
    line = (BODY + "21SER91XYZ\n").encode()
    _, results, _ = decode(line)
    assert results[0]["pack"] == {**PACK, "serial": "SER91XYZ"}
    _, results, _ = decode(line, "--split-ais", "gs1")
    assert results[0]["pack"] is None
    assert [p["code"] for p in results[0]["problems"]] == ["GS_MISSING"]


def test_a_gs_substitute_is_read_as_gs_and_a_bad_one_is_a_usage_error() -> None:
    code, results, _ = decode((BODY + "$21xY2\n").encode(), "--gs-substitute", "$")
    assert code == 0
    assert results[0]["pack"] == PACK
    code, results, stderr = decode(b"", "--gs-substitute", "A")
    assert code == 2
    assert "gs_substitute must be one character outside GS1 set 82" in stderr


def test_keys_with_syn_and_msc_noise_split_like_the_daemon() -> None:
    first = emulate(BODY + GS + "21xY2", "fr", start=0.0)
    second = emulate("]d2" + BODY + GS + "21xY3", "fr", start=1.0, separators="alt_keypad")
    code, results, stderr = decode(key_lines(first + second), "--keys", "--layout", "fr")
    assert code == 0, stderr
    assert [r["pack"] for r in results] == [PACK, {**PACK, "serial": "xY3", "aim": "]d2"}]
    assert [r["layout"] for r in results] == ["fr", "fr"]


def test_keys_without_suffix_are_flushed_at_end_of_input_and_auto_detects_the_layout() -> None:
    # letters that sit on the same keys in AZERTY and QWERTZ: fr, be, cz and sk all agree
    text = "0103400936040540" + "17270500" + "10bB1" + GS + "21xk2"
    events = emulate(text, "fr", suffix=None)
    code, results, _ = decode(key_lines(events), "--keys", "--layout", "auto")
    assert code == 0
    assert len(results) == 1
    assert results[0]["pack"] == {**PACK, "batch": "bB1", "serial": "xk2"}
    assert results[0]["layout"] == "fr"
    assert "cz" in results[0]["layouts"]


def test_bad_input_is_an_object_with_a_problem_never_a_traceback() -> None:
    key_input = (
        b'not json\n[1, 2]\n{"type": 1, "code": 30}\n{"type": 1, "code": 99999, "value": 1}\n'
        b'{"type": 1, "code": 30, "value": 1, "time": NaN}\n'
        b'{"type": 1, "code": 30, "value": 1, "time": -Infinity}\n'
        b'{"type": 1, "code": 30, "value": 1e400}\n'
        b'{"type": 1, "code": 30, "value": 4294967296}\n'
    )
    code, results, stderr = decode(key_input, "--keys")
    assert code == 0
    assert "Traceback" not in stderr
    assert [(r["ok"], r["problems"][0]["code"]) for r in results] == [(False, "BAD_INPUT")] * 8
    assert [r["problems"][0]["detail"] for r in results[4:]] == [
        "line 5 has a time that is not a number of seconds",
        "line 6 has a time that is not a number of seconds",
        "line 7 needs integer type, code and value",
        "line 8 has an impossible value 4294967296",
    ]
    assert [r["problems"][0]["message"] for r in results[:4]] == [
        "The input could not be read (line 1 is not JSON): send one scan or one JSON key event per line.",
        'The input could not be read (line 2 is not a JSON object like {"type": 1, "code": 30, "value": 1}): send one scan or one JSON key event per line.',
        "The input could not be read (line 3 needs integer type, code and value): send one scan or one JSON key event per line.",
        "The input could not be read (line 4 has an impossible event type 1 or code 99999): send one scan or one JSON key event per line.",
    ]
    text_input = b"\x00\x01\x02garbage\n\xff\xfe\xfd\n" + BODY.encode() + b"\\x1d21xY2\n"
    code, results, stderr = decode(text_input)
    assert code == 0
    assert "Traceback" not in stderr
    assert [r["problems"][0]["detail"] for r in results[:2]] == [
        "binary data, U+0000 at position 1",
        "line 2 is not UTF-8 (byte 0xFF)",
    ]
    assert results[2]["pack"] == PACK  # decoding goes on after bad lines


def test_an_unknown_layout_is_a_usage_error() -> None:
    code, results, stderr = decode(b"", "--layout", "xx")
    assert code == 2
    assert results == []
    assert "unknown keyboard layout 'xx'" in stderr
    assert "Traceback" not in stderr


def test_a_failing_stdin_is_the_only_nonzero_exit(tmp_path: Path) -> None:
    write_only = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)  # reading it fails: EBADF
    try:
        code, results, stderr = decode(write_only)
    finally:
        os.close(write_only)
    assert code == 1
    assert results == []
    assert "nmvs-gateway decode: cannot read stdin" in stderr
    assert "Traceback" not in stderr
