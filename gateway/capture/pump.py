"""The read loop shared by byte-oriented scanners (serial/CDC and HID POS): read, frame, decode,
deliver — with the framer's gap deadline as the read timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from gateway.capture.decoding import decode_frame, interrupted
from gateway.capture.framing import Frame
from gateway.capture.runtime import DeviceLost, ScannerRuntime
from gateway.codes.decode import DecodeSettings, decode_bytes


class Framer(Protocol):
    def feed(self, data: bytes, now: float) -> list[Frame]: ...

    def poll(self, now: float) -> Frame | None: ...

    def deadline(self) -> float | None: ...

    def pending(self) -> bytes: ...


async def pump_frames(
    read: Callable[[], Awaitable[bytes]],
    framer: Framer,
    settings: DecodeSettings,
    rt: ScannerRuntime,
    terminator: str | None,
) -> None:
    """Run until ``read`` returns b"" (end of stream) or raises; both mean the device is gone."""
    clock = rt.clock
    while True:
        deadline = framer.deadline()
        try:
            if deadline is None:
                data = await read()
            else:
                async with asyncio.timeout(max(deadline - clock.monotonic(), 0)):
                    data = await read()
        except TimeoutError:
            frames = [f for f in (framer.poll(clock.monotonic()),) if f is not None]
        except OSError as exc:
            await _lost(framer, settings, rt, f"{exc.strerror or exc}")
        else:
            if not data:
                await _lost(framer, settings, rt, "end of stream")
            frames = framer.feed(data, clock.monotonic())
        for frame in frames:
            await rt.deliver(decode_frame(frame, settings, terminator), frame.data)


async def _lost(framer: Framer, settings: DecodeSettings, rt: ScannerRuntime, why: str) -> None:
    partial = framer.pending()
    if partial:
        decoded = interrupted(decode_bytes(partial, settings), "the device went away mid-scan")
        await rt.deliver(decoded, partial)
    raise DeviceLost(f"{rt.device} went away ({why})")
