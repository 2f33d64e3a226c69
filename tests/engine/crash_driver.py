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

import structlog

from gateway.codes.pack import PackIdentifier
from gateway.engine import Engine, Request
from gateway.nmvs.arvato import ArvatoClient
from gateway.nmvs.backend import Operation
from tests.engine.support import arvato_config, settings


async def main(plan: list[dict[str, str]], state_dir: str, url: str) -> None:
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
            for item in plan:
                pack = PackIdentifier.from_json(item["pack"])
                await engine.submit(Request(Operation(item["op"]), pack, id=item["id"]))
            while (await engine.health()).queue_depth:
                await engine.wait_events()
            print("DRAINED", flush=True)
    finally:
        await client.aclose()


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text()), sys.argv[2], sys.argv[3]))
