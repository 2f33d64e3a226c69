"""Keyboard-wedge capture against a real kernel input device made with /dev/uinput.

A virtual keyboard named like a scanner types a pack code with each supported layout; the
gateway's ``ScannerHub`` (real ``/dev/input`` listing, real python-evdev device, real EVIOCGRAB)
must decode it exactly, and while it holds the grab another reader of the same node — standing
in for the desktop or the LGO window — must receive none of the keystrokes.

Needs /dev/uinput read-write (``sudo modprobe uinput``; root, or a udev rule giving it to your
user). Skips with the reason otherwise, as in CI.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import pytest

UINPUT = "/dev/uinput"
if not os.path.exists(UINPUT):
    pytest.skip(
        f"{UINPUT} is absent: load the uinput module (sudo modprobe uinput)",
        allow_module_level=True,
    )
if not os.access(UINPUT, os.R_OK | os.W_OK):
    pytest.skip(
        f"{UINPUT} is not read-write for this user: run as root or grant access",
        allow_module_level=True,
    )

from evdev import InputDevice, UInput, ecodes  # noqa: E402

from gateway.capture.config import ScannerConfig  # noqa: E402
from gateway.capture.hub import ScannerHub  # noqa: E402
from gateway.capture.runtime import ScannerState  # noqa: E402
from gateway.codes.keyboard import LAYOUTS, CannotType, emulate  # noqa: E402

NAME = "nmvs-hwtest Barcode Scanner"
TEXT = "]d2010858600770385117241231" + "10HB5R\x1d21587E4QA11R"
WAIT_S = 10.0


@pytest.fixture
def scanner() -> Iterator[UInput]:
    keys = [code for code in ecodes.KEY if 0 < code < 256]
    device = UInput({ecodes.EV_KEY: keys}, name=NAME, vendor=0x0C2E, product=0x0B61)
    time.sleep(0.3)  # let the node appear in /dev/input
    yield device
    device.close()


def hub_for(layout: str) -> ScannerHub:
    table = {"id": "hw", "kind": "evdev", "match": f"name:{NAME}", "layout": layout}
    return ScannerHub([ScannerConfig.from_toml(table, 0)], rescan_s=0.1, watch_udev=False)


async def ready(hub: ScannerHub) -> None:
    async with asyncio.timeout(WAIT_S):
        while hub.health()[0].state is not ScannerState.READY:  # noqa: ASYNC110 - health is a snapshot
            await asyncio.sleep(0.01)


def type_text(device: UInput, text: str, layout: str) -> None:
    for event in emulate(text, layout):
        device.write(event.type, event.code, event.value)


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_each_layout_decodes_exactly(scanner: UInput, layout: str) -> None:
    try:
        emulate(TEXT, layout)
    except CannotType as exc:
        pytest.skip(f"layout {layout} cannot type this code: {exc}")
    async with hub_for(layout) as hub:
        await ready(hub)
        type_text(scanner, TEXT, layout)
        async with asyncio.timeout(WAIT_S):
            scan = await anext(hub.scans())
    assert scan.decoded.ok, scan.decoded.to_json()
    assert scan.decoded.text == TEXT and scan.decoded.layout == layout
    assert scan.decoded.pack is not None and scan.decoded.pack.serial == "587E4QA11R"


async def test_the_grab_keeps_keystrokes_from_other_readers(scanner: UInput) -> None:
    desktop = InputDevice(scanner.device.path)
    os.set_blocking(desktop.fd, False)
    try:
        async with hub_for("us") as hub:
            await ready(hub)
            type_text(scanner, TEXT, "us")
            async with asyncio.timeout(WAIT_S):
                scan = await anext(hub.scans())
            leaked = [e for e in _drain(desktop) if e.type == ecodes.EV_KEY]
        assert scan.decoded.ok
        assert leaked == []
        type_text(scanner, "1", "us")  # released at exit: the desktop sees keys again
        await asyncio.sleep(0.1)
        assert [e.code for e in _drain(desktop) if e.type == ecodes.EV_KEY and e.value == 1] == [
            ecodes.KEY_1,
            ecodes.KEY_ENTER,
        ]
    finally:
        desktop.close()


async def test_no_grab_while_a_key_is_held(scanner: UInput) -> None:
    scanner.write(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 1)
    scanner.syn()
    async with hub_for("us") as hub:
        await asyncio.sleep(0.3)
        assert hub.health()[0].state is not ScannerState.READY  # waiting for the release
        scanner.write(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 0)
        scanner.syn()
        await ready(hub)


def _drain(device: InputDevice) -> list:  # type: ignore[type-arg]
    events = []
    try:
        while True:
            events.extend(device.read())
    except BlockingIOError:
        return events
