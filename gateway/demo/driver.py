"""The demo's hands: virtual scanners on the real capture paths, the LGO's requests, and the
scenario played step by step while checking each outcome.

- The serial scanner is a pseudo-terminal pair: the daemon reads the slave like any
  ``/dev/ttyACM0`` (raw mode, CR terminator); the demo writes the scan to the master.
- The keyboard-wedge scanners are virtual evdev nodes (``gateway.capture.virtual``) handed to
  the daemon as its ``/dev/input``: the key events are what an AZERTY scanner types
  (``emulate``), and the daemon grabs, splits and decodes them as it would a USB scanner.
"""

from __future__ import annotations

import asyncio
import json
import os
import tty
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

from gateway.capture.virtual import VirtualInput, VirtualInputNode, input_events
from gateway.codes.keyboard import emulate
from gateway.codes.pack import PackIdentifier
from gateway.demo.scenario import (
    KEYBOARD_SCANNERS,
    SCANNER_LAYOUT,
    SERIAL_SCANNER,
    RequestStep,
    ScanStep,
    Step,
)
from gateway.demo.view import LgoView
from gateway.nmvs.arvato import ArvatoClient, ArvatoConfig, Secret
from gateway.nmvs.backend import NmvsBackend, NmvsResult
from gateway.nmvs.solidsoft import SolidsoftClient, SolidsoftConfig
from gateway.simulator.market import UserSpec
from gateway.simulator.server import RunningSimulator
from gateway.vocabulary import Operation

REPEAT_SCAN_RULE = "2_repeat_scan"
STEP_TIMEOUT = 15.0  # seconds a step may wait for its message (only reached when broken)


class VirtualScanners:
    """The serial pty and the virtual evdev nodes; a context manager that closes the pty."""

    def __init__(self) -> None:
        self._master, slave = os.openpty()
        tty.setraw(slave)  # a real serial port has no line discipline of its own
        self.serial_path = os.ttyname(slave)
        os.close(slave)
        self.keyboard_paths = {
            scanner: f"/dev/input/nmvs-demo-{index}"
            for index, scanner in enumerate(KEYBOARD_SCANNERS, 1)
        }
        self._nodes = {
            scanner: VirtualInputNode(path, name=f"Virtual AZERTY scanner {index}")
            for index, (scanner, path) in enumerate(self.keyboard_paths.items(), 1)
        }
        self.input = VirtualInput(*self._nodes.values())

    def __enter__(self) -> VirtualScanners:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        os.close(self._master)
        for node in self._nodes.values():
            node.close()

    async def send(self, scanner: str, text: str) -> None:
        if scanner == SERIAL_SCANNER:
            data = (text + "\r").encode("latin-1")
            await asyncio.to_thread(os.write, self._master, data)
        else:
            self._nodes[scanner].emit(input_events(emulate(text, SCANNER_LAYOUT)))


async def dispense_elsewhere(
    sim: RunningSimulator, user: UserSpec, pack: PackIdentifier
) -> NmvsResult:
    """Another NMVS user dispenses ``pack`` (a goods-in decommission) before the demo starts,
    through the client of the protocol the simulator speaks."""
    client: NmvsBackend
    if sim.protocol == "solidsoft-rest":
        client = SolidsoftClient(
            SolidsoftConfig(sim.api_url, sim.token_url, user.user_id, Secret(user.password))
        )
    else:
        config = ArvatoConfig(
            endpoint=sim.single_url,
            client_login_id=user.client_login_id,
            user_id=user.user_id,
            password=Secret(user.password),
            software_supplier="another pharmacy system",
        )
        client = ArvatoClient(config)
    try:
        return await client.execute(Operation.DISPENSE, pack, client_trx_id=uuid.uuid4().hex)
    finally:
        await client.aclose()


@dataclass
class StepReport:
    number: int
    caption: str
    expected: str
    got: str

    @property
    def ok(self) -> bool:
        return self.expected == self.got


@dataclass
class Play:
    """Carries out the steps; ``reports`` says what each gave."""

    steps: list[Step]
    view: LgoView
    scanners: VirtualScanners
    publish: Callable[[bytes], Awaitable[None]]
    pace: float
    reports: list[StepReport] = field(default_factory=list)
    _scan_ids: dict[int, str] = field(default_factory=dict)

    async def run(self) -> None:
        for index, step in enumerate(self.steps):
            self.view.caption(f"step {index + 1}/{len(self.steps)}: {step.caption}")
            expected = step.expect if isinstance(step, ScanStep) else step.outcome
            try:
                if isinstance(step, ScanStep):
                    got = await self._scan(index, step)
                else:
                    got = await self._request(step)
            except TimeoutError:
                got = f"nothing on MQTT within {STEP_TIMEOUT:g} s"
            self.reports.append(StepReport(index + 1, step.caption, expected, got))
            if expected != got:
                self.view.caption(f"UNEXPECTED: step {index + 1} gave {got}, not {expected}")
            await asyncio.sleep(self.pace)

    async def _scan(self, index: int, step: ScanStep) -> str:
        view = self.view
        before, repeats = len(view.scans), view.prevented(REPEAT_SCAN_RULE)
        await self.scanners.send(step.scanner, step.text)
        await view.wait_for(lambda v: len(v.scans) > before, STEP_TIMEOUT)
        scan = view.scans[before]
        if scan.get("collapsed_into"):
            # A repeat within the window is published as a scan naming the first one and starts
            # nothing; the firewall also counts it in <base>/health (published every second).
            await view.wait_for(lambda v: v.prevented(REPEAT_SCAN_RULE) > repeats, STEP_TIMEOUT)
            view.caption(
                f"  (published as a scan collapsed into …{str(scan['collapsed_into'])[-6:]}; "
                f"<base>/health counts it: {REPEAT_SCAN_RULE} = {view.prevented(REPEAT_SCAN_RULE)})"
            )
            return "collapsed"
        scan = view.scans[before]
        scan_id = str(scan["id"])
        self._scan_ids[index] = scan_id
        if not scan["ok"]:
            return "refused"
        await view.wait_for(lambda v: v.scan_result(scan_id) is not None, STEP_TIMEOUT)
        return "result"

    async def _request(self, step: RequestStep) -> str:
        body: dict[str, object] = {"id": step.id, "op": step.op.value}
        if step.scan_step is not None:
            body["scan_id"] = self._scan_ids[step.scan_step]
        else:
            assert step.pack is not None
            body["pack"] = step.pack.to_json()
        before = len(self.view.final_results(step.id))
        await self.publish(json.dumps(body).encode())
        await self.view.wait_for(lambda v: len(v.final_results(step.id)) > before, STEP_TIMEOUT)
        return str(self.view.final_results(step.id)[-1]["outcome"])
