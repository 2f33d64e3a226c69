"""The ``--packs`` market file: load and check it, write it, or generate a random market.

Format (extra optional keys: ``password_expires_in_days``, ``password_expired``,
``terms_to_accept_in_days``, ``terms_blocked`` per user, ``intermarket`` per product)::

    {"users": [{"client_login_id": "…", "user_id": "…", "password": "…"}],
     "products": [{"scheme": "GTIN", "product_code": "…", "withdrawn": false,
                   "batches": [{"id": "…", "expiry": "YYMMDD", "recalled": false,
                                "serials": ["…"]}]}]}

Every error names the file and the JSON path of the bad value, e.g.
``market.json: products[2].batches[0].expiry: '261332' is not a YYMMDD date``.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

from gateway.simulator.market import BatchSpec, MarketData, ProductSpec, UserSpec

_SET82 = re.compile(r"[A-Za-z0-9!\"%&'()*+,\-./:;<=>?_]{1,20}")
_YYMMDD = re.compile(r"[0-9]{2}(0[1-9]|1[0-2])(0[0-9]|[12][0-9]|3[01])")
_LOGIN = re.compile(r"[A-Za-z0-9-]{1,20}")
_USER = re.compile(r"[A-Za-z0-9-]{4,20}")
_PRODUCT_CODE = re.compile(r"[0-9]{12,22}")

T = TypeVar("T")

# Demo-only credentials of generated markets (documented in the README).
DEFAULT_USERS = (
    UserSpec("SIMCLIENT1", "SIMUSER1", "Simulator-Pass1"),
    UserSpec("SIMCLIENT1", "SIMUSER2", "Simulator-Pass2"),
)


class MarketFileError(ValueError):
    """The market file cannot be used; the message names the file and the JSON path."""


def load_market(path: Path) -> MarketData:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MarketFileError(f"{path}: cannot read the market file: {error}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise MarketFileError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"
        ) from None
    try:
        return market_from_json(raw)
    except MarketFileError as error:
        raise MarketFileError(f"{path}: {error}") from None


def market_from_json(raw: object) -> MarketData:
    root = _object(raw, "$", required=("users", "products"), optional=())
    users = tuple(
        _user(item, f"users[{i}]") for i, item in enumerate(_list(root["users"], "users"))
    )
    seen_users: set[tuple[str, str]] = set()
    for i, user in enumerate(users):
        key = (user.client_login_id, user.user_id)
        if key in seen_users:
            raise MarketFileError(f"users[{i}]: user {key[1]!r} of client {key[0]!r} appears twice")
        seen_users.add(key)
    products = tuple(
        _product(item, f"products[{i}]")
        for i, item in enumerate(_list(root["products"], "products"))
    )
    seen_codes: set[str] = set()
    for i, product in enumerate(products):
        if product.product_code in seen_codes:
            raise MarketFileError(
                f"products[{i}].product_code: {product.product_code!r} appears twice"
            )
        seen_codes.add(product.product_code)
    return MarketData(users, products)


def market_to_json(data: MarketData) -> dict[str, Any]:
    return {
        "users": [
            {
                "client_login_id": u.client_login_id,
                "user_id": u.user_id,
                "password": u.password,
                **(
                    {"password_expires_in_days": u.password_expires_in_days}
                    if u.password_expires_in_days is not None
                    else {}
                ),
                **({"password_expired": True} if u.password_expired else {}),
                **(
                    {"terms_to_accept_in_days": u.terms_to_accept_in_days}
                    if u.terms_to_accept_in_days is not None
                    else {}
                ),
                **({"terms_blocked": True} if u.terms_blocked else {}),
            }
            for u in data.users
        ],
        "products": [
            {
                "scheme": p.scheme,
                "product_code": p.product_code,
                "withdrawn": p.withdrawn,
                **({"intermarket": True} if p.intermarket else {}),
                "batches": [
                    {
                        "id": b.id,
                        "expiry": b.expiry,
                        "recalled": b.recalled,
                        "serials": list(b.serials),
                    }
                    for b in p.batches
                ],
            }
            for p in data.products
        ],
    }


def write_market(data: MarketData, path: Path) -> None:
    path.write_text(json.dumps(market_to_json(data), indent=1) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------- checking


def _object(
    raw: object, where: str, *, required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MarketFileError(f"{where}: must be a JSON object")
    for key in required:
        if key not in raw:
            raise MarketFileError(f"{where}: missing key {key!r}")
    for key in raw:
        if key not in required and key not in optional:
            raise MarketFileError(
                f"{where}: unknown key {key!r} (allowed: {', '.join(required + optional)})"
            )
    return raw


def _list(raw: object, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise MarketFileError(f"{where}: must be a JSON array")
    return raw


def _typed(raw: object, kind: type[T], where: str, what: str) -> T:
    # bool is an int in Python; JSON true is not a number of days
    if not isinstance(raw, kind) or (kind is int and isinstance(raw, bool)):
        raise MarketFileError(f"{where}: must be {what}, not {json.dumps(raw)}")
    return raw


def _string(raw: object, where: str, pattern: re.Pattern[str], what: str) -> str:
    value = _typed(raw, str, where, "a string")
    if not pattern.fullmatch(value):
        raise MarketFileError(f"{where}: {value!r} is not {what}")
    return value


def _user(raw: object, where: str) -> UserSpec:
    obj = _object(
        raw,
        where,
        required=("client_login_id", "user_id", "password"),
        optional=(
            "password_expires_in_days",
            "password_expired",
            "terms_to_accept_in_days",
            "terms_blocked",
        ),
    )
    password = _typed(obj["password"], str, f"{where}.password", "a string")
    if not 8 <= len(password) <= 60:
        raise MarketFileError(f"{where}.password: must be 8 to 60 characters long")
    return UserSpec(
        client_login_id=_string(
            obj["client_login_id"], f"{where}.client_login_id", _LOGIN, "1-20 of A-Z a-z 0-9 -"
        ),
        user_id=_string(obj["user_id"], f"{where}.user_id", _USER, "4-20 of A-Z a-z 0-9 -"),
        password=password,
        password_expires_in_days=_days(obj, "password_expires_in_days", where),
        password_expired=_flag(obj, "password_expired", where),
        terms_to_accept_in_days=_days(obj, "terms_to_accept_in_days", where),
        terms_blocked=_flag(obj, "terms_blocked", where),
    )


def _flag(obj: dict[str, Any], key: str, where: str) -> bool:
    return _typed(obj.get(key, False), bool, f"{where}.{key}", "true or false")


def _days(obj: dict[str, Any], key: str, where: str) -> int | None:
    value = obj.get(key)
    return None if value is None else _typed(value, int, f"{where}.{key}", "an integer")


def _product(raw: object, where: str) -> ProductSpec:
    obj = _object(
        raw,
        where,
        required=("scheme", "product_code", "batches"),
        optional=("withdrawn", "intermarket"),
    )
    scheme = _typed(obj["scheme"], str, f"{where}.scheme", "a string")
    if scheme not in ("GTIN", "PPN"):
        raise MarketFileError(f"{where}.scheme: must be GTIN or PPN, not {scheme!r}")
    batches = tuple(
        _batch(item, f"{where}.batches[{i}]")
        for i, item in enumerate(_list(obj["batches"], f"{where}.batches"))
    )
    seen_batches: set[str] = set()
    seen_serials: set[str] = set()
    for i, batch in enumerate(batches):
        if batch.id in seen_batches:
            raise MarketFileError(f"{where}.batches[{i}].id: batch {batch.id!r} appears twice")
        seen_batches.add(batch.id)
        for j, serial in enumerate(batch.serials):
            if serial in seen_serials:
                raise MarketFileError(
                    f"{where}.batches[{i}].serials[{j}]: serial {serial!r} appears twice in this product"
                )
            seen_serials.add(serial)
    return ProductSpec(
        scheme=scheme,
        product_code=_string(
            obj["product_code"], f"{where}.product_code", _PRODUCT_CODE, "12 to 22 digits"
        ),
        batches=batches,
        withdrawn=_flag(obj, "withdrawn", where),
        intermarket=_flag(obj, "intermarket", where),
    )


def _batch(raw: object, where: str) -> BatchSpec:
    obj = _object(raw, where, required=("id", "expiry", "serials"), optional=("recalled",))
    set82 = "1-20 characters of GS1 set 82"
    return BatchSpec(
        id=_string(obj["id"], f"{where}.id", _SET82, set82),
        expiry=_string(obj["expiry"], f"{where}.expiry", _YYMMDD, "a YYMMDD date"),
        serials=tuple(
            _string(s, f"{where}.serials[{i}]", _SET82, set82)
            for i, s in enumerate(_list(obj["serials"], f"{where}.serials"))
        ),
        recalled=_flag(obj, "recalled", where),
    )


# ---------------------------------------------------------------------------- generation


def gs1_check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit of ``digits`` (weights 3,1,3,… from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


_SERIAL_CHARS = string.ascii_uppercase + string.ascii_lowercase + string.digits
_SERIAL_EXTRA = "-./_"


def _serial(rng: random.Random) -> str:
    length = rng.randint(10, 20)
    chars = [rng.choice(_SERIAL_CHARS) for _ in range(length)]
    if rng.random() < 0.1:
        chars[rng.randrange(1, length)] = rng.choice(_SERIAL_EXTRA)
    return "".join(chars)


def _yymmdd(day: date, *, end_of_month: bool) -> str:
    return day.strftime("%y%m") + ("00" if end_of_month else day.strftime("%d"))


def generate_market(packs: int, *, today: date, seed: int | None = None) -> MarketData:
    """A random market of ``packs`` packs: GS1 GTINs (half of them French CIP-based
    ``034009…``) with correct check digits, set-82 serials (lower case included), a few
    expired and recalled batches, one withdrawn product and the :data:`DEFAULT_USERS`."""
    rng = random.Random(seed)  # noqa: S311 - test data, reproducible by seed
    products: list[ProductSpec] = []
    remaining = packs
    index = 0
    used_codes: set[str] = set()
    while remaining > 0:
        stem = _product_stem(rng, index)
        if stem in used_codes:
            continue
        used_codes.add(stem)
        batches: list[BatchSpec] = []
        serials_in_product: set[str] = set()
        for batch_index in range(rng.randint(1, 3)):
            count = min(remaining, rng.randint(5, 60))
            if count == 0:
                break
            remaining -= count
            serials: list[str] = []
            while len(serials) < count:
                serial = _serial(rng)
                if serial not in serials_in_product:
                    serials_in_product.add(serial)
                    serials.append(serial)
            expired = rng.random() < 0.08
            offset = -rng.randint(1, 400) if expired else rng.randint(60, 1500)
            batches.append(
                BatchSpec(
                    id=f"{rng.choice(string.ascii_uppercase)}{rng.randint(1000, 99999)}{batch_index}",
                    expiry=_yymmdd(today + timedelta(days=offset), end_of_month=rng.random() < 0.3),
                    serials=tuple(serials),
                    recalled=rng.random() < 0.05,
                )
            )
        products.append(ProductSpec("GTIN", stem, tuple(batches), withdrawn=index == 3))
        index += 1
    return MarketData(DEFAULT_USERS, tuple(products))


def _product_stem(rng: random.Random, index: int) -> str:
    """A GTIN-14: CIP13 ``3400 9 xxxxxxx c`` behind a 0 for even products, else a GS1 company
    prefix from elsewhere in the EU."""
    make: Callable[[], str] = (
        (lambda: "034009" + f"{rng.randrange(10**7):07d}")
        if index % 2 == 0
        else (
            lambda: (
                "0"
                + rng.choice(("500", "540", "400", "590", "800"))
                + f"{rng.randrange(10**9):09d}"
            )
        )
    )
    body = make()
    return body + gs1_check_digit(body)
