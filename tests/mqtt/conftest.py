"""Fixtures: a real mosquitto per test (see ``tests/brokers.py``)."""

from tests.brokers import broker, tls_broker

__all__ = ["broker", "tls_broker"]
