"""One demo session: starts every part, plays the scenario, prints the summary, stops every part.

Ownership: :func:`demo` owns a temporary directory, the broker process, the simulator, the
daemon task, the LGO client and its listener, and the scenario task; an ``AsyncExitStack``
unwinds them in reverse order whatever happens (end of scenario, ``--duration``, Ctrl-C or
SIGTERM, an error). The daemon is stopped like under systemd: its stop event, then it drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import signal
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import aiomqtt
import httpx

from gateway.codes.pack import PackIdentifier
from gateway.daemon.app import serve
from gateway.daemon.config import Config, load_config
from gateway.daemon.logs import configure_logging
from gateway.daemon.notify import Notifier
from gateway.demo.driver import Play, StepReport, VirtualScanners, dispense_elsewhere
from gateway.demo.mosquitto import Broker, start_mosquitto
from gateway.demo.scenario import (
    KEYBOARD_SCANNERS,
    SERIAL_SCANNER,
    build_steps,
    choose_packs,
)
from gateway.demo.view import LgoView
from gateway.simulator.market import UserSpec
from gateway.simulator.marketfile import generate_market
from gateway.simulator.server import WireProtocol, running_simulator

GATEWAY_ID = "demo"
BASE = f"nmvs/{GATEWAY_ID}"
MARKET_PACKS = 300
MARKET_SEED = 7  # a market holding every part the scenario needs (choose_packs checks)
READY_TIMEOUT = 20.0
DAEMON_STOP_TIMEOUT = 15.0


def nmvs_section(backend: str, url: str, user: UserSpec, secret: Path) -> str:
    """The ``[nmvs]`` lines for ``backend`` logging in as the market's ``user`` (for the
    Solidsoft face, its user id is the client id and its password the client secret)."""
    if backend == "solidsoft-rest":
        return (
            f'backend = "{backend}"\nurl = "{url}"\nclient_id = "{user.user_id}"\n'
            f'client_secret_file = "{secret}"\n'
        )
    return (
        f'backend = "{backend}"\nurl = "{url}"\nclient_login_id = "{user.client_login_id}"\n'
        f'user_id = "{user.user_id}"\npassword_file = "{secret}"\n'
    )


def write_config(
    directory: Path,
    broker: Broker,
    backend: str,
    nmvs_url: str,
    user: UserSpec,
    scanners: VirtualScanners,
) -> Path:
    """The daemon's configuration for the demo (the same TOML a pharmacy writes)."""
    secret = directory / "nmvs-secret"
    secret.write_text(user.password + "\n")
    secret.chmod(0o600)
    keyboards = "".join(
        f'\n[[scanner]]\nid = "{scanner}"\nkind = "evdev"\nmatch = "{scanners.keyboard_paths[scanner]}"\n'
        f'layout = "{layout}"\ncounter = "{index}"\n'
        for index, (scanner, layout) in enumerate(KEYBOARD_SCANNERS.items(), 2)
    )
    path = directory / "gateway.toml"
    path.write_text(
        f"""# written by nmvs-gateway demo
[gateway]
id = "{GATEWAY_ID}"
state_dir = "{directory / "state"}"
log_format = "json"
health_interval = 1

[mqtt]
url = "{broker.url}"
reconnect_max_delay = 1

[nmvs]
{nmvs_section(backend, nmvs_url, user, secret)}
[policy]
on_scan = "verify"

[[scanner]]
id = "{SERIAL_SCANNER}"
kind = "serial"
path = "{scanners.serial_path}"
counter = "1"
{keyboards}"""
    )
    return path


