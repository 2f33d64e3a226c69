"""The transaction engine: durable SQLite queue, idempotency keys, pack ledger, alert firewall.

Public API (used by the daemon and the MQTT relay): :class:`Engine` with ``submit``,
``submit_scan``, ``get``, ``scan``, ``health``, ``pending_events`` / ``ack_events`` /
``wait_events``; the values in :mod:`gateway.engine.model` (the outcome vocabulary lives in its docstring).
"""

from gateway.engine.engine import Engine
from gateway.engine.model import (
    EngineError,
    Event,
    Health,
    NmvsSummary,
    Outcome,
    Request,
    RequestConflictError,
    ScanOutcome,
    ScanRecord,
    ScanView,
    Settings,
    SettingsError,
    Status,
    StorageFullError,
    StoreError,
    Submitted,
    TransactionView,
)

__all__ = [
    "Engine",
    "EngineError",
    "Event",
    "Health",
    "NmvsSummary",
    "Outcome",
    "Request",
    "RequestConflictError",
    "ScanOutcome",
    "ScanRecord",
    "ScanView",
    "Settings",
    "SettingsError",
    "Status",
    "StorageFullError",
    "StoreError",
    "Submitted",
    "TransactionView",
]
