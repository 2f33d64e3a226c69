"""``nmvs-gateway scanners``: what the gateway would do with each input, serial and hidraw device.

For each device: which configured ``[[scanner]]`` rule takes it, whether it looks like a
scanner, whether it can be grabbed (evdev) or opened, and for permission problems the exact fix.
Only devices a rule matches or that look like scanners are test-grabbed (and released at once);
other keyboards are never opened.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import tomllib
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="the gateway's TOML configuration ([[scanner]] tables)"
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="the gateway's state directory, for what layout-auto scanners have learned "
        "(default: [gateway] state_dir of --config, else /var/lib/nmvs-gateway)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document instead of text")


def run(args: argparse.Namespace) -> int:
    from gateway.capture.config import ScannerConfig, parse_scanners
    from gateway.configfile import ConfigError
    from gateway.daemon.config import DEFAULT_STATE_DIR

    configs: tuple[ScannerConfig, ...] = ()
    state_dir = args.state_dir
    if args.config:
        try:
            with open(args.config, "rb") as handle:
                document = tomllib.load(handle)
            tables = document.get("scanner", [])
            if state_dir is None:
                state_dir = _configured_state_dir(args.config, document)
            if not isinstance(tables, list):
                raise ConfigError(None, "scanner", "must be an array of tables ([[scanner]])")
            configs = parse_scanners(tables)
        except OSError as exc:
            print(f"{args.config}: {exc.strerror}", file=sys.stderr)
            return 2
        except tomllib.TOMLDecodeError as exc:
            print(f"{args.config}: invalid TOML: {exc}", file=sys.stderr)
            return 2
        except UnicodeDecodeError:
            print(f"{args.config}: not UTF-8 text: give the gateway's TOML file", file=sys.stderr)
            return 2
        except ConfigError as exc:
            print(f"{args.config}: {exc}", file=sys.stderr)
            return 2
    report = survey(configs)
    add_learned_layouts(report, configs, state_dir or DEFAULT_STATE_DIR)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render(report))
    return 0


def _configured_state_dir(config_path: str, document: dict[str, Any]) -> str | None:
    gateway = document.get("gateway")
    state_dir = gateway.get("state_dir") if isinstance(gateway, dict) else None
    if not isinstance(state_dir, str):
        return None
    return os.path.join(os.path.dirname(os.path.abspath(config_path)), state_dir)


def add_learned_layouts(report: dict[str, Any], configs: tuple[Any, ...], state_dir: str) -> None:
    """Each layout-auto scanner's entry gets ``layout`` (what its scans showed, or null) and
    ``layout_text``; the report gets ``layout_source`` (where that was read, or why not)."""
    from gateway.codes.keyboard import AUTO_LAYOUT
    from gateway.codes.layout_belief import LayoutBelief
    from gateway.engine.model import StoreError
    from gateway.engine.store import read_layout_beliefs

    auto = [c for c in configs if c.decode.keyboard.layout == AUTO_LAYOUT]
    if not auto:
        return
    try:
        stored = read_layout_beliefs(state_dir)
        report["layout_source"] = state_dir
    except StoreError as exc:
        stored = {}
        report["layout_source"] = str(exc)
    entries = {entry["id"]: entry for entry in report["scanners"]}
    for config in auto:
        belief = LayoutBelief.from_stored(stored.get(config.id), config.decode.auto_layouts)
        entry = entries[config.id]
        entry["layout"] = None if belief is None else belief.to_json()
        entry["layout_text"] = (
            "auto, nothing learned yet" if belief is None else ("auto, " + belief.describe())
        )


def survey(configs: tuple[Any, ...]) -> dict[str, Any]:
    """Every device with the gateway's view of it (the ``--json`` document)."""
    from gateway.capture.config import Kind
    from gateway.capture.devices import (
        KernelInput,
        access_problem,
        list_hidraw,
        list_serial_ports,
        select_device,
    )

    inputs = KernelInput().list()
    taken: dict[str, str] = {}  # device node → scanner id
    rules: dict[str, str] = {}  # device node → the configured rule that takes it
    claimed: set[str] = set()
    scanners = []
    for config in configs:
        entry: dict[str, Any] = {"id": config.id, "kind": config.kind.value, "device": None}
        if config.kind is Kind.EVDEV:
            entry["match"] = config.match.text
            found = select_device(config, inputs, claimed)
            if found is not None:
                claimed.add(found.path)
                entry["device"] = found.path
                taken[found.path] = config.id
                rules[found.path] = f"match = {config.match.text!r}"
            else:
                entry["problem"] = f"no input device matches {config.match.text!r} (unplugged?)"
        else:
            entry["path"] = config.path
            real = os.path.realpath(config.path)
            if os.path.exists(real):
                entry["device"] = real
                taken[real] = config.id
                rules[real] = f"path = {config.path!r}"
                problem = access_problem(real, "serial" if config.kind is Kind.SERIAL else "hidraw")
                if problem:
                    entry["problem"] = problem
            else:
                entry["problem"] = f"{config.path} does not exist (unplugged, or wrong path)"
        scanners.append(entry)

    input_rows = []
    for info in inputs:
        reason = info.scanner_reason()
        row: dict[str, Any] = {
            "path": info.path,
            "name": info.name,
            "vidpid": info.vidpid,
            "links": list(info.links),
            "types_text": info.types_text,
            "looks_like_scanner": reason is not None,
            "why": reason,
            "scanner_id": taken.get(info.path),
            "rule": rules.get(info.path),
            "problem": access_problem(info.path, "evdev"),
        }
        if row["problem"] is None and (reason is not None or info.path in taken):
            row["grab"] = grab_test(info.path)
        row["action"] = _input_action(row, reason)
        input_rows.append(row)

    nodes = []
    for node in [*list_serial_ports(), *list_hidraw()]:
        nodes.append(
            {
                "path": node.path,
                "kind": node.kind,
                "name": node.name,
                "vidpid": f"{node.vendor:04x}:{node.product:04x}",
                "links": list(node.links),
                "hid_pos": node.hid_pos,
                "scanner_id": taken.get(node.path),
                "rule": rules.get(node.path),
                "problem": access_problem(node.path, node.kind),
            }
        )
    return {
        "scanners": scanners,
        "input": input_rows,
        "nodes": nodes,
        "notes": _notes(input_rows, nodes),
    }


