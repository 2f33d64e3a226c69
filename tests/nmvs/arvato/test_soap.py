"""Building and reading Arvato SOAP v5 messages, checked against sample messages."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from gateway.codes.pack import Nhrn, PackIdentifier
from gateway.nmvs.arvato import soap
from gateway.nmvs.backend import NmvsInvalidRequestError, Notification
from gateway.nmvs.secret import Secret
from gateway.vocabulary import Operation
from tests.simulator.soapxml import REFERENCE_SKETCH

T = "{urn:types.nmvs.eu:v5.0}"
W = "{urn:wsdltypes.nmvs.eu:v5.0}"

CREDENTIALS = soap.Credentials(
    client_login_id="PHARMA01",
    user_id="SITE0001",
    password=Secret("(from credential store)"),
    sub_user_id=None,
    software_name="nmvs-gateway",
    software_supplier="(supplier)",
    software_version="0.1.0",
    language="eng",
)
PACK = PackIdentifier(
    scheme="GTIN",
    product_code="05000456013482",
    batch="00001",
    expiry="261200",
    serial="0000000014",
)
TRX = "0f3c9d2e7a514b0c8e11d2a3b4c5d6e7"

# A G110 request (prefixes w/t, as an existing Arvato client writes it).
REFERENCE_G110 = REFERENCE_SKETCH.encode()

# A G120 response with the notification filled in.
REFERENCE_G120_RESPONSE = """<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>
<ns2:G120Response xmlns:ns2="urn:wsdltypes.nmvs.eu:v5.0" xmlns:ns1="urn:types.nmvs.eu:v5.0">
  <ns1:Header>
    <ns1:Auth><ns1:ClientLoginId>PHARMA01</ns1:ClientLoginId><ns1:UserId>SITE0001</ns1:UserId></ns1:Auth>
    <ns1:Transaction>
      <ns1:Language>eng</ns1:Language>
      <ns1:ClientTrxId>0f3c9d2e7a514b0c8e11d2a3b4c5d6e7</ns1:ClientTrxId>
      <ns1:NMVSTrxId>ABCDEF0123456789ABCDEF0123456789</ns1:NMVSTrxId>
      <ns1:Timestamp>2025-01-31T10:15:02.123Z</ns1:Timestamp>
    </ns1:Transaction>
    <ns1:Notification ns1:notificationCode="NMVS_NOTIFY_AU_02" ns1:notificationDesc="Password expires in 5 days"/>
  </ns1:Header>
  <ns1:Body>
    <ns1:Product>
      <ns1:ProductCode ns1:scheme="GTIN">05000456013482</ns1:ProductCode>
      <ns1:IntermarketFlag>true</ns1:IntermarketFlag>
      <ns1:Batch><ns1:Id>00001</ns1:Id><ns1:ExpDate>261200</ns1:ExpDate></ns1:Batch>
    </ns1:Product>
    <ns1:Pack ns1:sn="0000000014" ns1:state="INACTIVE"><ns1:Reason>SUPPLIED</ns1:Reason></ns1:Pack>
    <ns1:ReturnCode ns1:code="NMVS_SUCCESS" ns1:desc="Successfully processed."/>
  </ns1:Body>
