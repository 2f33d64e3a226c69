"""The daemon fixtures (a real mosquitto, the simulator, ``nmvs-gateway run``) for the examples."""

from tests.daemon.conftest import broker, daemon, nmvs

__all__ = ["broker", "daemon", "nmvs"]
