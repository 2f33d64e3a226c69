"""The demo's script: which packs of the generated market play which part, and the steps the
virtual scanners and the LGO take, each with the outcome the gateway must give.

Pure: packs are chosen by asking the simulator's market for their state and the real decoder
how a scan of them reads (so the story stays true if the decoder or the market changes), and
the steps are plain values the driver (``gateway/demo/driver.py``) carries out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gateway.codes.decode import DecodedScan, DecodeSettings, decode_keys, decode_text
from gateway.codes.keyboard import KeyboardSettings, ScanSplitter, emulate
from gateway.codes.pack import PackIdentifier
from gateway.codes.problems import ProblemCode
from gateway.simulator.market import Market
from gateway.vocabulary import Operation

GS = "\x1d"

# The virtual scanners: one serial scanner (pseudo-terminal), two keyboard-wedge scanners both
# set to French AZERTY; the gateway is told "us" for the first (a misconfiguration) and "fr"
# for the second.
SERIAL_SCANNER = "till-1-serial"
AZERTY_AS_US = "till-2-azerty-as-us"
AZERTY_AS_FR = "till-3-azerty-as-fr"
KEYBOARD_SCANNERS = {AZERTY_AS_US: "us", AZERTY_AS_FR: "fr"}
SCANNER_LAYOUT = "fr"  # what both keyboard-wedge scanners are set to type

Expect = Literal["result", "collapsed", "refused"]


class MarketTooSmall(RuntimeError):
    """The generated market lacks a pack for one of the parts (use more packs or another seed)."""


@dataclass(frozen=True, slots=True)
class DemoPacks:
    sold: PackIdentifier  # verified, dispensed, repeated, dispensed again elsewhere, undone
    gs_unique: PackIdentifier  # fields run together, one split is a valid pack
    gs_ambiguous: PackIdentifier  # fields run together, several splits are valid packs
    azerty: PackIdentifier  # typed by the AZERTY scanners
    elsewhere: PackIdentifier  # already dispensed by another NMVS user before the demo
    expired: PackIdentifier  # its batch has expired
    spare: PackIdentifier  # untouched by the scenario: for the visitor's own requests


@dataclass(frozen=True, slots=True)
class ScanStep:
    caption: str
    scanner: str
    text: str  # what the scanner reads from the DataMatrix (control characters included)
    expect: Expect


@dataclass(frozen=True, slots=True)
class RequestStep:
    caption: str
    id: str
    op: Operation
    outcome: str  # the final outcome the gateway must give
    scan_step: int | None = None  # the request names the scan made at this step (scan_id)
    pack: PackIdentifier | None = None


Step = ScanStep | RequestStep


def gs1_text(pack: PackIdentifier, *, separator: str = GS, serial_first: bool = False) -> str:
    """The DataMatrix text of ``pack``: a separator after the variable-length field not last."""
    head = f"01{pack.product_code}17{pack.expiry}"
    if serial_first:
        return f"{head}21{pack.serial}{separator}10{pack.batch}"
    return f"{head}10{pack.batch}{separator}21{pack.serial}"


def keyboard_reading(pack: PackIdentifier, layout: str) -> DecodedScan:
    """How the gateway reads ``pack`` typed by a scanner set to :data:`SCANNER_LAYOUT` when the
    scanner's configured layout is ``layout``."""
    keyboard = KeyboardSettings(layout=layout)
    splitter = ScanSplitter(keyboard)
    traces = [t for t in map(splitter.feed, emulate(gs1_text(pack), SCANNER_LAYOUT)) if t]
    return decode_keys(traces[0], DecodeSettings(keyboard=keyboard))


