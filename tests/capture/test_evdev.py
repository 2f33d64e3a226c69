"""Keyboard-wedge capture: real ``evdev.InputEvent`` streams through the production reader,
grab logic, splitter and decoder; only the device node itself is a stand-in (tests/capture/kernel.py)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

import pytest
from evdev import InputEvent, ecodes

from gateway.capture.runtime import ScannerState
from gateway.codes.keyboard import KeyTrace, emulate
from tests.capture.helpers import PACK, SCAN_TEXT, Scans, config, fast_hub, wait_until
from tests.capture.kernel import KernelInput, KernelInputNode, input_events, syn_dropped

BY_ID = "/dev/input/by-id/usb-Honeywell_Imaging-event-kbd"


def scanner_node(path: str = "/dev/input/event7", **kwargs: object) -> KernelInputNode:
    return KernelInputNode(path, links=(BY_ID,), **kwargs)  # type: ignore[arg-type]


def wedge(layout: str = "fr", **extra: object) -> object:
    return config(id="counter-1-b", kind="evdev", match=BY_ID, layout=layout, counter="1", **extra)


def ready(health: dict, scanner: str = "counter-1-b") -> bool:  # type: ignore[type-arg]
    return health[scanner].state is ScannerState.READY


@pytest.mark.parametrize("layout", ["fr", "de", "us", "be"])
async def test_a_scan_is_grabbed_read_and_decoded_in_the_scanner_layout(layout: str) -> None:
    node = scanner_node()
    async with fast_hub([wedge(layout)], input_backend=KernelInput(node)) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        assert node.grabbed
        node.emit(input_events(emulate(SCAN_TEXT, layout)))
        scan = await scans.next()
    assert scan.decoded.ok, scan.decoded.to_json()
    assert scan.decoded.pack is not None and scan.decoded.pack.to_json() == PACK
    assert (scan.scanner_id, scan.counter, scan.decoded.layout) == ("counter-1-b", "1", layout)
    assert isinstance(scan.raw, KeyTrace) and scan.raw.ended_by == "suffix"
    assert node.desktop == []  # grabbed before the first key: nothing leaked to other readers
    assert node.closed and not node.grabbed  # released when the hub closed


async def test_scans_keep_coming_in_order_with_unique_sortable_ids() -> None:
    node = scanner_node()
    async with fast_hub([wedge()], input_backend=KernelInput(node)) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        for _ in range(5):
            node.emit(input_events(emulate(SCAN_TEXT, "fr")))
        got = [await scans.next() for _ in range(5)]
    ids = [s.scan_id for s in got]
    assert len(set(ids)) == 5 and ids == sorted(ids)
    assert all(s.decoded.ok for s in got)
    assert hub.health()[0].counts["scans"] == 5


async def test_autorepeat_is_ignored_and_doubled_keys_without_release_are_counted() -> None:
    text = "010858600770385117241231"  # "77": typed below as two key-downs without a key-up between
    events = emulate(text, "us")
    downs = [
        i
        for i, e in enumerate(events)
        if e.type == ecodes.EV_KEY and e.code == ecodes.KEY_7 and e.value == 1
    ]
    first_release = next(
        i for i, e in enumerate(events) if i > downs[0] and e.code == ecodes.KEY_7 and e.value == 0
    )
    assert first_release < downs[1]
    repeat = replace(events[0], value=2)  # kernel autorepeat of the first key: not a character
    events = [events[0], repeat, *events[1:first_release], *events[first_release + 1 :]]
    node = scanner_node()
    async with fast_hub([wedge("us")], input_backend=KernelInput(node)) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        node.emit(input_events(events))
        scan = await scans.next()
    assert scan.decoded.text == text


async def test_a_stalled_consumer_pauses_reading_and_loses_nothing() -> None:
    node = scanner_node()
    texts = [SCAN_TEXT.replace("587E4QA11R", f"SERIAL{i:04}") for i in range(100)]
    async with fast_hub([wedge()], input_backend=KernelInput(node), queue_size=1) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        for text in texts:
            node.emit(input_events(emulate(text, "fr")))
        await asyncio.sleep(0.3)
        assert node.unread > 0  # the reader stopped taking events: the kernel buffers them
        got = [await scans.next() for _ in texts]
    assert [s.decoded.pack.serial for s in got if s.decoded.pack] == [t[-10:] for t in texts]
    assert node.unread == 0


async def test_syn_dropped_discards_the_partial_scan_with_a_problem() -> None:
    node = scanner_node()
    async with fast_hub([wedge()], input_backend=KernelInput(node)) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        typed = input_events(emulate(SCAN_TEXT, "fr"))
        node.emit([*typed[:40], syn_dropped(), *typed[40:]])
        dropped = await scans.next()
        node.emit(input_events(emulate(SCAN_TEXT, "fr")))
        good = await scans.next()
    assert not dropped.decoded.ok and dropped.decoded.pack is None
    assert [p.code for p in dropped.decoded.problems] == ["SCAN_INTERRUPTED"]
    assert good.decoded.ok and good.decoded.pack is not None


async def test_unplug_mid_scan_reports_it_and_the_device_is_regrabbed_when_it_returns() -> None:
    node = scanner_node()
    kernel = KernelInput(node)
    async with fast_hub([wedge()], input_backend=kernel) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        node.emit(input_events(emulate(SCAN_TEXT, "fr"))[:150])
        await wait_until(lambda: node.unread == 0)
        kernel.unplug(node.path)
        cut = await scans.next()
        await scans.until(lambda h: h["counter-1-b"].state is ScannerState.WAITING)
        assert node.closed
        again = scanner_node()  # same by-id link, new event node number is irrelevant here
        kernel.plug(again)
        await scans.until(ready)
        again.emit(input_events(emulate(SCAN_TEXT, "fr")))
        scan = await scans.next()
        health = hub.health()[0]
    assert not cut.decoded.ok and cut.decoded.pack is None
    assert any(
        p.code == "SCAN_INTERRUPTED" and "unplugged" in p.detail for p in cut.decoded.problems
    )
    assert scan.decoded.ok and again.grabbed is False and again.closed
    assert (
        health.counts["attached"] == 2
        and health.counts["grabbed"] == 2
        and health.counts["lost"] == 1
    )


async def test_no_grab_while_a_key_is_down_and_the_desktop_sees_the_release() -> None:
    node = scanner_node()
    node.emit(input_events([*emulate("0", "us", suffix=None)[:2]]))  # KEY_0 down, not released
    async with fast_hub([wedge("us", grab_wait_ms=5000)], input_backend=KernelInput(node)) as hub:
        scans = Scans(hub)
        await scans.until(lambda h: h["counter-1-b"].counts.get("waiting_for_key_release", 0) == 1)
        assert not node.grabbed
        node.emit(input_events(emulate("0", "us", suffix=None)[2:]))  # released
        await scans.until(ready)
    assert node.grab_calls == [frozenset()]
    assert [(e.code, e.value) for e in node.desktop if e.type == ecodes.EV_KEY] == [
        (ecodes.KEY_0, 1),
        (ecodes.KEY_0, 0),
    ]


async def test_a_key_pressed_while_grabbing_is_released_to_the_desktop_first() -> None:
    node = scanner_node()
    typed = input_events(emulate("0", "us", suffix=None))
    node.press_during_grab = typed[:2]  # KEY_0 down (+ SYN) lands between the check and the grab
    async with fast_hub([wedge("us")], input_backend=KernelInput(node)) as hub:
        scans = Scans(hub)
        await wait_until(lambda: len(node.grab_calls) == 1 and not node.grabbed)  # saw it, let go
        node.emit(typed[2:])
        await scans.until(ready)
    assert node.grab_calls == [frozenset({ecodes.KEY_0}), frozenset()]
    assert [(e.code, e.value) for e in node.desktop if e.type == ecodes.EV_KEY] == [
        (ecodes.KEY_0, 1),
        (ecodes.KEY_0, 0),
    ]


async def test_a_key_held_beyond_the_bound_is_an_error_and_it_retries() -> None:
    node = scanner_node()
    node.emit(input_events(emulate("0", "us", suffix=None)[:2]))
    async with fast_hub([wedge("us", grab_wait_ms=20)], input_backend=KernelInput(node)) as hub:
        scans = Scans(hub)
        health = await scans.until(lambda h: h["counter-1-b"].counts.get("error", 0) >= 2)
        assert not node.grabbed
    assert health["counter-1-b"].last_error == (
        "/dev/input/event7: keys held for 20 ms (KEY_0); not grabbing while a key is down "
        "(it would stay stuck for the desktop): release the trigger or check the scanner"
    )


async def test_a_device_grabbed_by_another_program_is_reported() -> None:
    node = scanner_node()
    node.grabbed_elsewhere = True
    async with fast_hub([wedge()], input_backend=KernelInput(node)) as hub:
        health = await Scans(hub).until(lambda h: h["counter-1-b"].state is ScannerState.ERROR)
    assert health["counter-1-b"].last_error == (
        "/dev/input/event7 is grabbed by another process (another gateway, 'evtest --grab'…): "
        "stop it; only one program can own a scanner"
    )


async def test_a_scanner_without_suffix_is_split_by_the_gap() -> None:
    node = scanner_node()
    scanner = wedge("de", gap_ms=30, suffix_keys=[])
    async with fast_hub([scanner], input_backend=KernelInput(node)) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        node.emit(input_events(emulate(SCAN_TEXT, "de", suffix=None)))
        scan = await scans.next()
    assert scan.decoded.ok and isinstance(scan.raw, KeyTrace) and scan.raw.ended_by == "gap"


async def test_a_scan_cut_by_a_pause_before_its_suffix_is_never_trusted() -> None:
    # A scanner that ends scans with Enter pauses mid-code (Bluetooth): the first part alone
    # can be a valid pack with a shorter serial, which the NMVS would answer with an alert.
    node = scanner_node()
    async with fast_hub([wedge("de", gap_ms=30)], input_backend=KernelInput(node)) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        node.emit(input_events(emulate(SCAN_TEXT, "de", suffix=None)))
        scan = await scans.next()
    assert isinstance(scan.raw, KeyTrace) and scan.raw.ended_by == "gap"
    assert scan.decoded.pack is None and not scan.decoded.ok
    assert [p.code.value for p in scan.decoded.problems][-1] == "SCAN_INTERRUPTED"
    assert scan.decoded.problems[-1].detail == (
        "no Enter after the data: check the scanner's suffix setting, "
        "or set suffix_keys = [] for a scanner that sends none"
    )


async def test_a_random_key_storm_never_stops_the_reader() -> None:
    rng = random.Random(5)
    node = scanner_node()
    storm = []
    for i in range(3000):
        kind = rng.choice([ecodes.EV_KEY, ecodes.EV_KEY, ecodes.EV_SYN, ecodes.EV_MSC])
        storm.append(InputEvent(1, i, kind, rng.randrange(0, 256), rng.choice([0, 1, 1, 2, 7])))
    async with fast_hub([wedge("fr", gap_ms=20)], input_backend=KernelInput(node)) as hub:
        scans = Scans(hub)
        await scans.until(ready)
        node.emit(storm)
        got = [await scans.next()]
        while got[-1].decoded.ok or "]d2" not in got[-1].decoded.text:
            node.emit(input_events(emulate(SCAN_TEXT, "fr")))
            got.append(await scans.next())
            if len(got) > 20:
                break
        health = hub.health()[0]
    assert not got[0].decoded.ok  # the storm became scans with problems
    assert health.state is ScannerState.READY and health.counts.get("error", 0) == 0
    assert node.grabbed is False


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ("0c2e:0b61", "/dev/input/event7"),
        ("name:honeywell*", "/dev/input/event7"),
        ("any", "/dev/input/event7"),
        ("/dev/input/event7", "/dev/input/event7"),
    ],
)
async def test_matching_never_takes_the_pos_keyboard(match: str, expected: str) -> None:
    keyboard = KernelInputNode(
        "/dev/input/event3", name="Logitech USB Keyboard", vendor=0x046D, product=0xC31C
    )
    consumer = KernelInputNode(
        "/dev/input/event6",
        name="Honeywell Imaging & Mobility 1950g Consumer Control",
        types_text=False,
    )
    node = scanner_node()
    kernel = KernelInput(keyboard, consumer, node)
    async with fast_hub([config(id="s", kind="evdev", match=match)], input_backend=kernel) as hub:
        await Scans(hub).until(lambda h: h["s"].state is ScannerState.READY)
        assert hub.health()[0].device == expected
    assert kernel.opened == [expected]
    assert keyboard.grab_calls == [] and consumer.grab_calls == []


async def test_two_configs_never_share_one_device() -> None:
    first, second = scanner_node("/dev/input/event7"), scanner_node("/dev/input/event8")
    configs = [
        config(0, id="a", kind="evdev", match="0c2e:0b61"),
        config(1, id="b", kind="evdev", match="any"),
    ]
    async with fast_hub(configs, input_backend=KernelInput(first, second)) as hub:
        health = await Scans(hub).until(
            lambda h: all(x.state is ScannerState.READY for x in h.values())
        )
    assert {health["a"].device, health["b"].device} == {"/dev/input/event7", "/dev/input/event8"}
