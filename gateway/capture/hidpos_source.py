"""USB HID POS scanners (usage page 0x8C) read from their ``/dev/hidrawN`` node.

The node is opened non-blocking and read through ``loop.add_reader``; 64-byte input reports are
assembled into scans by :class:`~gateway.capture.framing.HidPosAssembler`. Honeywell and Youjie
scanners only send HID POS reports after the feature report 254 = [0x01]; that is sent on open
when the scanner's ``hidpos_enable`` is set, never otherwise (it changes the scanner's mode).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os

from gateway.capture.config import ScannerConfig
from gateway.capture.devices import access_problem, has_pos_usage_page, hidraw_report_descriptor
from gateway.capture.framing import HIDPOS_LAYOUTS, HidPosAssembler
from gateway.capture.pump import pump_frames
from gateway.capture.runtime import CaptureError, DeviceMissing, ScannerRuntime, ScannerState

HONEYWELL_HIDPOS_FEATURE = bytes([254, 0x01])
READ_SIZE = 4096


def hidiocsfeature(length: int) -> int:
    """``HIDIOCSFEATURE(len)`` from ``linux/hidraw.h``: _IOC(READ|WRITE, 'H', 0x06, len)."""
    return (3 << 30) | (length << 16) | (ord("H") << 8) | 0x06


class HidPosSource:
    def __init__(self, config: ScannerConfig) -> None:
        self._config = config

    async def run(self, rt: ScannerRuntime) -> None:
        config = self._config
        path = config.path
        assert path is not None  # hidpos configs always have one (ScannerConfig.from_toml)
        flags = (os.O_RDWR if config.hidpos_enable else os.O_RDONLY) | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
                raise DeviceMissing(
                    f"{path} does not exist (scanner unplugged, or not in HID POS mode)"
                ) from None
            raise CaptureError(
                access_problem(path, "hidraw") or f"{path}: {exc.strerror}"
            ) from None
        try:
            rt.device = path
            if config.hidpos_enable:
                try:
                    fcntl.ioctl(
                        fd, hidiocsfeature(len(HONEYWELL_HIDPOS_FEATURE)), HONEYWELL_HIDPOS_FEATURE
                    )
                    rt.event("hidpos_enabled")
                except OSError as exc:
                    rt.event(
                        "hidpos_enable_failed", error=f"feature report 254 refused: {exc.strerror}"
                    )
            descriptor = hidraw_report_descriptor(path)
            if descriptor and not has_pos_usage_page(descriptor):
                rt.event(
                    "not_hid_pos",
                    error=f"{path} does not declare the bar-code scanner usage page (0x8C): "
                    "switch the scanner to HID POS mode (README, Scanners) or use its keyboard node",
                )
            rt.event("opened", ScannerState.READY)
            assembler = HidPosAssembler(
                HIDPOS_LAYOUTS[config.hidpos_layout], config.gap_s, config.max_scan_bytes
            )
            await pump_frames(lambda: read_ready(fd), assembler, config.decode, rt, None)
        finally:
            os.close(fd)


async def read_ready(fd: int) -> bytes:
    """One non-blocking read of ``fd`` once it is readable."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, READ_SIZE)
        except BlockingIOError:
            pass
        ready = loop.create_future()
        loop.add_reader(fd, _resolve, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