def choose_packs(market: Market) -> DemoPacks:
    """Pick each part's pack from ``market`` (ACTIVE packs in market order; the first that fits)."""
    active: list[PackIdentifier] = []
    expired: PackIdentifier | None = None
    for product in market.data.products:
        if product.withdrawn or product.intermarket or product.scheme != "GTIN":
            continue
        for batch in product.batches:
            for serial in batch.serials:
                found = market.pack(product.product_code, serial)
                if found is None:
                    continue
                state, reasons = market.pack_view(found)
                pack = PackIdentifier("GTIN", product.product_code, batch.id, batch.expiry, serial)
                if state == "ACTIVE":
                    active.append(pack)
                elif expired is None and reasons == ("EXPIRED",):
                    expired = pack
    settings = DecodeSettings()

    def runs_together(pack: PackIdentifier, *, serial_first: bool) -> str:
        """``unique`` / ``ambiguous`` / ``other``: how the decoder reads the code without GS."""
        decoded = decode_text(gs1_text(pack, separator="", serial_first=serial_first), settings)
        gs = [p for p in decoded.problems if p.code is ProblemCode.GS_MISSING]
        if decoded.ok and decoded.pack == pack and gs:
            return "unique"
        if not decoded.ok and decoded.pack is None and gs:
            return "ambiguous"
        return "other"

    def layout_hint(pack: PackIdentifier) -> bool:
        """The AZERTY typing is refused with the layout hint under ``us``, exact under ``fr``."""
        wrong = keyboard_reading(pack, "us")
        right = keyboard_reading(pack, "fr")
        hinted = any(p.code is ProblemCode.SUSPECT_LAYOUT_MISMATCH for p in wrong.problems)
        return not wrong.ok and hinted and right.ok and right.pack == pack

    taken: set[PackIdentifier] = set()

    def first(part: str, fits: Callable[[PackIdentifier], bool] = lambda _: True) -> PackIdentifier:
        for pack in active:
            if pack not in taken and fits(pack):
                taken.add(pack)
                return pack
        raise MarketTooSmall(f"the market has no ACTIVE pack for the {part!r} part")

    gs_unique = first(
        "fields run together", lambda p: runs_together(p, serial_first=False) == "unique"
    )
    gs_ambiguous = first(
        "ambiguous split", lambda p: runs_together(p, serial_first=True) == "ambiguous"
    )
    if expired is None:
        raise MarketTooSmall("the market has no pack of an expired batch")
    return DemoPacks(
        sold=first("sold"),
        gs_unique=gs_unique,
        gs_ambiguous=gs_ambiguous,
        azerty=first("AZERTY", layout_hint),
        elsewhere=first("dispensed elsewhere"),
        expired=expired,
        spare=first("your own requests"),
    )


def build_steps(packs: DemoPacks) -> list[Step]:
    """The scenario, in order; ``RequestStep.scan_step`` indexes into this list."""
    sold, elsewhere, expired = packs.sold, packs.elsewhere, packs.expired
    steps: list[Step] = [
        ScanStep(
            "a good scan: the gateway verifies the pack", SERIAL_SCANNER, gs1_text(sold), "result"
        ),
        ScanStep(
            "the same pack again at once (trigger bounce): collapsed, nothing sent",
            SERIAL_SCANNER,
            gs1_text(sold),
            "collapsed",
        ),
        RequestStep(
            "the LGO sells it: dispense by scan id", "sale-1001", Operation.DISPENSE, "done", 0
        ),
        RequestStep(
            "the LGO repeats the same request (lost PUBACK): same result, not re-sent",
            "sale-1001",
            Operation.DISPENSE,
            "done",
            0,
        ),
        RequestStep(
            "a second till dispenses the same pack: this gateway already did, not sent",
            "till-2-sale-77",
            Operation.DISPENSE,
            "already_done_here",
            pack=sold,
        ),
        RequestStep(
            "the customer hands it back at once: undo (same user, within 10 days)",
            "sale-1001-undo",
            Operation.UNDO_DISPENSE,
            "done",
            pack=sold,
        ),
        ScanStep(
            "a scanner that drops GS: exactly one split is a valid pack (GS_MISSING warning)",
            SERIAL_SCANNER,
            gs1_text(packs.gs_unique, separator=""),
            "result",
        ),
        ScanStep(
            "GS dropped again, but several splits are valid packs: refused, rescan",
            SERIAL_SCANNER,
            gs1_text(packs.gs_ambiguous, separator="", serial_first=True),
            "refused",
        ),
        ScanStep(
            "an AZERTY scanner the gateway believes is QWERTY (us): refused, never guessed",
            AZERTY_AS_US,
            gs1_text(packs.azerty),
            "refused",
        ),
        ScanStep(
            "the same AZERTY scanner configured as fr: decoded exactly, verified",
            AZERTY_AS_FR,
            gs1_text(packs.azerty),
            "result",
        ),
        ScanStep(
            "a pack another user already dispensed (goods-in): verify says INACTIVE",
            SERIAL_SCANNER,
            gs1_text(elsewhere),
            "result",
        ),
    ]
    elsewhere_scan = len(steps) - 1
    steps += [
        RequestStep(
            "the LGO asks to dispense it anyway: not sent (would raise an alert)",
            "sale-1002",
            Operation.DISPENSE,
            "not_active",
            elsewhere_scan,
        ),
        RequestStep(
            "and to undo that dispense: not ours to undo (would raise PCK_21)",
            "sale-1002-undo",
            Operation.UNDO_DISPENSE,
            "undo_not_allowed",
            pack=elsewhere,
        ),
        ScanStep(
            "a pack of an expired batch: verify says INACTIVE (EXPIRED)",
            SERIAL_SCANNER,
            gs1_text(expired),
            "result",
        ),
    ]
    expired_scan = len(steps) - 1
    steps.append(
        RequestStep(
            "the LGO asks to dispense the expired pack: not sent",
            "sale-1003",
            Operation.DISPENSE,
            "not_active",
            expired_scan,
        )
    )
    return steps
