"""Hypothesis strategies for valid pack identifiers and their scanned forms (shared by the tests).

The expected values are built independently of the decoder: check digits from their published
definitions, texts assembled element by element.
"""

from __future__ import annotations

import string

from hypothesis import strategies as st

from gateway.codes.pack import Nhrn, PackIdentifier

GS, RS, EOT = "\x1d", "\x1e", "\x04"
SET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def gtin_with_check(payload13: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(payload13)))
    return payload13 + str((10 - total % 10) % 10)


def ppn_with_check(body: str) -> str:
    return body + f"{sum((i + 2) * ord(c) for i, c in enumerate(body)) % 97:02d}"


set_82_text = st.text(alphabet=SET_82, min_size=1, max_size=20)
gtins = st.text(alphabet=string.digits, min_size=13, max_size=13).map(gtin_with_check)


@st.composite
def expiries(draw: st.DrawFn) -> str:
    year = draw(st.integers(0, 99))
    month = draw(st.integers(1, 12))
    last = 28 if month == 2 and year % 4 else DAYS[month - 1]
    day = draw(st.integers(0, last))
    return f"{year:02d}{month:02d}{day:02d}"


@st.composite
def gtin_packs(draw: st.DrawFn, aim: bool = True) -> PackIdentifier:
    nhrn = draw(
        st.none() | st.builds(Nhrn, st.sampled_from([f"71{d}" for d in range(8)]), set_82_text)
    )
    return PackIdentifier(
        scheme="GTIN",
        product_code=draw(gtins),
        batch=draw(set_82_text),
        expiry=draw(expiries()),
        serial=draw(set_82_text),
        nhrn=nhrn,
        aim=draw(st.sampled_from([None, "]d2"])) if aim else None,
    )


def pzn_check(body7: str) -> int:
    return sum((i + 1) * int(d) for i, d in enumerate(body7)) % 11


# A PZN8: seven digits and their mod-11 check (bodies whose check would be 10 have no PZN).
pzn8 = (
    st.text(alphabet=string.digits, min_size=7, max_size=7)
    .filter(lambda body: pzn_check(body) != 10)
    .map(lambda body: body + str(pzn_check(body)))
)


@st.composite
def ppn_packs(draw: st.DrawFn) -> PackIdentifier:
    ppn = ppn_with_check("11" + draw(pzn8))
    return PackIdentifier(
        scheme="PPN",
        product_code=ppn,
        batch=draw(set_82_text),
        expiry=draw(expiries()),
        serial=draw(set_82_text),
        aim=draw(st.sampled_from([None, "]d1"])),
    )


def gs1_elements(pack: PackIdentifier) -> list[tuple[str, str, bool]]:
    """(AI, value, variable length) for every element of a GTIN pack."""
    elements = [
        ("01", pack.product_code, False),
        ("17", pack.expiry, False),
        ("10", pack.batch, True),
        ("21", pack.serial, True),
    ]
    if pack.nhrn is not None:
        elements.append((pack.nhrn.ai, pack.nhrn.value, True))
    return elements


@st.composite
def gs1_texts(draw: st.DrawFn, pack: PackIdentifier, separator: str = GS) -> str:
    """The element string in a random order, a separator after every variable-length element that
    is not last, and (randomly) after fixed-length ones too, as some encoders do."""
    elements = draw(st.permutations(gs1_elements(pack)))
    parts = []
    for index, (ai, value, variable) in enumerate(elements):
        last = index == len(elements) - 1
        parts.append(ai + value)
        if not last and (variable or draw(st.booleans())):
            parts.append(separator)
    return (pack.aim or "") + "".join(parts)


@st.composite
def ppn_texts(draw: st.DrawFn, pack: PackIdentifier) -> str:
    fields = draw(
        st.permutations(
            ["9N" + pack.product_code, "1T" + pack.batch, "D" + pack.expiry, "S" + pack.serial]
        )
    )
    trailer = draw(st.sampled_from([RS + EOT, RS, ""]))
    return (pack.aim or "") + "[)>" + RS + "06" + GS + GS.join(fields) + trailer


def with_gs1_text(
    pack: PackIdentifier, separator: str = GS
) -> st.SearchStrategy[tuple[PackIdentifier, str]]:
    return st.tuples(st.just(pack), gs1_texts(pack, separator))
