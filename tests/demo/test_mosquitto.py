"""The private broker of the demo and the tests: a real mosquitto on its generated configuration."""

from __future__ import annotations

import socket
from pathlib import Path

from gateway.demo.mosquitto import start_mosquitto


def test_the_private_broker_runs_without_nagle_delay(tmp_path: Path) -> None:
    broker = start_mosquitto(tmp_path)
    try:
        lines = broker.conf_path.read_text().splitlines()
        assert "set_tcp_nodelay true" in lines  # small packets back to back: no ~40 ms stalls
        with socket.create_connection((broker.host, broker.port), timeout=5):
            pass  # mosquitto accepted the option and listens
    finally:
        broker.stop()
