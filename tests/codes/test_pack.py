"""PackIdentifier's JSON form: strict shape, exact messages (English and French)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.codes.pack import Nhrn, PackFormatError, PackIdentifier

PACK: dict[str, Any] = {
    "scheme": "GTIN",
    "product_code": "09876543210982",
    "batch": "aBc-12",
    "expiry": "281200",
    "serial": "sN0123xyz",
}
KEYS = "scheme, product_code, batch, expiry, serial, nhrn, aim, keyed"


def test_the_json_form_round_trips_with_every_key() -> None:
    pack = PackIdentifier("PPN", "110375286414", "B1", "280100", "s", Nhrn("714", "x"), "]d2")
    assert PackIdentifier.from_json(pack.to_json()) == pack


@pytest.mark.parametrize(
    ("data", "message", "french"),
    [
        (
            {**PACK, "NHRN": {"ai": "710", "value": "1"}},
            f"pack: unknown key 'NHRN' (keys are {KEYS})",
            f"pack : clé inconnue 'NHRN' (les clés sont {KEYS})",
        ),
        (
            {**PACK, "extra": 1, "another": 2},
            f"pack: unknown key 'another' (keys are {KEYS})",
            f"pack : clé inconnue 'another' (les clés sont {KEYS})",
        ),
        (
            {**PACK, "nhrn": {"ai": "710", "Value": "1"}},
            "pack.nhrn: unknown key 'Value' (keys are ai, value)",
            "pack.nhrn : clé inconnue 'Value' (les clés sont ai, value)",
        ),
        (
            {**PACK, "nhrn": "710:1"},
            'pack.nhrn must be {"ai": "71x", "value": "..."}',
            'pack.nhrn doit être {"ai": "71x", "value": "..."}',
        ),
        (
            {**PACK, "scheme": "gtin"},
            "pack.scheme must be one of GTIN, PPN, not 'gtin'",
            "pack.scheme doit valoir GTIN ou PPN, pas 'gtin'",
        ),
    ],
)
def test_a_malformed_pack_is_refused_naming_the_key(
    data: dict[str, Any], message: str, french: str
) -> None:
    with pytest.raises(PackFormatError) as info:
        PackIdentifier.from_json(data)
    assert str(info.value) == message
    assert info.value.fr == french
