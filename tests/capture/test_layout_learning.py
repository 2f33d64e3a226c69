"""Layout ``auto`` through the real capture path: a QWERTZ scanner's ambiguous scans become exact
once its scans (or the calibration card) prove its layout, the belief travels with the scans
that change it into the engine's real SQLite file, and a new hub resumes it from there."""

from __future__ import annotations

from pathlib import Path

from gateway.capture.config import ScannerConfig
from gateway.capture.runtime import ScannerState
from gateway.codes.calibration_code import CALIBRATION_AIM, CALIBRATION_PAYLOAD
from gateway.codes.keyboard import GS, emulate
from gateway.codes.problems import ProblemCode
from gateway.engine import Engine, ScanRecord
from tests.capture.helpers import Scans, config, fast_hub
from tests.capture.kernel import KernelInput, KernelInputNode, input_events
from tests.engine.support import Rig, market_data, settings, simulator_rig

# A serial with Y: typed by a German (QWERTZ) scanner, it reads as a valid pack under de and,
# with Y and Z swapped, under QWERTY layouts: refused until the layout is known.
Y_CODE = "]d2" + "0103400936040540" + "17270500" + "10HYM21074" + GS + "21SERY7Q"
Y_SERIAL = "SERY7Q"


def wedge_config() -> ScannerConfig:
    return config(0, id="till-1", kind="evdev", match="0c2e:0b61", layout="auto")


async def test_a_qwertz_scanner_is_learned_from_the_calibration_card_and_resumed(
    tmp_path: Path,
) -> None:
    async with simulator_rig(market_data(), tmp_path / "state") as rig:
        await _learn_then_resume(rig)


async def _learn_then_resume(rig: Rig) -> None:
    node = KernelInputNode("/dev/input/event7")
    async with Engine.open(rig.state_dir, rig.client, settings(on_scan="none")) as engine:
        async with fast_hub([wedge_config()], input_backend=KernelInput(node)) as hub:
            scans = Scans(hub)
            await scans.until(lambda h: h["till-1"].state is ScannerState.READY)
            node.emit(input_events(emulate(Y_CODE, "de")))
            ambiguous = await scans.next()
            assert ambiguous.decoded.pack is None
            assert [p.code for p in ambiguous.decoded.problems] == [ProblemCode.LAYOUT_AMBIGUOUS]
            node.emit(input_events(emulate(CALIBRATION_AIM + CALIBRATION_PAYLOAD, "de")))
            card = await scans.next()
            # the calibration code is never a pack (its GTIN is GS1's example: an alert)
            assert card.decoded.pack is None
            assert [p.code for p in card.decoded.problems] == [ProblemCode.NOT_A_PACK_CODE]
            assert card.layout_belief is not None and card.layout_belief["calibrated"]
            assert "de" in card.layout_belief["candidates"]
            node.emit(input_events(emulate(Y_CODE, "de")))
            exact = await scans.next()
            assert exact.decoded.ok and exact.decoded.pack is not None
            assert exact.decoded.pack.serial == Y_SERIAL
            layout = {h.id: h for h in hub.health()}["till-1"].to_json()["layout"]
            assert layout["settled"] and layout["calibrated"] and "de" in layout["candidates"]
            for scan in (ambiguous, card, exact):
                await engine.submit_scan(
                    ScanRecord(
                        scan.scan_id,
                        scan.scanner_id,
                        scan.counter,
                        scan.at.timestamp(),
                        scan.decoded,
                        layout_belief=scan.layout_belief,
                    )
                )
        stored = await engine.layout_beliefs()
    assert set(stored) == {"till-1"} and stored["till-1"]["calibrated"]
    # after a restart the scanner is still known: its first Y scan is exact
    node = KernelInputNode("/dev/input/event7")
    async with Engine.open(rig.state_dir, rig.client, settings(on_scan="none")) as engine:
        resumed = await engine.layout_beliefs()
    hub = fast_hub([wedge_config()], input_backend=KernelInput(node), layout_beliefs=resumed)
    async with hub:
        scans = Scans(hub)
        await scans.until(lambda h: h["till-1"].state is ScannerState.READY)
        node.emit(input_events(emulate(Y_CODE, "de")))
        first = await scans.next()
    assert first.decoded.ok and first.decoded.pack is not None
    assert first.decoded.pack.serial == Y_SERIAL
    assert first.layout_belief is not None  # one more proof: stored with the scan


async def test_an_unreadable_stored_belief_starts_learning_afresh() -> None:
    node = KernelInputNode("/dev/input/event7")
    beliefs = {"till-1": {"candidates": 5}}
    hub = fast_hub([wedge_config()], input_backend=KernelInput(node), layout_beliefs=beliefs)
    async with hub:
        layout = hub.health()[0].to_json()["layout"]
    assert layout["proofs"] == 0 and not layout["settled"]
    assert len(layout["candidates"]) == 29
