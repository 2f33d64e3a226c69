"""The demo's script: packs chosen from a generated market by their state and by how the real
decoder reads their faulty scans; steps that refer to each other consistently."""

from __future__ import annotations

import shlex
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from gateway.codes.decode import DecodeSettings, decode_text
from gateway.codes.pack import PackIdentifier
from gateway.codes.problems import ProblemCode
from gateway.demo.scenario import (
    MarketTooSmall,
    RequestStep,
    ScanStep,
    build_steps,
    choose_packs,
    gs1_text,
    keyboard_reading,
)
from gateway.demo.session import MARKET_PACKS, MARKET_SEED, own_requests
from gateway.mqtt.contract import parse_request
from gateway.simulator.market import Market
from gateway.simulator.marketfile import generate_market


@pytest.fixture(scope="module")
def market() -> Market:
    today = datetime.now(UTC).date()
    return Market(generate_market(MARKET_PACKS, today=today, seed=MARKET_SEED))


def codes(problems: tuple[object, ...]) -> list[ProblemCode]:
    return [p.code for p in problems]  # type: ignore[attr-defined]


def test_each_part_gets_its_own_pack_in_the_state_the_story_says(market: Market) -> None:
    packs = choose_packs(market)
    chosen = [
        packs.sold,
        packs.gs_unique,
        packs.gs_ambiguous,
        packs.azerty,
        packs.elsewhere,
        packs.expired,
    ]
    assert len(set(chosen)) == len(chosen)
    for pack in chosen:
        found = market.pack(pack.product_code, pack.serial)
        assert found is not None and found.batch_id == pack.batch
        expected = ("INACTIVE", ("EXPIRED",)) if pack is packs.expired else ("ACTIVE", ())
        assert market.pack_view(found) == expected


def test_the_faulty_scans_read_as_the_captions_say(market: Market) -> None:
    packs = choose_packs(market)
    unique = decode_text(gs1_text(packs.gs_unique, separator=""), DecodeSettings())
    assert unique.ok and unique.pack == packs.gs_unique
    assert codes(unique.problems) == [ProblemCode.GS_MISSING]
    ambiguous_text = gs1_text(packs.gs_ambiguous, separator="", serial_first=True)
    ambiguous = decode_text(ambiguous_text, DecodeSettings())
    assert not ambiguous.ok and ambiguous.pack is None
    assert codes(ambiguous.problems) == [ProblemCode.GS_MISSING]
    as_us = keyboard_reading(packs.azerty, "us")
    assert not as_us.ok and as_us.pack is None
    assert codes(as_us.problems)[0] is ProblemCode.SUSPECT_LAYOUT_MISMATCH
    as_fr = keyboard_reading(packs.azerty, "fr")
    assert as_fr.ok and as_fr.pack == packs.azerty and as_fr.text == gs1_text(packs.azerty)


def test_requests_name_scans_that_started_a_transaction(market: Market) -> None:
    steps = build_steps(choose_packs(market))
    for step in steps:
        if isinstance(step, RequestStep):
            assert (step.scan_step is None) != (step.pack is None)
            if step.scan_step is not None:
                target = steps[step.scan_step]
                assert isinstance(target, ScanStep) and target.expect == "result"
    ids = [s.id for s in steps if isinstance(s, RequestStep)]
    assert ids.count("sale-1001") == 2  # the repeated request


def test_a_market_without_an_expired_batch_is_refused_by_name(market: Market) -> None:
    data = market.data
    fresh = tuple(
        replace(p, batches=tuple(replace(b, expiry="991231") for b in p.batches))
        for p in data.products
    )
    with pytest.raises(MarketTooSmall, match="no pack of an expired batch"):
        choose_packs(Market(replace(data, products=fresh)))


def test_the_commands_for_your_own_requests_are_valid_requests() -> None:
    pack = PackIdentifier("GTIN", "03400936040540", "L'1", "270500", 'S"X')  # quotes in data
    scans = [{"id": "01SCAN", "ok": True, "collapsed_into": None}]
    commands = own_requests(1883, pack, scans)
    assert commands[0].startswith("mosquitto_sub -p 1883")
    requests = []
    for command in commands[1:]:
        words = shlex.split(command)
        assert words[:7] == ["mosquitto_pub", "-p", "1883", "-q", "1", "-t", "nmvs/demo/request"]
        requests.append(parse_request(words[-1].encode()))
    assert [(r.op.value, r.pack, r.scan_id) for r in requests] == [
        ("verify", pack, None),
        ("dispense", pack, None),
        ("undo_dispense", pack, None),
        ("verify", None, "01SCAN"),
    ]
