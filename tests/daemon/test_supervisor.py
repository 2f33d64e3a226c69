"""The supervisor: a crashed component is restarted with backoff and its crashes are counted
for the health report; a fatal error is not swallowed."""

from __future__ import annotations

import pytest

from gateway.daemon.app import Supervisor
from gateway.engine import StoreError


async def test_a_crashing_component_is_restarted_with_backoff_and_reported() -> None:
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)

    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 3:
            raise OSError(f"device gone {runs}")

    supervisor = Supervisor(sleep=record)
    await supervisor.keep("capture", flaky)
    assert runs == 4
    assert delays == [0.5, 1.0, 2.0]
    assert supervisor.components["capture"].to_json() == {
        "state": "stopped",
        "restarts": 3,
        "last_error": "OSError: device gone 3",
    }


async def test_a_fatal_error_ends_the_component_and_propagates() -> None:
    async def broken() -> None:
        raise StoreError("database disk image is malformed")

    supervisor = Supervisor()
    with pytest.raises(StoreError):
        await supervisor.keep("relay", broken)
    assert supervisor.components["relay"].state == "stopped"
    assert supervisor.components["relay"].restarts == 0