async def demo(
    out: TextIO, *, duration: float | None, pace: float, backend: WireProtocol = "arvato-soap"
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        with tempfile.TemporaryDirectory(prefix="nmvs-demo-") as tmp:
            return await _session(Path(tmp), out, stop, duration, pace, backend)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _session(
    tmp: Path,
    out: TextIO,
    stop: asyncio.Event,
    duration: float | None,
    pace: float,
    backend: WireProtocol,
) -> int:
    tty = out.isatty()
    started = loop_time()
    async with contextlib.AsyncExitStack() as stack:
        log_path = tmp / "daemon.log"
        log = stack.enter_context(log_path.open("a", encoding="utf-8"))
        data = generate_market(MARKET_PACKS, today=datetime.now(UTC).date(), seed=MARKET_SEED)
        # The daemon's (and the simulator's) logs go to a file: the terminal is the LGO's view.
        configure_logging("info", "json", [u.password for u in data.users], stream=log)
        stack.callback(_quiet_logging)  # before the file closes
        broker = await asyncio.to_thread(start_mosquitto, tmp / "mosquitto")
        stack.callback(broker.stop)
        sim = await stack.enter_async_context(
            running_simulator(data, plain_http=True, protocol=backend)
        )
        admin = await stack.enter_async_context(httpx.AsyncClient(base_url=sim.url))
        gateway_user, other_user = data.users[0], data.users[1]
        packs = choose_packs(sim.core)
        steps = build_steps(packs)
        await dispense_elsewhere(sim, other_user, packs.elsewhere)
        scanners = stack.enter_context(VirtualScanners())
        config = load_config(write_config(tmp, broker, backend, sim.url, gateway_user, scanners))
        intro = [
            f"NMVS simulator  {sim.url} ({backend}, in this process; {data.pack_count} packs; "
            f"gateway user {gateway_user.user_id}; {packs.elsewhere.serial} already dispensed "
            f"by {other_user.user_id})",
            f"mosquitto       {broker.url} (pid {broker.pid}, private, config in {tmp})",
            f"daemon          in this process, state in {config.gateway.state_dir}, log "
            f"{log_path}, on_scan = verify",
            f"scanners        {SERIAL_SCANNER} on {scanners.serial_path} (serial, CR); "
            + "; ".join(
                f"{s} on a virtual evdev node (an AZERTY scanner; gateway layout {layout})"
                for s, layout in KEYBOARD_SCANNERS.items()
            ),
            f"LGO view        what a client subscribed to {BASE}/+ receives:",
        ]
        title = f"nmvs-gateway demo — the LGO's view of {broker.url} {BASE}/+   (Ctrl-C stops)"
        view = LgoView(BASE, out, tty=tty, title=title)
        if not tty:
            out.write("nmvs-gateway demo\n" + "".join(f"  {line}\n" for line in intro))
            out.write(view.header() + "\n")
            out.flush()
        lgo = aiomqtt.Client(broker.host, broker.port, identifier="demo-lgo")
        await stack.enter_async_context(lgo)
        await lgo.subscribe(f"{BASE}/+", qos=1)
        stack.push_async_callback(_cancel, asyncio.create_task(_listen(lgo, view)))

        daemon_stop = asyncio.Event()
        daemon = asyncio.create_task(
            serve(config, daemon_stop, Notifier(None), input_backend=scanners.input)
        )
        stack.push_async_callback(_stop_daemon, daemon, daemon_stop)

        async def publish(payload: bytes) -> None:
            await lgo.publish(f"{BASE}/request", payload, qos=1)

        play = Play(steps, view, scanners, publish, pace)
        outcome = await _play(play, view, config, stop, daemon, duration, started)
        if not stop.is_set() and outcome == "done" and duration is None:
            view.caption(
                "scenario over; the gateway keeps running. Paste these in another terminal "
                "(Ctrl-C here stops):"
            )
            for command in own_requests(broker.port, packs.spare, view.scans):
                view.caption("  " + command)
            await _first(stop.wait(), daemon)
        await _fresh_health(view)
        transactions = (await admin.get("/_sim/transactions")).json()
        alerts = (await admin.get("/_sim/alerts")).json()
        summary, ok = _summary(
            view, play.reports, transactions, alerts, gateway_user.user_id, outcome
        )
    # printed once everything has stopped (the LGO saw the gateway go offline)
    if tty:
        out.write("\n".join(intro) + "\n")
    out.write(summary)
    out.flush()
    return 0 if ok else 1


def own_requests(port: int, pack: PackIdentifier, scans: list[dict[str, Any]]) -> list[str]:
    """Ready-to-paste ``mosquitto_pub`` / ``mosquitto_sub`` commands with a real pack of the
    demo's market (untouched by the scenario) and the full id of the last good scan."""
    pub = f"mosquitto_pub -p {port} -q 1 -t {BASE}/request -m"
    body = json.dumps({"id": "try-verify-1", "op": "verify", "pack": pack.to_json()})
    sale = json.dumps({"id": "try-sale-1", "op": "dispense", "pack": pack.to_json()})
    undo = json.dumps({"id": "try-undo-1", "op": "undo_dispense", "pack": pack.to_json()})
    commands = [
        f"mosquitto_sub -p {port} -v -t {shlex.quote(BASE + '/+')}",
        *(f"{pub} {shlex.quote(payload)}" for payload in (body, sale, undo)),
    ]
    good = [scan for scan in scans if scan.get("ok") and scan.get("collapsed_into") is None]
    if good:
        by_scan = json.dumps({"id": "try-scan-1", "op": "verify", "scan_id": good[-1]["id"]})
        commands.append(f"{pub} {shlex.quote(by_scan)}")
    return commands


def _quiet_logging() -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.NullHandler())


def loop_time() -> float:
    return asyncio.get_running_loop().time()