def grab_test(path: str) -> str:
    """Try EVIOCGRAB and release at once: "grabbable", "busy: …", "keys down: not tested"."""
    from evdev import InputDevice

    try:
        device = InputDevice(path)
    except OSError as exc:
        return f"cannot open: {exc.strerror}"
    try:
        if device.active_keys():
            return "keys down: not tested (grabbing now would leave a key stuck)"
        device.grab()
        device.ungrab()
        return "grabbable"
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return "busy: another process holds the grab (the running gateway, or evtest --grab)"
        return f"grab failed: {exc.strerror}"
    finally:
        device.close()


def _input_action(row: dict[str, Any], reason: str | None) -> str:
    if row["scanner_id"]:
        return f"read as scanner {row['scanner_id']!r} ({row['rule']}; exclusive grab)"
    if reason is not None:
        return f'looks like a scanner ({reason}): not configured; add [[scanner]] kind = "evdev", match = "{row["vidpid"]}"'
    return "ignored (not a scanner; never grabbed)"


def _notes(inputs: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> list[str]:
    notes = []
    if not os.path.isdir("/dev/input"):
        notes.append("/dev/input is absent: no input devices here (a container without devices?)")
    elif not inputs:
        notes.append("no input devices")
    if not nodes:
        notes.append("no serial (ttyACM*, ttyUSB*) or hidraw devices")
    hid = [n for n in nodes if n["kind"] == "hidraw" and n["hid_pos"] and not n["scanner_id"]]
    for node in hid:
        notes.append(
            f'{node["path"]} is a HID POS scanner: add [[scanner]] kind = "hidpos", path = "{node["path"]}"'
        )
    return notes


def render(report: dict[str, Any]) -> str:
    lines = []
    if report["scanners"]:
        lines.append("Configured scanners:")
        for entry in report["scanners"]:
            where = entry["device"] or "-"
            lines.append(f"  {entry['id']} ({entry['kind']}): {where}")
            if entry.get("layout_text"):
                lines.append(f"      layout: {entry['layout_text']}")
            if entry.get("problem"):
                lines.append(f"      problem: {entry['problem']}")
    lines.append("Input devices:" if report["input"] else "Input devices: none")
    for row in report["input"]:
        lines.append(f"  {row['path']}  {row['vidpid']}  {row['name']!r}")
        for link in row["links"]:
            lines.append(f"      link: {link}")
        lines.append(f"      {row['action']}")
        if row.get("grab"):
            lines.append(f"      grab: {row['grab']}")
        if row["problem"]:
            lines.append(f"      problem: {row['problem']}")
    lines.append(
        "Serial and hidraw devices:" if report["nodes"] else "Serial and hidraw devices: none"
    )
    for node in report["nodes"]:
        kind = "HID POS scanner" if node["hid_pos"] else node["kind"]
        use = (
            f"read as scanner {node['scanner_id']!r} ({node['rule']})"
            if node["scanner_id"]
            else "not configured"
        )
        lines.append(f"  {node['path']}  {node['vidpid']}  {node['name']!r}  {kind}: {use}")
        for link in node["links"]:
            lines.append(f"      link: {link}")
        if node["problem"]:
            lines.append(f"      problem: {node['problem']}")
    if "layout_source" in report:
        lines.append(f"Learned layouts from: {report['layout_source']}")
    lines.extend(f"Note: {note}" for note in report["notes"])
    return "\n".join(lines)
