"""Response routes (request id → v5 response topic) stay bounded."""

from __future__ import annotations

from gateway.mqtt.relay import ResponseRoutes, Route


def test_routes_are_bounded_oldest_first_and_refreshed_on_reuse() -> None:
    routes = ResponseRoutes(capacity=3)
    for n in range(3):
        routes.remember(f"r{n}", Route(f"reply/{n}", bytes([n])))
    routes.remember("r0", Route("reply/0-again", None))  # r0 becomes the newest
    routes.remember("r3", Route("reply/3", None))  # evicts r1, the oldest
    assert routes.get("r1") is None
    assert routes.get("r0") == Route("reply/0-again", None)
    assert routes.get("r2") == Route("reply/2", b"\x02")
    routes.forget("r2")
    assert routes.get("r2") is None
