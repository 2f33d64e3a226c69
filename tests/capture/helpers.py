"""Helpers shared by the capture tests: running a hub and waiting on it without sleeping blindly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from gateway.capture.config import ScannerConfig
from gateway.capture.hub import ScannerHub
from gateway.capture.runtime import ScannerHealth
from gateway.capture.scan import CapturedScan

WAIT_S = 10.0  # generous: only reached when a test is failing

SCAN_TEXT = "]d2010858600770385117241231" + "10HB5R\x1d21587E4QA11R"
PACK = {
    "scheme": "GTIN",
    "product_code": "08586007703851",
    "batch": "HB5R",
    "expiry": "241231",
    "serial": "587E4QA11R",
    "aim": "]d2",
}


def config(index: int = 0, **table: Any) -> ScannerConfig:
    return ScannerConfig.from_toml(table, index)


def fast_hub(configs: list[ScannerConfig], **kwargs: Any) -> ScannerHub:
    """A hub with test-sized rescan and backoff delays and no udev."""
    kwargs.setdefault("rescan_s", 0.05)
    kwargs.setdefault("backoff", (0.01, 0.2))
    kwargs.setdefault("watch_udev", False)
    return ScannerHub(configs, **kwargs)


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Poll a condition on state the hub exposes only as snapshots (health, the fake node)."""
    async with asyncio.timeout(WAIT_S):
        while not predicate():  # noqa: ASYNC110 - no event to wait on: snapshots by design
            await asyncio.sleep(0.002)


class Scans:
    """Reads a hub's scans one at a time with a timeout."""

    def __init__(self, hub: ScannerHub) -> None:
        self.hub = hub
        self._iterator: AsyncIterator[CapturedScan] = hub.scans()

    async def next(self) -> CapturedScan:
        async with asyncio.timeout(WAIT_S):
            return await anext(self._iterator)

    async def none_within(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                scan = await anext(self._iterator)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected scan {scan.to_json()}")

    async def until(
        self, predicate: Callable[[dict[str, ScannerHealth]], bool]
    ) -> dict[str, ScannerHealth]:
        """Wait until the health snapshot (by scanner id) satisfies ``predicate``."""
        await wait_until(lambda: predicate({h.id: h for h in self.hub.health()}))
        return {h.id: h for h in self.hub.health()}