async def _play(
    play: Play,
    view: LgoView,
    config: Config,
    stop: asyncio.Event,
    daemon: asyncio.Task[None],
    duration: float | None,
    started: float,
) -> str:
    """Wait for the scanners, then run the steps; ``done``, ``stopped``, ``timeout`` or why not."""

    async def scenario() -> None:
        expected = {s.id for s in config.scanners}
        await view.wait_for(lambda v: _ready(v) >= expected, READY_TIMEOUT)
        await play.run()

    task = asyncio.create_task(scenario())
    try:
        remaining = None if duration is None else max(0.0, duration - (loop_time() - started))
        async with asyncio.timeout(remaining):
            await _first(task, stop.wait(), daemon)
    except TimeoutError:
        return "timeout"
    finally:
        await _cancel(task)
    if daemon.done():
        return "the daemon stopped: " + _why(daemon)
    if stop.is_set() and not task.done():
        return "stopped"
    if task.cancelled():
        return "stopped"
    error = task.exception()
    if error is not None:
        return f"failed: {type(error).__name__}: {error}"
    return "done"


def _ready(view: LgoView) -> set[str]:
    health = view.health or {}
    return {s["id"] for s in health.get("scanners", []) if s["state"] == "ready"}


def _why(daemon: asyncio.Task[None]) -> str:
    if daemon.cancelled():
        return "cancelled"
    error = daemon.exception()
    return "no error" if error is None else f"{type(error).__name__}: {error}"


async def _first(*waits: Any) -> None:
    """Wait until the first of ``waits`` (coroutines or tasks) finishes; cancel the others."""
    tasks = [w if isinstance(w, asyncio.Task) else asyncio.ensure_future(w) for w in waits]
    owned = [t for t, w in zip(tasks, waits, strict=True) if t is not w]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in owned:
            await _cancel(task)


async def _listen(lgo: aiomqtt.Client, view: LgoView) -> None:
    async for message in lgo.messages:
        payload = message.payload
        if isinstance(payload, bytes):
            await view.receive(str(message.topic), payload)


async def _fresh_health(view: LgoView) -> None:
    """Wait (briefly) for a health message published after the last result."""
    count = sum(1 for _ in view.results)
    seen = view.health
    with contextlib.suppress(TimeoutError):
        await view.wait_for(lambda v: v.health is not seen and len(v.results) == count, 3.0)


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for it; its own failure, if any, is not raised here.

    The cancellation is repeated until the task ends: Python 3.11's ``asyncio.wait_for`` (used
    inside aiomqtt's publish) can swallow one that lands as the awaited operation completes.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    if not task.cancelled():
        task.exception()


async def _stop_daemon(daemon: asyncio.Task[None], daemon_stop: asyncio.Event) -> None:
    """Stop the daemon as SIGTERM would (it drains), cancelling it only if it hangs."""
    daemon_stop.set()
    try:
        async with asyncio.timeout(DAEMON_STOP_TIMEOUT):
            await asyncio.wait({daemon})
    except TimeoutError:
        await _cancel(daemon)
    if daemon.done() and not daemon.cancelled():
        daemon.exception()  # already reported by the summary ("the daemon stopped: …")


def _summary(
    view: LgoView,
    reports: list[StepReport],
    transactions: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    gateway_user: str,
    outcome: str,
) -> tuple[str, bool]:
    ours = [t for t in transactions if t["user_id"] == gateway_user]
    others = len(transactions) - len(ours)
    by_use_case = Counter(str(t["use_case"]) for t in ours)
    refused = sum(1 for s in view.scans if not s.get("ok"))
    prevented: dict[str, int] = {}
    if view.health is not None:
        prevented = {k: v for k, v in view.health["week"]["prevented"].items() if v}
    unexpected = [r for r in reports if not r.ok]
    lines = [
        "",
        "summary",
        f"  scenario: {outcome}; {len(reports)} steps played, {len(unexpected)} unexpected",
        *(f"    step {r.number} ({r.caption}): {r.got}, expected {r.expected}" for r in unexpected),
        f"  scans: {len(view.scans)} published ({refused} refused by the decoder)",
        f"  requests: {len(view.requests)} sent by the LGO; "
        f"results: {sum(1 for r in view.results if r['status'] != 'queued')} final",
        f"  nmvs calls: {len(ours)} by the gateway ("
        + ", ".join(f"{k} x{v}" for k, v in sorted(by_use_case.items()))
        + f"); {others} by another user (the goods-in dispense)",
        f"  alerts raised: {len(alerts)}  (the simulator's /_sim/alerts)",
        f"  alerts prevented: {sum(prevented.values())}  (requests the firewall kept from the NMVS: "
        + (", ".join(f"{k} x{v}" for k, v in sorted(prevented.items())) or "none")
        + ")",
        "",
    ]
    ok = outcome in ("done", "stopped", "timeout") and not unexpected and not alerts
    return "\n".join(lines), ok
