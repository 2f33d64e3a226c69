"""The --packs format: loading, exact error messages, round trip, and the generator."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from gateway.simulator.market import Market, PackRequest, RequestHeader, expiry_date
from gateway.simulator.marketfile import (
    DEFAULT_USERS,
    MarketFileError,
    generate_market,
    gs1_check_digit,
    load_market,
    market_from_json,
    market_to_json,
    write_market,
)

EXAMPLE = {
    "users": [{"client_login_id": "PHARMA01", "user_id": "SITE0001", "password": "Secret-Pass1"}],
    "products": [
        {
            "scheme": "GTIN",
            "product_code": "05000456013482",
            "withdrawn": False,
            "batches": [
                {
                    "id": "00001",
                    "expiry": "261200",
                    "recalled": False,
                    "serials": ["0000000014", "abc"],
                }
            ],
        }
    ],
}


def test_the_documented_format_loads(tmp_path: Path) -> None:
    path = tmp_path / "market.json"
    path.write_text(json.dumps(EXAMPLE))
    data = load_market(path)
    assert data.pack_count == 2
    assert data.products[0].batches[0].serials == ("0000000014", "abc")
    assert market_to_json(data) == EXAMPLE


def mutate(path: str, value: object) -> dict:
    data = json.loads(json.dumps(EXAMPLE))
    target = data
    keys = [int(k) if k.isdigit() else k for k in re.findall(r"\w+", path)]
    for key in keys[:-1]:
        target = target[key]
    if value is KeyError:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "products.0.batches.0.expiry",
            "261332",
            "products[0].batches[0].expiry: '261332' is not a YYMMDD date",
        ),
        (
            "products.0.batches.0.serials.1",
            "bad serial",
            "products[0].batches[0].serials[1]: 'bad serial' is not 1-20 characters of GS1 set 82",
        ),
        (
            "products.0.batches.0.serials.1",
            "0000000014",
            "products[0].batches[0].serials[1]: serial '0000000014' appears twice in this product",
        ),
        ("products.0.scheme", "EAN", "products[0].scheme: must be GTIN or PPN, not 'EAN'"),
        (
            "products.0.product_code",
            "12345",
            "products[0].product_code: '12345' is not 12 to 22 digits",
        ),
        ("products.0.withdrawn", "no", 'products[0].withdrawn: must be true or false, not "no"'),
        ("products.0.batches", KeyError, "products[0]: missing key 'batches'"),
        ("products.0.colour", "red", "products[0]: unknown key 'colour'"),
        ("users.0.password", "short", "users[0].password: must be 8 to 60 characters long"),
        ("users.0.user_id", "abc", "users[0].user_id: 'abc' is not 4-20 of A-Z a-z 0-9 -"),
        ("users", {}, "users: must be a JSON array"),
    ],
)
def test_errors_name_the_json_path(path: str, value: object, message: str) -> None:
    with pytest.raises(MarketFileError) as error:
        market_from_json(mutate(path, value))
    assert str(error.value).startswith(message)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"users": [,]}')
    with pytest.raises(
        MarketFileError, match=rf"^{re.escape(str(path))}: not valid JSON \(line 1, column 12\)"
    ):
        load_market(path)
    with pytest.raises(MarketFileError, match="cannot read the market file"):
        load_market(tmp_path / "missing.json")


def test_gs1_check_digit() -> None:
    assert gs1_check_digit("0500045601348") == "2"  # 05000456013482, the Solidsoft test GTIN
    assert gs1_check_digit("0340093000012") == "0"


def test_generated_market_is_realistic_and_reproducible(tmp_path: Path) -> None:
    today = date(2025, 6, 1)
    data = generate_market(2000, today=today, seed=7)
    assert data == generate_market(2000, today=today, seed=7)
    assert data.pack_count == 2000
    assert data.users == DEFAULT_USERS
    codes = [p.product_code for p in data.products]
    assert all(len(c) == 14 and gs1_check_digit(c[:-1]) == c[-1] for c in codes)
    assert any(c.startswith("034009") for c in codes) and any(
        not c.startswith("034009") for c in codes
    )
    serials = [s for p in data.products for b in p.batches for s in b.serials]
    assert any(any(ch.islower() for ch in s) for s in serials)
    batches = [b for p in data.products for b in p.batches]
    assert any(expiry_date(b.expiry) < today for b in batches)
    assert any(b.recalled for b in batches)
    assert any(b.expiry.endswith("00") for b in batches)
    assert sum(p.withdrawn for p in data.products) == 1
    path = tmp_path / "generated.json"
    write_market(data, path)
    assert load_market(path) == data


def test_generated_packs_verify_with_the_default_user() -> None:
    data = generate_market(50, today=date(2025, 6, 1), seed=3)
    market = Market(data)
    product = data.products[0]
    batch = product.batches[0]
    user = DEFAULT_USERS[0]
    answer = market.single(
        RequestHeader(user.client_login_id, user.user_id, user.password, "GEN-TEST-0001"),
        PackRequest("G110", "GTIN", product.product_code, batch.serials[0], batch.id, batch.expiry),
    )
    assert answer.return_code == "NMVS_SUCCESS"