</ns2:G120Response>
</env:Body></env:Envelope>"""


def shape(element: etree._Element) -> tuple[object, ...]:
    """Prefix-free structure: namespaced tag, attributes, stripped text, children in order."""
    return (
        element.tag,
        sorted(element.attrib.items()),
        (element.text or "").strip(),
        [shape(child) for child in element if isinstance(child.tag, str)],
    )


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def test_g110_request_matches_the_reference_sketch() -> None:
    built = soap.single_pack_request("G110", CREDENTIALS, PACK, TRX)
    assert shape(parse(built)) == shape(parse(REFERENCE_G110))
    assert built.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


@pytest.mark.parametrize("operation", list(Operation))
def test_every_operation_uses_its_wrapper_and_qualified_attributes(operation: Operation) -> None:
    use_case = soap.USE_CASE[operation]
    root = parse(soap.single_pack_request(use_case, CREDENTIALS, PACK, TRX))
    wrapper = root.find("{http://www.w3.org/2003/05/soap-envelope}Body")[0]
    assert wrapper.tag == f"{W}{use_case}Request"
    attributes = [name for element in root.iter() for name in element.attrib]
    assert attributes and all(name.startswith(T) for name in attributes)


def test_use_case_codes() -> None:
    assert [soap.USE_CASE[op] for op in Operation] == [
        "G110", "G120", "G121", "G130", "G131", "G140", "G141",
        "G150", "G151", "G160", "G161", "G170", "G171", "G180",
    ]  # fmt: skip
    assert soap.BULK_USE_CASE[Operation.VERIFY] == "G115"
    assert soap.BULK_USE_CASE[Operation.DISPENSE] == "G125"
    assert soap.BULK_USE_CASE[Operation.UNDO_DISPENSE] == "G127"
    assert soap.BULK_USE_CASE[Operation.UNLOCK] == "G177"
    assert soap.BULK_USE_CASE[Operation.STOLEN] == "G185"
    assert soap.MANUAL_USE_CASE == {Operation.DISPENSE: "G122", Operation.STOLEN: "G182"}


def test_undo_carries_ref_client_trx_id_after_the_pack() -> None:
    ref = "1" * 32
    body = parse(soap.single_pack_request("G121", CREDENTIALS, PACK, TRX, ref)).find(f".//{T}Body")
    assert [child.tag for child in body] == [f"{T}Product", f"{T}Pack", f"{T}RefClientTrxId"]
    assert body[2].text == ref
    without = parse(soap.single_pack_request("G121", CREDENTIALS, PACK, TRX)).find(f".//{T}Body")
    assert [child.tag for child in without] == [f"{T}Product", f"{T}Pack"]


def test_nhrn_goes_between_product_code_and_batch() -> None:
    pack = PackIdentifier(
        scheme="GTIN", product_code=PACK.product_code, batch="B1", expiry="270100", serial="S1",
        nhrn=Nhrn(ai="714", value="ABC1234567"),
    )  # fmt: skip
    root = parse(soap.single_pack_request("G110", CREDENTIALS, pack, TRX))
    product = root.find(f".//{T}Product")
    assert [child.tag for child in product] == [f"{T}ProductCode", f"{T}NHRN", f"{T}Batch"]
    assert product[1].text == "ABC1234567"


def test_sub_user_id_follows_the_password() -> None:
    credentials = soap.Credentials(
        client_login_id="PHARMA01", user_id="SITE0001", password=Secret("x" * 8),
        sub_user_id="till 2", software_name="n", software_supplier="s", software_version="1",
        language="fra",
    )  # fmt: skip
    root = parse(soap.single_pack_request("G110", credentials, PACK, TRX))
    auth = root.find(f".//{T}Auth")
    assert [(c.tag, c.text) for c in auth] == [
        (f"{T}ClientLoginId", "PHARMA01"),
        (f"{T}UserId", "SITE0001"),
        (f"{T}Password", "x" * 8),
        (f"{T}SubUserId", "till 2"),
    ]
    assert root.findtext(f".//{T}Language") == "fra"


def test_manual_entry_has_no_batch() -> None:
    root = parse(soap.manual_entry_request("G122", CREDENTIALS, "PPN", "111234567842", "ab/C", TRX))
    product = root.find(f".//{T}Product")
    assert [child.tag for child in product] == [f"{T}ProductCode"]
    assert product[0].get(f"{T}scheme") == "PPN"
    assert root.find(f".//{T}Pack").get(f"{T}sn") == "ab/C"


def test_bulk_request_lists_every_serial_once() -> None:
    packs = [PackIdentifier("GTIN", PACK.product_code, "B1", "270100", f"S{i}") for i in range(3)]
    root = parse(soap.bulk_request("G125", CREDENTIALS, packs, TRX))
    serials = [p.get(f"{T}sn") for p in root.iterfind(f".//{T}Packs/{T}Pack")]
    assert serials == ["S0", "S1", "S2"]
    assert root.find(f".//{T}Batch/{T}Id").text == "B1"


@pytest.mark.parametrize(
    ("packs", "message"),
    [
        ([], "a bulk request holds 1-100000 packs, not 0"),
        (
            [PackIdentifier("GTIN", "05000456013482", "B1", "270100", "S1")] * 2,
            "serial 'S1' appears twice in the bulk",
        ),
        (
            [
                PackIdentifier("GTIN", "05000456013482", "B1", "270100", "S1"),
                PackIdentifier("GTIN", "05000456013482", "B2", "270100", "S2"),
            ],
            "a bulk request holds packs of one product, batch and expiry only: "
            "serial 'S2' differs from the first pack",
        ),
    ],
)
def test_bulk_request_refuses_mixed_or_repeated_packs(
    packs: list[PackIdentifier], message: str
) -> None:
    with pytest.raises(NmvsInvalidRequestError) as caught:
        soap.bulk_request("G125", CREDENTIALS, packs, TRX)
    assert str(caught.value) == message


def test_bulk_result_request() -> None:
    root = parse(soap.bulk_result_request(CREDENTIALS, "N" * 32, TRX))
    assert root.find(".//{urn:wsdltypes.nmvs.eu:v5.0}G188Request") is not None
    assert root.findtext(f".//{T}Body/{T}RefNMVSTrxId") == "N" * 32


def test_ping_request_has_no_credentials() -> None:
    root = parse(soap.ping_request("SinglePackPingRequest", "hello"))
    wrapper = root.find(f".//{W}SinglePackPingRequest")
    assert [(c.tag, c.text) for c in wrapper] == [(f"{T}Input", "hello")]


@pytest.mark.parametrize(
    ("field", "change", "message"),
    [
        ("client_trx_id", {"client_trx_id": "short"}, "client_trx_id 'short' is not valid"),
        ("client_trx_id", {"client_trx_id": "x" * 33}, "client_trx_id"),
        ("client_trx_id", {"client_trx_id": "0f3c9d2e-7a51-4b0c-8e11-d2a3b4c5d6e7"}, "8-32"),
        ("client_trx_id", {"client_trx_id": "abc_defgh"}, "A-Z a-z 0-9 -"),
        ("ref_client_trx_id", {"ref": "abc defgh"}, "ref_client_trx_id 'abc defgh'"),
        ("product_code", {"product_code": "0500045601348"[:11]}, "product_code"),
        ("product_code", {"product_code": "0500045601348A"}, "12-22 digits"),
        ("scheme", {"scheme": "gtin"}, "scheme 'gtin' is not valid for the NMVS: GTIN or PPN"),
        ("batch", {"batch": ""}, "batch '' is not valid"),
        ("batch", {"batch": "A" * 21}, "1-20 characters of the GS1 set 82"),
        ("batch", {"batch": "AB#1"}, "batch 'AB#1'"),
        ("serial", {"serial": "é"}, "serial 'é'"),
        ("serial", {"serial": "a\x1db"}, "serial 'a\\x1db'"),
        ("expiry", {"expiry": "261300"}, "expiry '261300' is not valid for the NMVS: YYMMDD"),
        ("expiry", {"expiry": "2612"}, "expiry '2612'"),
        ("expiry", {"expiry": "261232"}, "expiry '261232'"),
    ],
)
def test_fields_are_checked_before_building(
    field: str, change: dict[str, str], message: str
) -> None:
    pack = replace(PACK, **{k: v for k, v in change.items() if k in PACK.to_json()})
    with pytest.raises(NmvsInvalidRequestError) as caught:
        soap.single_pack_request(
            "G121", CREDENTIALS, pack, change.get("client_trx_id", TRX), change.get("ref")
        )
    assert message in str(caught.value)
    assert str(caught.value).startswith(field)


def test_expiry_day_00_is_sent_as_scanned() -> None:
    pack = PackIdentifier("GTIN", PACK.product_code, "B1", "261200", "S1")
    root = parse(soap.single_pack_request("G110", CREDENTIALS, pack, TRX))
    assert root.findtext(f".//{T}ExpDate") == "261200"


SET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


@given(
    batch=st.text(alphabet=SET_82, min_size=1, max_size=20),
    serial=st.text(alphabet=SET_82, min_size=1, max_size=20),
)
def test_batch_and_serial_survive_the_xml_byte_for_byte(batch: str, serial: str) -> None:
    pack = PackIdentifier("GTIN", PACK.product_code, batch, "270100", serial)
    root = parse(soap.single_pack_request("G120", CREDENTIALS, pack, TRX))
    assert root.findtext(f".//{T}Batch/{T}Id") == batch
    assert root.find(f".//{T}Pack").get(f"{T}sn") == serial


# --- answers ---------------------------------------------------------------------------------


def test_reference_response_is_read_completely() -> None:
    answer = soap.parse_answer(REFERENCE_G120_RESPONSE.encode(), "G120Response")
    assert answer.return_code == "NMVS_SUCCESS"
    assert answer.description == "Successfully processed."
    assert answer.client_trx_id == TRX
    assert answer.nmvs_trx_id == "ABCDEF0123456789ABCDEF0123456789"
    assert answer.timestamp == datetime(2025, 1, 31, 10, 15, 2, 123000, tzinfo=UTC)
    assert answer.notifications == (
        Notification(code="NMVS_NOTIFY_AU_02", description="Password expires in 5 days"),
    )
    assert answer.state == "INACTIVE"
    assert answer.reasons == ("SUPPLIED",)
    assert answer.intermarket is True


def test_answers_are_matched_by_namespace_not_prefix() -> None:
    renamed = (
        REFERENCE_G120_RESPONSE.replace("ns1:", "a:")
        .replace("xmlns:ns1", "xmlns:a")
        .replace("ns2:", "b:")
        .replace("xmlns:ns2", "xmlns:b")
    )
    assert soap.parse_answer(renamed.encode(), "G120Response") == soap.parse_answer(
        REFERENCE_G120_RESPONSE.encode(), "G120Response"
    )


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda s: s.replace("v5.0", "v4.0"), "expected {urn:wsdltypes.nmvs.eu:v5.0}G120Response"),
        (lambda s: s.replace("G120Response", "G110Response"), "got '{urn:wsdltypes"),
        (lambda s: s.replace('ns1:code="', 'code="'), "ReturnCode has no qualified code"),
        (lambda s: s.replace('state="INACTIVE"', 'state="inactive"'), "pack state 'inactive'"),
        (lambda s: s.replace("2025-01-31T10:15", "31/01/2025 10:15"), "Timestamp"),
        (lambda s: s.replace("<ns1:ReturnCode", "<ns1:Other"), "no overall ReturnCode"),
        (lambda s: s[:200], "not well-formed XML"),
        (lambda s: "", "empty body"),
        (lambda s: "<html><body>502 Bad Gateway</body></html>", "not a SOAP 1.2 Envelope"),
        (
            lambda s: s.replace("http://www.w3.org/2003/05/soap-envelope",
                                "http://schemas.xmlsoap.org/soap/envelope/"),
            "not a SOAP 1.2 Envelope",
        ),
    ],
)  # fmt: skip
def test_malformed_answers_are_refused_with_the_reason(mangle: object, problem: str) -> None:
    data = mangle(REFERENCE_G120_RESPONSE).encode()  # type: ignore[operator]
    with pytest.raises(soap.MalformedAnswerError) as caught:
        soap.parse_answer(data, "G120Response")
    assert problem in str(caught.value)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>
<ns2:G110Response xmlns:ns2="urn:wsdltypes.nmvs.eu:v5.0" xmlns:ns1="urn:types.nmvs.eu:v5.0">
<ns1:Body><ns1:ReturnCode ns1:code="NMVS_SUCCESS" ns1:desc="&lol9;"/></ns1:Body>
</ns2:G110Response></env:Body></env:Envelope>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>
<ns2:G110Response xmlns:ns2="urn:wsdltypes.nmvs.eu:v5.0" xmlns:ns1="urn:types.nmvs.eu:v5.0">
<ns1:Header><ns1:Transaction><ns1:ClientTrxId>&xxe;</ns1:ClientTrxId></ns1:Transaction>
</ns1:Header><ns1:Body><ns1:ReturnCode ns1:code="NMVS_SUCCESS" ns1:desc=""/></ns1:Body>
</ns2:G110Response></env:Body></env:Envelope>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_documents_with_a_doctype_are_refused(payload: bytes) -> None:
    with pytest.raises(soap.MalformedAnswerError, match="DOCTYPE"):
        soap.parse_answer(payload, "G110Response")


def fault(detail: str) -> bytes:
    return f"""<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
        xmlns:ns1="urn:types.nmvs.eu:v5.0"><env:Body><env:Fault>
        <env:Code><env:Value>env:Sender</env:Value></env:Code>
        <env:Reason><env:Text xml:lang="en">schema error</env:Text></env:Reason>
        {detail}</env:Fault></env:Body></env:Envelope>""".encode()


def test_a_fault_with_an_nmvs_return_code_is_an_answer() -> None:
    data = fault(
        '<env:Detail><ns1:ReturnCode ns1:code="NMVS_TE_XM_02" ns1:desc="bad"/></env:Detail>'
    )
    answer = soap.parse_answer(data, "G110Response")
    assert (answer.return_code, answer.description) == ("NMVS_TE_XM_02", "bad")


def test_a_fault_without_return_code_is_malformed() -> None:
    with pytest.raises(soap.MalformedAnswerError, match="SOAP Fault without an NMVS ReturnCode"):
        soap.parse_answer(fault(""), "G110Response")


G188_RESPONSE = b"""<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>
<ns2:G188Response xmlns:ns2="urn:wsdltypes.nmvs.eu:v5.0" xmlns:ns1="urn:types.nmvs.eu:v5.0">
<ns1:Header><ns1:Transaction><ns1:Language>eng</ns1:Language>
<ns1:ClientTrxId>0f3c9d2e7a514b0c8e11d2a3b4c5d6e7</ns1:ClientTrxId>
<ns1:NMVSTrxId>ABCDEF0123456789ABCDEF0123456789</ns1:NMVSTrxId>
<ns1:Timestamp>2025-01-31T10:15:02+01:00</ns1:Timestamp></ns1:Transaction></ns1:Header>
<ns1:Body><ns1:Packs>
<ns1:Pack ns1:sn="A1" ns1:state="INACTIVE"><ns1:Reason>SUPPLIED</ns1:Reason>
<ns1:ReturnCode ns1:code="NMVS_SUCCESS" ns1:desc=""/></ns1:Pack>
<ns1:Pack ns1:sn="A2" ns1:state="INACTIVE"><ns1:Reason>DESTROYED</ns1:Reason>
<ns1:ReturnCode ns1:code="NMVS_NC_PCK_22" ns1:desc=""/></ns1:Pack>
</ns1:Packs><ns1:ReturnCode ns1:code="NMVS_NC_PCK_24" ns1:desc="some failed"/></ns1:Body>
</ns2:G188Response></env:Body></env:Envelope>"""


def test_bulk_result_packs_are_read_with_their_own_codes() -> None:
    answer = soap.parse_answer(G188_RESPONSE, "G188Response")
    assert answer.return_code == "NMVS_NC_PCK_24"
    assert answer.bulk_packs == (
        soap.BulkPackAnswer(serial="A1", state="INACTIVE", reasons=("SUPPLIED",), return_code="NMVS_SUCCESS"),
        soap.BulkPackAnswer(serial="A2", state="INACTIVE", reasons=("DESTROYED",), return_code="NMVS_NC_PCK_22"),
    )  # fmt: skip
    assert answer.state is None
    assert answer.timestamp is not None and answer.timestamp.utcoffset() is not None


def test_ping_output_is_read() -> None:
    data = b"""<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>
    <ns2:SinglePackPingResponse xmlns:ns2="urn:wsdltypes.nmvs.eu:v5.0"
      xmlns:ns1="urn:types.nmvs.eu:v5.0"><ns1:Output>pong</ns1:Output>
    </ns2:SinglePackPingResponse></env:Body></env:Envelope>"""
    assert soap.parse_ping(data, "SinglePackPingResponse") == "pong"


XML_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=60,
)
REASONS = ["SUPPLIED", "DESTROYED", "LOCKED", "EXPORTED", "SAMPLE", "STOLEN", "CHECKED_OUT",
           "FREESAMPLE", "RECALLED", "EXPIRED", "WITHDRAWN", "UNKNOWN"]  # fmt: skip


@given(
    code=st.from_regex(r"NMVS_[A-Z]{2}_[A-Z0-9_]{2,10}", fullmatch=True),
    description=XML_TEXT,
    state=st.sampled_from(["ACTIVE", "INACTIVE", "UNKNOWN"]),
    reasons=st.lists(st.sampled_from(REASONS), max_size=3),
    notes=st.lists(st.tuples(st.sampled_from(["NMVS_NOTIFY_AU_02", "NMVS_NOTIFY_PMS_01"]), XML_TEXT), max_size=2),
    prefixes=st.tuples(st.sampled_from(["ns1", "a", "t"]), st.sampled_from(["ns2", "b", "w"])),
)  # fmt: skip
def test_any_well_formed_answer_is_read_exactly(
    code: str,
    description: str,
    state: str,
    reasons: list[str],
    notes: list[tuple[str, str]],
    prefixes: tuple[str, str],
) -> None:
    t = "urn:types.nmvs.eu:v5.0"
    env = etree.Element("{http://www.w3.org/2003/05/soap-envelope}Envelope")
    body = etree.SubElement(env, "{http://www.w3.org/2003/05/soap-envelope}Body")
    response = etree.SubElement(
        body, f"{W}G110Response", nsmap={prefixes[0]: t, prefixes[1]: W[1:-1]}
    )
    header = etree.SubElement(response, f"{T}Header")
    transaction = etree.SubElement(header, f"{T}Transaction")
    etree.SubElement(transaction, f"{T}ClientTrxId").text = TRX
    for note_code, note_text in notes:
        note = etree.SubElement(header, f"{T}Notification")
        note.set(f"{T}notificationCode", note_code)
        note.set(f"{T}notificationDesc", note_text)
    answer_body = etree.SubElement(response, f"{T}Body")
    pack = etree.SubElement(answer_body, f"{T}Pack", {f"{T}sn": "S1", f"{T}state": state})
    for reason in reasons:
        etree.SubElement(pack, f"{T}Reason").text = reason
    etree.SubElement(answer_body, f"{T}ReturnCode", {f"{T}code": code, f"{T}desc": description})
    answer = soap.parse_answer(etree.tostring(env), "G110Response")
    assert (answer.return_code, answer.description) == (code, description)
    assert (answer.state, answer.reasons) == (state, tuple(reasons))
    assert answer.notifications == tuple(Notification(c, d) for c, d in notes)
    assert answer.client_trx_id == TRX
