"""The request parser and envelopes: exact rejection messages, schema agreement, no crash on
any input."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.codes.pack import PackIdentifier
from gateway.engine.model import Outcome
from gateway.mqtt.contract import (
    LgoRequest,
    RequestRejected,
    Topics,
    encode,
    error_payload,
    parse_request,
    status_payload,
)
from gateway.vocabulary import Operation
from tests.mqtt.schemas import KINDS, SCHEMA_DIR, validate, validator

PACK = {
    "scheme": "GTIN",
    "product_code": "09876543210982",
    "batch": "aBc-12",
    "expiry": "281200",
    "serial": "sN0123xyz",
}


def request(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def test_topics_hang_under_the_base() -> None:
    topics = Topics("nmvs/counter-1")
    assert (topics.status, topics.scan, topics.request, topics.result, topics.health) == (
        "nmvs/counter-1/status",
        "nmvs/counter-1/scan",
        "nmvs/counter-1/request",
        "nmvs/counter-1/result",
        "nmvs/counter-1/health",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_every_schema_is_a_valid_draft_2020_12_schema(kind: str) -> None:
    validator(kind)


def test_status_payloads_follow_the_schema() -> None:
    for state in ("online", "offline"):
        data = validate("status", status_payload(state, gateway_id="c1", version="0.1.0"))
        assert data == {"schema_version": 1, "state": state, "gateway_id": "c1", "version": "0.1.0"}


def test_a_pack_request_keeps_every_character() -> None:
    parsed = parse_request(request(id="lgo-1", op="dispense", pack=PACK, user="anne"))
    assert parsed == LgoRequest(
        "lgo-1", Operation.DISPENSE, PackIdentifier.from_json(PACK), None, "anne"
    )
    assert parsed.pack is not None and parsed.pack.batch == "aBc-12"
    validate("request", request(id="lgo-1", op="dispense", pack=PACK, user="anne"))


def test_a_scan_id_request() -> None:
    parsed = parse_request(request(id="lgo-2", op="verify", scan_id="01JX"))
    assert parsed == LgoRequest("lgo-2", Operation.VERIFY, None, "01JX", None)


@pytest.mark.parametrize(
    ("payload", "detail", "has_id"),
    [
        (b"x" * 20000, "the request is 20000 bytes, the limit is 16384", False),
        (
            request(id="big", op="verify", pack=PACK, user="u" * 20000),
            "the request is 20165 bytes, the limit is 16384",
            True,
        ),
        (b"\xff\xfe", "the request is not UTF-8 text", False),
        (
            b'{"id": ',
            "the request is not valid JSON (Expecting value: line 1 column 8 (char 7))",
            False,
        ),
        (b"[1, 2]", "the request must be a JSON object", False),
        (request(op="verify", pack=PACK), "id is missing (your idempotency key)", False),
        (
            request(id=None, op="verify", pack=PACK),
            "id must be a non-empty string (your idempotency key)",
            False,
        ),
        (
            request(id="r", pack=PACK),
            "op is missing; it is one of verify, dispense, undo_dispense, destroy, undo_destroy, export, undo_export, sample, undo_sample, free_sample, undo_free_sample, lock, unlock, stolen",
            True,
        ),
        (
            request(id="r", op="verify", pack=PACK, schema_version=2),
            "schema_version must be 1 (or left out), not 2",
            True,
        ),
        (
            request(id="r", op="verify", pack=PACK, schema_version="1"),
            'schema_version must be 1 (or left out), not "1"',
            True,
        ),
        (
            request(id="r", op="verify", pack=PACK, user=None),
            "user must be a string of at most 128 characters",
            True,
        ),
        (
            b'{"id": "r", "op": "verify", "op": "dispense", "pack": {}}',
            "the field 'op' appears twice in one object; send each field once",
            False,
        ),
        (
            request(id="r", op="verify", pack=PACK).replace(
                b'"serial": ', b'"serial": "A", "serial": '
            ),
            "the field 'serial' appears twice in one object; send each field once",
            False,
        ),
        (
            request(id="x" * 129, op="verify", pack=PACK),
            "id must be at most 128 printable ASCII characters, not 129 characters",
            False,
        ),
        (
            request(id="caf\u00e9", op="verify", pack=PACK),
            "id must be at most 128 printable ASCII characters, not 4 characters, U+00E9 at position 4",
            False,
        ),
        (
            request(id="  ", op="verify", pack=PACK),
            "id must be a non-empty string (your idempotency key)",
            False,
        ),
        (
            request(id="a\tb", op="verify", pack=PACK),
            "id must be at most 128 printable ASCII characters, not 3 characters, U+0009 at position 2",
            False,
        ),
        (
            request(id="r", op="sell", pack=PACK),
            'op must be one of verify, dispense, undo_dispense, destroy, undo_destroy, export, undo_export, sample, undo_sample, free_sample, undo_free_sample, lock, unlock, stolen, not "sell"',
            True,
        ),
        (
            request(id="r", op=None, pack=PACK),
            "op must be one of verify, dispense, undo_dispense, destroy, undo_destroy, export, undo_export, sample, undo_sample, free_sample, undo_free_sample, lock, unlock, stolen, not null",
            True,
        ),
        (
            request(id="r", op="verify"),
            "give exactly one of pack (the pack identifier) or scan_id (a scan's id)",
            True,
        ),
        (
            request(id="r", op="verify", pack=PACK, scan_id="s"),
            "give exactly one of pack (the pack identifier) or scan_id (a scan's id)",
            True,
        ),
        (request(id="r", op="verify", scan_id=""), "scan_id must be a non-empty string", True),
        (
            request(id="r", op="verify", pack={**PACK, "serial": 12}),
            "pack.serial must be a string",
            True,
        ),
        (
            request(id="r", op="verify", pack={**PACK, "scheme": "EAN"}),
            "pack.scheme must be one of GTIN, PPN, not 'EAN'",
            True,
        ),
        (
            request(id="r", op="verify", pack=PACK, user=7),
            "user must be a string of at most 128 characters",
            True,
        ),
        (
            request(id="r", op="verify", pack=PACK, transaction=3),
            "unknown field 'transaction'; the fields are id, op, pack, scan_id, user",
            True,
        ),
        (b"[" * 3000 + b"]" * 3000, "the request is not valid JSON (nesting too deep)", False),
        (
            b'{"id": "r", "op": "verify", "x": ' + b"[" * 900 + b"]" * 900 + b"}",
            "unknown field 'x'; the fields are id, op, pack, scan_id, user",
            True,
        ),
        (
            request(id="r\ud800", op="verify", pack=PACK),
            "id is not valid Unicode text (it contains a lone surrogate)",
            False,
        ),
        (
            request(id="r", op="verify", scan_id="s\udfff"),
            "scan_id is not valid Unicode text (it contains a lone surrogate)",
            True,
        ),
        (
            request(id="r", op="verify", pack=PACK, user="\ud800"),
            "user is not valid Unicode text (it contains a lone surrogate)",
            True,
        ),
        (
            request(id="r", op="verify", pack={**PACK, "serial": "A\ud800"}),
            "pack.serial is not valid Unicode text (it contains a lone surrogate)",
            True,
        ),
        (
            request(id="r", op="verify\ud800", pack=PACK),
            "op is not valid Unicode text (it contains a lone surrogate)",
            True,
        ),
        (
            request(id="r", op="verify", pack={**PACK, "\ud800": 1}),
            "the field name '\\ud800' in pack is not valid Unicode text (it contains a lone surrogate)",
            True,
        ),
        (
            request(id="r", op="verify", pack={**PACK, "NHRN": {"ai": "710", "value": "1"}}),
            "pack: unknown key 'NHRN' (keys are scheme, product_code, batch, expiry, serial, nhrn, aim, keyed)",
            True,
        ),
        (
            request(id="r", op="verify", pack={**PACK, "extra": 1}),
            "pack: unknown key 'extra' (keys are scheme, product_code, batch, expiry, serial, nhrn, aim, keyed)",
            True,
        ),
        (
            request(
                id="r", op="verify", pack={**PACK, "nhrn": {"ai": "710", "value": "1", "Ai": 2}}
            ),
            "pack.nhrn: unknown key 'Ai' (keys are ai, value)",
            True,
        ),
        (
            request(id="r", op="verify", pack={**PACK, "nhrn": {"ai": "710"}}),
            'pack.nhrn must be {"ai": "71x", "value": "..."}',
            True,
        ),
    ],
)
def test_bad_requests_are_rejected_with_what_to_fix(
    payload: bytes, detail: str, has_id: bool
) -> None:
    with pytest.raises(RequestRejected) as info:
        parse_request(payload)
    assert info.value.detail == detail
    assert (info.value.id is not None) == has_id
    result = validate("error", encode(error_payload(info.value, payload)))
    assert result["request_id"] == info.value.id
    assert result["reason"] == "bad_request"
    problem = result["problems"][0]
    assert problem["code"] == "BAD_REQUEST"
    assert (
        problem["message"] == f"The request is not valid ({detail}): correct it and send it again."
    )


def test_an_integer_too_long_to_convert_is_rejected_not_raised() -> None:
    with pytest.raises(RequestRejected) as info:
        parse_request(b'{"id": "r", "op": "verify", "n": ' + b"1" * 5000 + b"}")
    assert info.value.detail.startswith("the request is not valid JSON (Exceeds the limit")


def test_a_leading_byte_order_mark_is_ignored() -> None:
    plain = request(id="r", op="verify", pack=PACK)
    assert parse_request(b"\xef\xbb\xbf" + plain) == parse_request(plain)
    with pytest.raises(RequestRejected) as info:
        parse_request(b"\xef\xbb\xbf" + request(id="big", op="verify", pack=PACK, user="u" * 20000))
    assert info.value.id == "big"


@pytest.mark.parametrize(
    ("payload", "detail_fr"),
    [
        (
            request(id="r", op="verify"),
            "donnez soit pack (l'identifiant de la boîte), soit scan_id (l'id d'un scan), "
            "pas les deux",
        ),
        (
            b"[" * 3000 + b"]" * 3000,
            "la requête n'est pas du JSON valide (imbrication trop profonde)",
        ),
        (
            request(id="r", op="verify", pack={**PACK, "NHRN": {}}),
            "pack : clé inconnue 'NHRN' (les clés sont scheme, product_code, batch, expiry, serial, nhrn, aim, keyed)",
        ),
        (
            request(id="r", op="verify", pack={**PACK, "serial": 1}),
            "pack.serial doit être une chaîne",
        ),
        (
            request(id="r", op="verify", scan_id="\ud800"),
            "scan_id n'est pas un texte Unicode valide (il contient un surrogate isolé)",
        ),
    ],
)
def test_rejections_are_worded_in_french_too(payload: bytes, detail_fr: str) -> None:
    with pytest.raises(RequestRejected) as info:
        parse_request(payload)
    problem = error_payload(info.value, payload)["problems"][0]
    assert problem["message_fr"] == (
        f"La requête n'est pas valide ({detail_fr}) : corrigez-la et renvoyez-la."
    )


def test_encode_adds_the_version_and_keeps_unicode_as_is() -> None:
    assert encode({"text": "é\x1d"}) == '{"schema_version":1,"text":"é\\u001d"}'.encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.binary(max_size=300))
def test_no_byte_string_crashes_the_parser(payload: bytes) -> None:
    with contextlib.suppress(RequestRejected):
        parse_request(payload)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(st.text(max_size=10), json_values),
            "op": st.one_of(st.sampled_from([op.value for op in Operation]), json_values),
            "pack": st.one_of(st.just(PACK), json_values),
            "scan_id": st.one_of(st.text(max_size=5), json_values),
            "user": st.one_of(st.text(max_size=5), json_values),
            "extra": json_values,
        },
    )
)
def test_whatever_the_parser_accepts_the_schema_accepts(data: dict[str, Any]) -> None:
    try:
        parse_request(json.dumps(data).encode())
    except RequestRejected as rejected:
        validate("error", encode(error_payload(rejected, json.dumps(data).encode())))
        return
    validate("request", data)


# Text with lone surrogates (JSON "\\ud800"), which hypothesis's text() never draws.
any_text = st.text(max_size=4) | st.text(alphabet="a\ud800\udfffé", max_size=4)


@given(
    st.fixed_dictionaries(
        {"id": any_text, "op": any_text | st.just("verify")},
        optional={
            "pack": st.fixed_dictionaries({k: any_text | st.just(v) for k, v in PACK.items()}),
            "scan_id": any_text,
            "user": any_text,
        },
    ),
    st.dictionaries(any_text, any_text, max_size=2),
)
def test_whatever_the_parser_returns_can_be_encoded(
    data: dict[str, Any], extra: dict[str, str]
) -> None:
    try:
        accepted = parse_request(json.dumps({**extra, **data}).encode())
    except RequestRejected as rejected:
        encode(error_payload(rejected, b""))
        return
    encode({"id": accepted.id, "user": accepted.user, "scan_id": accepted.scan_id})
    if accepted.pack is not None:
        encode(accepted.pack.to_json())


def test_the_result_schema_and_the_docs_know_every_outcome_of_the_engine() -> None:
    schema = json.loads((SCHEMA_DIR / "result.json").read_text())
    documented = set(schema["properties"]["outcome"]["enum"]) - {None}
    assert documented == {o.value for o in Outcome}
    guide = (SCHEMA_DIR.parent / "mqtt.md").read_text()
    for outcome in documented:
        assert f"| `{outcome}` |" in guide


def test_the_asyncapi_file_points_at_every_schema() -> None:
    asyncapi = (SCHEMA_DIR.parent / "asyncapi.yaml").read_text()
    refs = set(re.findall(r"\$ref: '\./schemas/(\w+)\.json'", asyncapi))
    assert refs == set(KINDS)
    for kind in KINDS:
        assert f"address: '{{base}}/{kind}'" in asyncapi


def _schema_accepts(data: dict[str, Any]) -> bool:
    return not list(validator("request").iter_errors(data))


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "schema_version": st.sampled_from([1, 2, 0, "1", None, True, 1.0]),
            "id": st.text(max_size=130) | st.sampled_from(["x" * 128, "x" * 129, " ", "a b"]),
            "op": st.sampled_from([*(op.value for op in Operation), "sell", None]),
            "user": st.none() | st.text(max_size=130) | st.integers(),
        },
    ),
    st.sampled_from([{"pack": PACK}, {"scan_id": "01JDB0Q6XK"}, {"scan_id": ""}, {}]),
)
def test_the_request_schema_and_the_parser_agree(
    data: dict[str, Any], target: dict[str, Any]
) -> None:
    """One source of truth: a request the schema accepts is accepted, and the reverse."""
    request_data = {**data, **target}
    try:
        parse_request(json.dumps(request_data).encode())
        parsed = True
    except RequestRejected:
        parsed = False
    assert parsed == _schema_accepts(request_data), request_data
