"""End-to-end rig: the real daemon as a subprocess (``nmvs-gateway run``), a real mosquitto, the
NMVS simulator over loopback HTTP, and the daemon's readiness read from a real systemd notify
socket. Shared by ``tests/daemon`` and ``bench/bench_daemon.py``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.codes.pack import PackIdentifier
from tests.brokers import Broker, Received
from tests.engine.support import USER, Rig, market_data, simulator_rig
from tests.mqtt.schemas import kind_of, validate

# The simulator's generated market knows this pharmacy (gateway/simulator/marketfile.py).
NMVS_CLIENT, NMVS_USER, NMVS_PASSWORD = "SIMCLIENT1", USER, "Simulator-Pass1"
GATEWAY_ID = "counter-1"
BASE = f"nmvs/{GATEWAY_ID}"


def gs1_text(pack: PackIdentifier) -> str:
    """The text a scanner sends for ``pack`` (GS after the variable-length batch)."""
    return f"01{pack.product_code}17{pack.expiry}10{pack.batch}\x1d21{pack.serial}"


def write_config(
    directory: Path,
    broker: Broker,
    nmvs_url: str,
    *,
    extra: str = "",
    on_scan: str = "verify",
    policy: str = "",
    backend: str = "arvato-soap",
) -> Path:
    """The daemon's configuration; ``backend = "solidsoft-rest"`` logs in as the same market
    account (its user id is the client id, its password the client secret)."""
    directory.mkdir(parents=True, exist_ok=True)
    password = directory / "nmvs-password"
    password.write_text(NMVS_PASSWORD + "\n")
    password.chmod(0o600)
    if backend == "solidsoft-rest":
        nmvs = f'client_id = "{NMVS_USER}"\nclient_secret_file = "{password}"'
    else:
        nmvs = (
            f'client_login_id = "{NMVS_CLIENT}"\nuser_id = "{NMVS_USER}"\n'
            f'password_file = "{password}"'
        )
    path = directory / "gateway.toml"
    path.write_text(
        f"""[gateway]
id = "{GATEWAY_ID}"
state_dir = "{directory / "state"}"
log_format = "json"
health_interval = 1
[mqtt]
url = "{broker.url}"
reconnect_max_delay = 1
[nmvs]
backend = "{backend}"
url = "{nmvs_url}"
{nmvs}
read_timeout = 3.0
[policy]
on_scan = "{on_scan}"
retry_initial = 0.05
retry_max_delay = 0.5
reconcile_delay = 0.1
reconcile_horizon = 0.3
probe_interval_max = 0.3
{policy}
{extra}"""
    )
    return path


@dataclass
class Daemon:
    """``nmvs-gateway run --config`` in a subprocess, with a notify socket to see READY=1."""

    config: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    notifications: list[str] = field(default_factory=list)
    _notify: socket.socket | None = None

    def start(self, within: float = 20.0, **environment: str) -> None:
        notify_path = self.config.parent / "notify.sock"
        with contextlib.suppress(FileNotFoundError):
            notify_path.unlink()
        if self._notify is not None:  # a restart: wait for this run's READY=1, not the last one
            self._notify.close()
        self.notifications = []
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(notify_path))
        self._notify.settimeout(0.1)
        env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "PYTHONUNBUFFERED": "1"}
        env.pop("CREDENTIALS_DIRECTORY", None)
        env.pop("WATCHDOG_USEC", None)
        env.update(environment)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the daemon exited with {self.process.returncode}:\n{self.log_text()}"
                )
            if any(n.startswith("READY=1") for n in self.read_notifications()):
                return
        raise RuntimeError(f"the daemon did not become ready:\n{self.log_text()}")

    def read_notifications(self) -> list[str]:
        assert self._notify is not None
        with contextlib.suppress(TimeoutError, BlockingIOError):
            while True:
                self.notifications.append(self._notify.recv(4096).decode())
        return self.notifications

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, within: float = 20.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=within)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
        if self._notify is not None:
            self._notify.close()
            self._notify = None


def nmvs_simulator(count: int = 300) -> contextlib.AbstractAsyncContextManager[Rig]:
    """The simulator with a generated market of ``count`` packs, and its admin API."""
    return simulator_rig(market_data(count))


def request(id: str, op: str, pack: PackIdentifier, **more: Any) -> bytes:
    return json.dumps({"id": id, "op": op, "pack": pack.to_json(), **more}).encode()


def finals(received: list[Any], topic: str) -> dict[str, list[dict[str, Any]]]:
    """Every final result seen on ``topic``, grouped by request id."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for message in received:
        if message.topic != topic:
            continue
        body = json.loads(message.payload)
        if body["status"] != "queued":
            by_id.setdefault(body["id"], []).append(body)
    return by_id


def validate_all(received: list[Received]) -> None:
    """Validate every message the gateway published (not the requests) against its schema."""
    for message in received:
        if message.topic.startswith(BASE + "/") and kind_of(message.topic) != "request":
            validate(kind_of(message.topic), message.payload)
