"""Subprocess half of the crash test: feed a plan to an engine, then drain the queue.

``python -m tests.engine.crash_driver PLAN STATE_DIR URL``. The test kills it with SIGKILL at
random moments and starts it again; every start resubmits the whole plan (ids make that
idempotent) and prints ``STARTED`` once the engine is open, ``DRAINED`` when nothing is queued.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import structlog

from gateway.codes.pack import PackIdentifier
from gateway.engine import Engine, Request
from gateway.nmvs.arvato import ArvatoClient
from gateway.vocabulary import Operation
from tests.engine.support import arvato_config, settings


def chunks(plan: list[dict[str, Any]], size: int = 16) -> list[list[dict[str, Any]]]:
    """Consecutive slices of the plan in which no pack appears twice, so that submitting a
    slice concurrently keeps each pack's requests in plan order."""
    out: list[list[dict[str, Any]]] = [[]]
    seen: set[str] = set()
    for item in plan:
        serial = item["pack"]["serial"]
        if serial in seen or len(out[-1]) == size:
            out.append([])
            seen.clear()
        out[-1].append(item)
        seen.add(serial)
    return out


async def main(plan: list[dict[str, Any]], state_dir: str, url: str) -> None:
    client = ArvatoClient(arvato_config(url))
    try:
        async with Engine.open(
            state_dir,
            client,
            settings(
                concurrency=4,
                bulk_min_backlog=30,
                bulk_min_group=3,
                bulk_poll_interval=0.1,
                bulk_result_horizon=1.0,
            ),
        ) as engine:
            print("STARTED", flush=True)
            for chunk in chunks(plan):  # several tills at once: a backlog builds up
                await asyncio.gather(
                    *(
                        engine.submit(
                            Request(
                                Operation(item["op"]),
                                PackIdentifier.from_json(item["pack"]),
                                id=item["id"],
                            )
                        )
                        for item in chunk
                    )
                )
            while (await engine.health()).queue_depth:
                await engine.wait_events()
            print("DRAINED", flush=True)
    finally:
        await client.aclose()


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text()), sys.argv[2], sys.argv[3]))
