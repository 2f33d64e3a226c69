"""Keyboard-wedge scanners through evdev: find the device, grab it exclusively, read its keys.

Life of one attachment (the hub's supervisor restarts it as needed):
1. pick the first matching device not already claimed by another configured scanner;
2. wait until no key is down (bounded), then ``EVIOCGRAB`` — grabbing while a key is held would
   leave that key stuck for the desktop; a key pressed in the race window is caught by checking
   again after the grab, releasing and retrying;
3. read with our own ``loop.add_reader`` (not ``async_read_loop``, which ``close()`` does not end:
   python-evdev #248), feeding every event — ``EV_SYN`` included, so the splitter sees
   ``SYN_DROPPED`` — to the keyboard ``ScanSplitter``; an asyncio timer drives its inter-key gap;
4. ``ENODEV`` (unplugged) ends the attachment: a scan in progress is delivered as interrupted,
   the reader is removed, the device closed (no ungrab: the kernel already dropped it).
"""

from __future__ import annotations

import asyncio
import errno

from evdev import ecodes

from gateway.capture.config import ScannerConfig
from gateway.capture.decoding import decode_trace, interrupted
from gateway.capture.devices import EvdevDevice, InputBackend, access_problem, select_device
from gateway.capture.runtime import (
    CaptureError,
    DeviceLost,
    DeviceMissing,
    ScannerRuntime,
    ScannerState,
)
from gateway.capture.scan import Clock
from gateway.codes.decode import DecodeSettings, decode_keys
from gateway.codes.keyboard import KeyTrace, ScanSplitter, key_name

GRAB_RETRY_S = 0.01
MAX_PENDING_SCANS = 64  # decoded-but-undelivered scans before reading pauses
_SPLITTER_TYPES = frozenset({ecodes.EV_KEY, ecodes.EV_SYN})
GONE = frozenset({errno.ENODEV, errno.ENXIO, errno.EIO, errno.EBADF})


class EvdevSource:
    """Reads one keyboard-wedge scanner; ``run`` returns or raises when the attachment ends."""

    def __init__(
        self,
        config: ScannerConfig,
        backend: InputBackend,
        claimed: set[str],
    ) -> None:
        self._config = config
        self._backend = backend
        self._claimed = claimed

    async def run(self, rt: ScannerRuntime) -> None:
        match = self._config.match
        assert match is not None  # evdev configs always have one (ScannerConfig.from_toml)
        info = select_device(self._config, self._backend.list(), self._claimed)
        if info is None:
            raise DeviceMissing(f"no input device matches {match.text!r}")
        if info.error is not None:
            raise CaptureError(access_problem(info.path, "evdev") or f"{info.path}: {info.error}")
        try:
            device = self._backend.open(info.path)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, *GONE):
                raise DeviceMissing(f"{info.path} disappeared before it could be opened") from None
            raise CaptureError(
                access_problem(info.path, "evdev") or f"{info.path}: {exc.strerror}"
            ) from None
        self._claimed.add(info.path)
        rt.device = info.path
        rt.event("attached", ScannerState.ATTACHED, device_name=info.name, vidpid=info.vidpid)
        try:
            await self._grab(device, rt)
            rt.event("grabbed", ScannerState.READY)
            await EvdevReader(device, self._config.decode, rt).run()
        finally:
            self._claimed.discard(info.path)
            device.close()

    async def _grab(self, device: EvdevDevice, rt: ScannerRuntime) -> None:
        deadline = rt.clock.monotonic() + self._config.grab_wait_ms / 1000
        waited = False
        while True:
            held = _active_keys(device)
            if not held:
                try:
                    device.grab()
                except OSError as exc:
                    if exc.errno == errno.EBUSY:
                        raise CaptureError(
                            f"{device.path} is grabbed by another process (another gateway, "
                            "'evtest --grab'…): stop it; only one program can own a scanner"
                        ) from None
                    _raise_if_gone(exc, device)
                    raise
                held = _active_keys(device)
                if not held:
                    return
                # a key went down in the race window: release so the desktop sees its key-up
                try:
                    device.ungrab()
                except OSError as exc:
                    _raise_if_gone(exc, device)
                    raise
            if not waited:
                rt.event("waiting_for_key_release", keys=[key_name(k) for k in held])
                waited = True
            if rt.clock.monotonic() >= deadline:
                raise CaptureError(
                    f"{device.path}: keys held for {self._config.grab_wait_ms} ms "
                    f"({', '.join(key_name(k) for k in held)}); not grabbing while a key is down "
                    "(it would stay stuck for the desktop): release the trigger or check the scanner"
                )
            await asyncio.sleep(GRAB_RETRY_S)


