"""Light helpers shared by the engine tests and the crash-test subprocess (no pytest import)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gateway.engine import Settings
from gateway.nmvs.arvato import ArvatoConfig, Secret

USER = "SIMUSER1"
FAST = Settings(
    nmvs_user=USER,
    retry_initial=0.05,
    retry_max_delay=0.5,
    reconcile_delay=0.05,
    probe_interval_max=0.2,
)


def settings(**changes: Any) -> Settings:
    """Engine settings with short delays for tests."""
    return replace(FAST, **changes)


def arvato_config(url: str) -> ArvatoConfig:
    return ArvatoConfig(
        endpoint=url,
        client_login_id="SIMCLIENT1",
        user_id=USER,
        password=Secret("Simulator-Pass1"),
        software_supplier="tests",
        read_timeout=2.0,
    )
