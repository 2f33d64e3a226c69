"""A private mosquitto broker: started on a free loopback port with a temporary configuration
(persistence off), stopped by its owner. Used by ``nmvs-gateway demo`` and by the tests
(``tests/brokers.py`` adds TLS certificates and password files on top).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


class BinaryNotFound(RuntimeError):
    """A program the broker needs is not installed; the message says how to install it."""


def find_binary(name: str, *candidates: str) -> str:
    for candidate in (name, *candidates):
        found = shutil.which(candidate)
        if found:
            return found
    raise BinaryNotFound(
        f"{name} not found on PATH or in /usr/sbin: install the Debian package 'mosquitto' "
        "(.ci/setup does it, or: sudo apt-get install mosquitto)"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class BrokerTls:
    """Certificates for a TLS listener: a CA, the server certificate and one client identity."""

    ca_file: Path
    client_cert_file: Path
    client_key_file: Path


@dataclass
class Broker:
    host: str
    port: int
    conf_path: Path
    log_path: Path
    tls: BrokerTls | None = None
    username: str | None = None
    password: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self, timeout: float = 10.0) -> None:
        binary = find_binary("mosquitto", *MOSQUITTO_CANDIDATES)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [binary, "-c", str(self.conf_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self.process.returncode} at start:\n"
                    + self.log_path.read_text(errors="replace")
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not accept connections on port {self.port}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()


def start_mosquitto(
    directory: Path,
    *,
    listener_lines: Sequence[str] = (),
    tls: BrokerTls | None = None,
    username: str | None = None,
    password: str | None = None,
) -> Broker:
    """Write a configuration into ``directory`` and start mosquitto with it (caller stops it).

    ``listener_lines`` are extra configuration lines (TLS files…); with ``username`` and
    ``password`` a password file is written and anonymous access refused.
    """
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    lines = [
        f"listener {port} 127.0.0.1",
        "persistence false",
        # no Nagle delay on small packets (with delayed ACK, ~40 ms per exchange on loopback)
        "set_tcp_nodelay true",
        # Started as root, mosquitto would switch to user "mosquitto" and lose our temp files.
        f"user {getpass.getuser()}",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "max_queued_messages 100000",
        "max_inflight_messages 0",
        *listener_lines,
    ]
    if username is not None:
        if password is None:
            raise ValueError("a username needs a password")
        passwd = directory / "passwd"
        passwd.touch(mode=0o600)
        subprocess.run(
            [find_binary("mosquitto_passwd"), "-b", str(passwd), username, password],
            check=True,
            capture_output=True,
        )
        lines += [f"password_file {passwd}", "allow_anonymous false"]
    else:
        lines.append("allow_anonymous true")
    conf = directory / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    os.chmod(conf, 0o600)
    broker = Broker(
        "127.0.0.1",
        port,
        conf,
        directory / "mosquitto.log",
        tls=tls,
        username=username,
        password=password,
    )
    broker.start()
    return broker