def _active_keys(device: EvdevDevice) -> list[int]:
    try:
        return list(device.active_keys())
    except OSError as exc:
        _raise_if_gone(exc, device)
        raise


def _raise_if_gone(exc: OSError, device: EvdevDevice) -> None:
    if exc.errno in GONE:
        raise DeviceLost(f"{device.path} was removed ({exc.strerror})") from None


class EvdevReader:
    """Pumps one open, grabbed device into decoded scans until the device goes away."""

    def __init__(self, device: EvdevDevice, settings: DecodeSettings, rt: ScannerRuntime) -> None:
        self._device = device
        self._settings = settings
        self._rt = rt
        self._clock: Clock = rt.clock
        self._splitter = ScanSplitter(settings.keyboard)
        gap_ms = settings.keyboard.gap_ms
        self._gap_s = None if gap_ms is None else gap_ms / 1000 + 0.001
        self._ready: list[KeyTrace] = []
        self._wake = asyncio.Event()
        self._failure: Exception | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._latest = 0.0  # newest event timestamp seen
        self._paused = False  # reading stopped until pending scans are delivered

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        fd = self._device.fd
        loop.add_reader(fd, self._on_readable)
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                ready, self._ready = self._ready, []
                for trace in ready:
                    decoded = decode_trace(trace, self._settings, self._rt.belief)
                    await self._rt.deliver(decoded, trace)
                if self._paused and self._failure is None:
                    self._paused = False
                    loop.add_reader(fd, self._on_readable)
                    self._arm_gap_timer(self._gap_s)  # a scan may end by silence alone
                if isinstance(self._failure, OSError):
                    await self._device_lost(self._failure)
                if self._failure is not None:
                    raise self._failure
        finally:
            loop.remove_reader(fd)
            if self._timer is not None:
                self._timer.cancel()

    def _on_readable(self) -> None:
        self._read_batch()
        self._after_read()

    def _after_read(self) -> None:
        if len(self._ready) >= MAX_PENDING_SCANS and self._failure is None:
            # nobody is taking scans: stop reading and let the kernel buffer (it reports an
            # overflow as SYN_DROPPED, which marks the scan it cuts) instead of growing memory
            self._paused = True
            asyncio.get_running_loop().remove_reader(self._device.fd)
        if self._ready or self._failure is not None:
            self._wake.set()
        self._arm_gap_timer(self._gap_s)

    def _read_batch(self) -> bool:
        """One ``read()`` into the splitter; False when the device had nothing to give."""
        # The fields go to the splitter as they are: a KeyEvent per event cost more than the
        # splitter itself (a French scan is ~370 events).
        feed = self._splitter.feed_fields
        latest = self._latest
        got = False
        try:
            for event in self._device.read():
                got = True
                kind = event.type
                if kind not in _SPLITTER_TYPES:  # EV_MSC scan codes, LEDs: never data
                    continue
                time = event.timestamp()
                if time > latest:
                    latest = time
                trace = feed(kind, event.code, event.value, time)
                if trace is not None:
                    self._ready.append(trace)
        except BlockingIOError:
            pass
        except Exception as exc:  # ENODEV, or a driver/library bug: the task decides, not the loop
            self._failure = exc
            self._paused = True
            asyncio.get_running_loop().remove_reader(self._device.fd)
            self._wake.set()
        self._latest = latest
        return got

    def _arm_gap_timer(self, delay: float | None) -> None:
        if delay is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_gap)

    def _on_gap(self) -> None:
        self._timer = None
        if self._paused:
            return  # unread events wait in the kernel with their own times: no gap to judge yet
        if self._read_batch():
            # the loop was late and events were waiting: they decide (by their timestamps)
            self._after_read()
            return
        now = self._clock.time()
        trace = self._splitter.poll(now)
        if trace is not None:
            self._ready.append(trace)
            self._wake.set()
        elif self._gap_s is not None and self._latest + self._gap_s >= now:
            # event timestamps ahead of our clock (another clock source): wait for them
            self._arm_gap_timer(self._latest + self._gap_s - now)

    async def _device_lost(self, exc: OSError) -> None:
        if exc.errno not in GONE:
            raise CaptureError(f"{self._device.path}: read failed ({exc.strerror})")
        trace = self._splitter.flush()
        if trace is not None:
            decoded = interrupted(
                decode_keys(trace, self._settings, self._rt.belief),
                "the scanner was unplugged mid-scan",
            )
            await self._rt.deliver(decoded, trace)
        raise DeviceLost(f"{self._device.path} was removed ({exc.strerror})")
