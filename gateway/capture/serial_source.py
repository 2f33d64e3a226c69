"""Serial and USB CDC-ACM scanners through pyserial-asyncio-fast: bytes arrive verbatim and go
straight to the text decoder, framed on the configured terminator or inter-byte gap.

The port is opened exclusively (TIOCEXCL/flock) so two programs cannot split one scanner's
bytes. A port that disappears (USB unplug: read error or end of stream) ends the attachment;
the hub reopens it when its path comes back.
"""

from __future__ import annotations

import errno

import serial
import serial_asyncio_fast

from gateway.capture.config import ScannerConfig, Terminator
from gateway.capture.devices import access_problem
from gateway.capture.framing import ByteFramer
from gateway.capture.pump import pump_frames
from gateway.capture.runtime import CaptureError, DeviceMissing, ScannerRuntime, ScannerState

READ_SIZE = 4096


class SerialSource:
    def __init__(self, config: ScannerConfig) -> None:
        self._config = config

    async def run(self, rt: ScannerRuntime) -> None:
        config = self._config
        path = config.path
        assert path is not None  # serial configs always have one (ScannerConfig.from_toml)
        try:
            reader, writer = await serial_asyncio_fast.open_serial_connection(
                url=path,
                baudrate=config.baud,
                bytesize=config.bytesize,
                parity=config.parity,
                stopbits=config.stopbits,
                exclusive=True,
            )
        except (OSError, ValueError) as exc:
            raise _open_error(path, exc) from None
        rt.device = path
        rt.event("opened", ScannerState.READY, baud=config.baud)
        terminator = config.terminator
        framer = ByteFramer(terminator.data, config.gap_s, config.max_scan_bytes)
        try:
            await pump_frames(
                lambda: reader.read(READ_SIZE),
                framer,
                config.decode,
                rt,
                None if terminator is Terminator.NONE else terminator.value,
            )
        finally:
            writer.close()


def _open_error(path: str, exc: OSError | ValueError) -> CaptureError:
    code = getattr(exc, "errno", None)
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return DeviceMissing(f"{path} does not exist (scanner unplugged or wrong path)")
    problem = access_problem(path, "serial")
    if problem is not None:
        return CaptureError(problem)
    if isinstance(exc, serial.SerialException) and "exclusively" in str(exc):
        return CaptureError(
            f"{path} is already open in another program (ModemManager? another gateway?): stop it"
        )
    return CaptureError(f"{path}: cannot open ({exc})")
