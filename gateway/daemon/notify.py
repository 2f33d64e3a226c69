"""The systemd notification protocol, self-contained (no dependency, as systemd recommends).

A datagram of ``KEY=value`` lines to the ``AF_UNIX`` socket named by ``$NOTIFY_SOCKET`` (a
leading ``@`` means the abstract namespace). Without that variable — not started by systemd —
every call does nothing. Sending never blocks; failures (including a full socket queue) are
logged once and never stop the daemon.
"""

from __future__ import annotations

import os
import socket

import structlog


class Notifier:
    """``READY=1``, ``STATUS=…``, ``WATCHDOG=1`` and ``STOPPING=1`` for ``Type=notify`` units."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self._address = address
        self._watchdog_usec = watchdog_usec
        self._log = structlog.get_logger("gateway.daemon")
        self._warned = False

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        watchdog = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID")
        if usec.isdigit() and int(usec) > 0 and (pid is None or pid == str(os.getpid())):
            watchdog = int(usec)
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings: half the unit's ``WatchdogSec=``, or None."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2_000_000

    def send(self, *fields: str) -> None:
        if self._address is None:
            return
        address = self._address
        if address.startswith("@"):
            address = "\0" + address[1:]
        message = "\n".join(fields).encode()
        # Non-blocking: a reader that stopped reading (its queue holds only a few datagrams)
        # must never stall the event loop; the message is dropped instead.
        flags = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        try:
            with socket.socket(socket.AF_UNIX, flags) as sock:
                sock.connect(address)
                sock.send(message)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                self._log.warning("systemd_notify_failed", socket=self._address, error=str(exc))

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> None:
        self.send("STOPPING=1", f"STATUS={status}")
