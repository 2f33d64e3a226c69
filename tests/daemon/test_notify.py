"""The systemd notifier against a real AF_UNIX datagram socket (path and abstract namespace)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.daemon.notify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(2)
        yield sock, path


def test_ready_status_watchdog_stopping_are_sent_as_datagrams(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    notifier.ready("mqtt=up scanners=0/0")
    assert sock.recv(4096) == b"READY=1\nSTATUS=mqtt=up scanners=0/0"
    notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.status("queue=3")
    assert sock.recv(4096) == b"STATUS=queue=3"
    notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


def test_abstract_namespace_socket() -> None:
    name = f"nmvs-gateway-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        Notifier.from_environment({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process() -> None:
    mine = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_environment(mine).watchdog_interval == 15.0
    assert Notifier.from_environment({"WATCHDOG_USEC": "30000000"}).watchdog_interval == 15.0
    other = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}
    assert Notifier.from_environment(other).watchdog_interval is None
    assert Notifier.from_environment({"WATCHDOG_USEC": "0"}).watchdog_interval is None


def test_without_systemd_nothing_is_sent_and_nothing_fails(tmp_path: Path) -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    notifier.ready("x")
    gone = Notifier.from_environment({"NOTIFY_SOCKET": str(tmp_path / "missing.sock")})
    gone.ready("x")  # logged once, never raised
    gone.watchdog()


def test_a_reader_that_stopped_reading_never_blocks_the_sender(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener  # never read: its queue fills after a few datagrams
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": path})
    for n in range(1000):
        notifier.status(f"queue={n}")  # would block forever on a blocking socket
    assert sock.recv(4096) == b"STATUS=queue=0"
