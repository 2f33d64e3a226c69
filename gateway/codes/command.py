"""``nmvs-gateway decode``: scans on stdin → one JSON object per scan per line on stdout.

A contract other tools depend on; keep it stable.

- Text mode (default): one scan per input line. Control characters may be raw or written as
  ``\\x1d`` ``\\x1e`` ``\\x04`` (also ``\\x1c`` ``\\x1f``): a backslash is outside GS1 set 82,
  so it is never data. ``<GS>`` ``<RS>`` ``<EOT>`` (also ``<FS>`` ``<US>``) are read as control
  characters only with ``--escapes``: ``<``, ``G``, ``S`` and ``>`` are all set-82 characters, so
  a serial may really hold ``<GS>``. Without the flag such a line is read literally and a note
  on stderr says so, once.
- ``--keys``: one JSON evdev event per line, ``{"type": 1, "code": 30, "value": 1}`` with an
  optional ``"time"`` in seconds (used for the inter-key gap); other event types (EV_SYN,
  EV_MSC) are taken as the kernel sends them. Scans are split exactly as the daemon splits them
  (:class:`~gateway.codes.keyboard.ScanSplitter`), and the scan in progress is flushed at EOF.
  With ``--layout auto`` the whole input is one scanner: what its scans show about its layout
  (:mod:`gateway.codes.layout_belief`) applies to the scans that follow, and each result
  carries ``layout_belief``.
- Output per scan: ``{"ok", "text", "layout", "pack", "problems": [{"code", "severity",
  "message", …}], …}`` (:meth:`DecodedScan.to_json`), flushed line by line, in input order.
- Bad input (invalid UTF-8, a non-JSON line, an impossible event) gives an ``ok: false`` object
  with a ``BAD_INPUT`` problem in its place; the exit status is 0 unless reading stdin fails.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO, TypeGuard

if TYPE_CHECKING:
    from gateway.codes.decode import DecodedScan, DecodeSettings
    from gateway.codes.keyboard import KeyEvent

_HEX_ESCAPES = re.compile(r"\\x(1[cdefCDEF]|04)")
_NAMED_ESCAPES = re.compile(r"<(GS|RS|EOT|FS|US)>")
_NAMED = {"GS": "\x1d", "RS": "\x1e", "EOT": "\x04", "FS": "\x1c", "US": "\x1f"}
_MAX_EVENT_TYPE = 0x1F  # EV_MAX
_MAX_KEY_CODE = 0x2FF  # KEY_MAX
_MIN_VALUE, _MAX_VALUE = -(2**31), 2**31 - 1  # the kernel's __s32


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layout",
        default="us",
        metavar="L",
        help="the scanner's keyboard country for --keys (us, fr, de, …) or 'auto' (default: us)",
    )
    parser.add_argument(
        "--keys", action="store_true", help="stdin holds JSON evdev events, one per line"
    )
    parser.add_argument(
        "--escapes",
        action="store_true",
        help="text mode: read <GS> <RS> <EOT> <FS> <US> as control characters "
        "(they are set-82 data otherwise; \\x1d and the raw characters always work)",
    )
    parser.add_argument(
        "--split-ais",
        choices=("fmd", "gs1"),
        default="fmd",
        help="the AIs a message without any GS may be cut at: the FMD elements (default) or "
        "every GS1 AI",
    )
    parser.add_argument(
        "--gs-substitute",
        metavar="C",
        help="a character the scanner sends instead of GS (outside GS1 set 82, e.g. '$')",
    )


def run(args: argparse.Namespace) -> int:
    from gateway.codes.decode import DecodeSettings
    from gateway.codes.keyboard import KeyboardSettings

    try:
        settings = DecodeSettings(
            keyboard=KeyboardSettings(layout=args.layout),
            gs_substitute=args.gs_substitute,
            split_ais=args.split_ais,
        )
    except ValueError as problem:
        print(f"nmvs-gateway decode: {problem}", file=sys.stderr)
        return 2
    scans = (
        _key_scans(sys.stdin.buffer, settings)
        if args.keys
        else _text_scans(sys.stdin.buffer, settings, named_escapes=args.escapes)
    )
    try:
        for scan in scans:
            sys.stdout.write(json.dumps(scan.to_json(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
    except OSError as failure:
        print(f"nmvs-gateway decode: cannot read stdin or write stdout: {failure}", file=sys.stderr)
        return 1
    return 0


def unescape(line: str, named: bool = False) -> str:
    """Turn the written forms ``\\x1d`` (and ``\\x1e``, ``\\x04``, ``\\x1c``, ``\\x1f``) into the
    characters, and with ``named`` also ``<GS>`` (and RS, EOT, FS, US)."""
    line = _HEX_ESCAPES.sub(lambda match: chr(int(match[1], 16)), line)
    return _NAMED_ESCAPES.sub(lambda match: _NAMED[match[1]], line) if named else line


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(stream, 1):
        yield number, raw.removesuffix(b"\n").removesuffix(b"\r")


def _text_scans(
    stream: BinaryIO, settings: DecodeSettings, named_escapes: bool
) -> Iterator[DecodedScan]:
    from gateway.codes.decode import bad_input, decode_text

    noted = named_escapes
    for number, raw in _lines(stream):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as failure:
            yield bad_input(
                raw.decode("utf-8", "replace"),
                f"line {number} is not UTF-8 (byte 0x{raw[failure.start]:02X})",
                f"la ligne {number} n'est pas en UTF-8 (octet 0x{raw[failure.start]:02X})",
            )
            continue
        if not noted and (written := _NAMED_ESCAPES.search(line)):
            noted = True
            print(
                f"nmvs-gateway decode: line {number} holds {written[0]!r}, read as data; "
                f"pass --escapes if it stands for a control character",
                file=sys.stderr,
            )
        yield decode_text(unescape(line, named_escapes), settings)


def _key_scans(stream: BinaryIO, settings: DecodeSettings) -> Iterator[DecodedScan]:
    from gateway.codes.decode import bad_input, decode_keys
    from gateway.codes.keyboard import ScanSplitter

    splitter = ScanSplitter(settings.keyboard)
    belief = None  # layout auto: the whole input is one scanner, learned scan after scan
    for number, raw in _lines(stream):
        if not raw.strip(b" \t\r"):
            continue
        text = raw.decode("utf-8", "replace")
        event = _event(text)
        if isinstance(event, tuple):
            reason, reason_fr = event
            yield bad_input(text, f"line {number} {reason}", f"la ligne {number} {reason_fr}")
            continue
        trace = splitter.feed(event)
        if trace is not None:
            scan = decode_keys(trace, settings, belief)
            belief = scan.belief
            yield scan
    trace = splitter.flush()
    if trace is not None:
        yield decode_keys(trace, settings, belief)


def _event(line: str) -> KeyEvent | tuple[str, str]:
    """The event on one line, or why the line is not one (in English and French)."""
    from gateway.codes.keyboard import KeyEvent

    try:
        data = json.loads(line)
    except ValueError:
        return "is not JSON", "n'est pas du JSON"
    if not isinstance(data, dict):
        return (
            'is not a JSON object like {"type": 1, "code": 30, "value": 1}',
            'n\'est pas un objet JSON comme {"type": 1, "code": 30, "value": 1}',
        )
    kind, code, value = (data.get(name) for name in ("type", "code", "value"))
    if not (_is_int(kind) and _is_int(code) and _is_int(value)):
        return "needs integer type, code and value", "doit avoir type, code et value entiers"
    time = data.get("time", 0.0)
    # NaN and infinity are JSON to Python: a NaN time would disable the inter-key gap.
    if not isinstance(time, int | float) or isinstance(time, bool) or not math.isfinite(time):
        return (
            "has a time that is not a number of seconds",
            "a un time qui n'est pas un nombre de secondes",
        )
    if not (0 <= kind <= _MAX_EVENT_TYPE and 0 <= code <= _MAX_KEY_CODE):
        return (
            f"has an impossible event type {kind} or code {code}",
            f"a un type {kind} ou un code {code} impossible",
        )
    if not _MIN_VALUE <= value <= _MAX_VALUE:
        return f"has an impossible value {value}", f"a une valeur {value} impossible"
    return KeyEvent(kind, code, value, float(time))


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
