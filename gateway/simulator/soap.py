"""The simulator's XML edge: Arvato SOAP v5 requests in, responses out.

Requests are parsed with lxml in safe mode (no DTD, no entities, no network) and checked
against the constraints of the Arvato XSDs: element order, field
patterns and lengths, and **namespace-qualified attributes**. This parser is deliberately
independent of the gateway's client, so a client bug cannot hide a simulator bug.

A document that is not XML raises :class:`SoapRequestError` with ``NMVS_TE_XM_01``; one that
does not match the schema, ``NMVS_TE_XM_02``. Once the operation is known the error carries
it, so the server can still answer with the proper ``GxxxResponse``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from lxml import etree

from gateway.nmvs.arvato.returncodes import lookup
from gateway.simulator.market import (
    BULK_USE_CASES,
    MANUAL_ENTRY,
    SINGLE_USE_CASES,
    UNDO_REASON,
    Answer,
    BulkRequest,
    MixedBulkRequest,
    MixedItem,
    PackRequest,
    RequestHeader,
)

SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
WSDL_TYPES_NS = "urn:wsdltypes.nmvs.eu:v5.0"
TYPES_NS = "urn:types.nmvs.eu:v5.0"
_S, _W, _T = f"{{{SOAP12_NS}}}", f"{{{WSDL_TYPES_NS}}}", f"{{{TYPES_NS}}}"

Service = Literal["single", "bulk", "mixed"]
# The mixed-bulk ping name follows the pattern of the other two (not seen in a source).
PING_OPERATION: dict[Service, str] = {
    "single": "SinglePackPingRequest",
    "bulk": "BulkPingRequest",
    "mixed": "MixedBulkPingRequest",
}
BULK_UNDO = frozenset({"G127", "G137", "G147", "G157", "G167", "G177"})
OPERATIONS: dict[Service, frozenset[str]] = {
    "single": frozenset({f"{uc}Request" for uc in SINGLE_USE_CASES} | {"SinglePackPingRequest"}),
    "bulk": frozenset({f"{uc}Request" for uc in (*BULK_USE_CASES, "G188")} | {"BulkPingRequest"}),
    "mixed": frozenset({"G195Request", "G196Request", "MixedBulkPingRequest"}),
}
# G195 item element → the use cases it may carry (v5: undo items have their own element)
MIXED_ITEM_TYPES: dict[str, frozenset[str]] = {
    "Item": frozenset(SINGLE_USE_CASES - MANUAL_ENTRY - set(UNDO_REASON)),
    "ItemUndo": frozenset(UNDO_REASON),
    "ItemMan": MANUAL_ENTRY,
}

# NMVS 1.04 enforces at least 8 characters (forwarded to the EU Hub); the XSD allows 1.
MIN_CLIENT_TRX_ID = 8
_SET82 = r"[A-Za-z0-9!\"%&'()*+,\-./:;<=>?_]{1,20}"
_TRX_ID = rf"[A-Za-z0-9-]{{{MIN_CLIENT_TRX_ID},32}}"
_NORMALIZED = r"[^\r\n\t]"
PATTERNS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern, re.DOTALL)
    for name, pattern in {
        "ClientLoginId": r"[A-Za-z0-9-]{1,20}",
        "UserId": r"[A-Za-z0-9-]{4,20}",
        "Password": r".{8,60}",
        "SubUserId": rf"{_NORMALIZED}{{1,255}}",
        "authMethod": r".{1,100}",
        "name": r".{1,255}",
        "supplier": r".{1,255}",
        "version": r".{1,10}",
        "ClientTrxId": _TRX_ID,
        "RefClientTrxId": _TRX_ID,
        "RefNMVSTrxId": r"[A-Za-z0-9-]{32}",
        "Language": r".{3}",
        "ProductCode": r"[0-9]{12,22}",
        "scheme": r"GTIN|PPN",
        "NHRN": r"[A-Za-z0-9]{8,20}",
        "Id": _SET82,
        "ExpDate": r"[0-9]{2}(0[1-9]|1[0-2])(0[0-9]|[12][0-9]|3[01])",
        "sn": _SET82,
        "Input": r".{1,100}",
        "reqType": r"G[0-9]{3}",
    }.items()
}
MAX_BULK_PACKS = 100_000


class SoapRequestError(Exception):
    """The request is not XML (``NMVS_TE_XM_01``) or breaks the schema (``NMVS_TE_XM_02``)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        operation: str | None = None,
        header: RequestHeader | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.operation = operation
        self.header = header


@dataclass(frozen=True, slots=True)
class PingCall:
    operation: str
    input: str


@dataclass(frozen=True, slots=True)
class SingleCall:
    operation: str
    header: RequestHeader
    request: PackRequest


@dataclass(frozen=True, slots=True)
class BulkCall:
    """A bulk (G115…G185) or mixed bulk (G195) submission."""

    operation: str
    header: RequestHeader
    request: BulkRequest | MixedBulkRequest


@dataclass(frozen=True, slots=True)
class ResultCall:
    operation: str
    header: RequestHeader
    ref_nmvs_trx_id: str


Call = PingCall | SingleCall | BulkCall | ResultCall


def parse_request(body: bytes, service: Service) -> Call:
    """Parse one SOAP 1.2 request to ``service``; raises :class:`SoapRequestError`."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as error:
        raise SoapRequestError("NMVS_TE_XM_01", f"not well-formed XML: {error}") from None
    # lxml-stubs lacks DocInfo.doctype
    if cast(Any, root.getroottree().docinfo).doctype:
        raise SoapRequestError("NMVS_TE_XM_01", "a document type declaration (DTD) is not allowed")
    wrapper = _unwrap_envelope(root)
    qname = etree.QName(wrapper)
    if qname.namespace != WSDL_TYPES_NS:
        raise SoapRequestError(
            "NMVS_TE_XM_02",
            f"request element {qname.localname} must be in namespace {WSDL_TYPES_NS}, "
            f"not {qname.namespace or 'no namespace'}",
        )
    operation = qname.localname
    if operation not in OPERATIONS[service]:
        raise SoapRequestError(
            "NMVS_TE_XM_02", f"{operation} is not an operation of the {service} service"
        )
    try:
        return _parse_operation(wrapper, operation, service)
    except SoapRequestError as error:
        error.operation = operation
        raise


def _unwrap_envelope(root: etree._Element) -> etree._Element:
    if root.tag != f"{_S}Envelope":
        raise SoapRequestError(
            "NMVS_TE_XM_02", f"the document element must be a SOAP 1.2 Envelope ({SOAP12_NS})"
        )
    children = _elements(root, "Envelope")
    if children and children[0].tag == f"{_S}Header":
        children = children[1:]
    if len(children) != 1 or children[0].tag != f"{_S}Body":
        raise SoapRequestError(
            "NMVS_TE_XM_02", "the Envelope must hold an optional Header and one Body"
        )
    content = _elements(children[0], "Body")
    if len(content) != 1:
        raise SoapRequestError(
            "NMVS_TE_XM_02", "the SOAP Body must hold exactly one request element"
        )
    return content[0]


def _parse_operation(wrapper: etree._Element, operation: str, service: Service) -> Call:
    if operation == PING_OPERATION[service]:
        (input_el,) = _sequence(wrapper, operation, ("Input",))
        assert input_el is not None
        return PingCall(operation, _text(input_el, "Input"))
    header_el, body_el = _sequence(wrapper, operation, ("Header", "Body"))
    assert header_el is not None and body_el is not None
    header = _parse_header(header_el)
    use_case = operation.removesuffix("Request")
    try:
        if use_case in ("G188", "G196"):
            (ref,) = _sequence(body_el, "Body", ("RefNMVSTrxId",))
            assert ref is not None
            return ResultCall(operation, header, _text(ref, "RefNMVSTrxId"))
        if use_case in BULK_USE_CASES:
            return BulkCall(operation, header, _parse_bulk_body(body_el, use_case))
        if use_case == "G195":
            return BulkCall(operation, header, _parse_mixed_body(body_el))
        return SingleCall(operation, header, _parse_single_body(body_el, use_case))
    except SoapRequestError as error:
        error.header = header
        raise


def _parse_header(header_el: etree._Element) -> RequestHeader:
    auth, software, transaction = _sequence(
        header_el, "Header", ("Auth", "UserSoftware", "Transaction")
    )
    assert auth is not None and software is not None and transaction is not None
    _attributes(auth, "Auth", required=(), optional=("authMethod",))
    login, user, password, sub_user = _sequence(
        auth, "Auth", ("ClientLoginId", "UserId", "Password", "SubUserId?")
    )
    assert login is not None and user is not None and password is not None
    _attributes(software, "UserSoftware", required=("name", "supplier", "version"))
    _sequence(software, "UserSoftware", ())
    trx_id, language = _sequence(transaction, "Transaction", ("ClientTrxId", "Language"))
    assert trx_id is not None and language is not None
    return RequestHeader(
        client_login_id=_text(login, "ClientLoginId"),
        user_id=_text(user, "UserId"),
        password=_text(password, "Password"),
        client_trx_id=_text(trx_id, "ClientTrxId"),
        language=_text(language, "Language"),
        sub_user_id=_text(sub_user, "SubUserId") if sub_user is not None else None,
    )


def _parse_product(product_el: etree._Element, *, with_batch: bool) -> tuple[str, str, str, str]:
    names = ("ProductCode", "NHRN?", "Batch") if with_batch else ("ProductCode", "NHRN?")
    code_el, nhrn_el, *batch = _sequence(product_el, "Product", names)
    assert code_el is not None
    scheme = _attributes(code_el, "ProductCode", required=("scheme",))["scheme"]
    code = _text(code_el, "ProductCode", attributes_checked=True)
    if nhrn_el is not None:
        _text(nhrn_el, "NHRN")
    if not with_batch or batch[0] is None:
        return scheme, code, "", ""
    id_el, exp_el = _sequence(batch[0], "Batch", ("Id", "ExpDate"))
    assert id_el is not None and exp_el is not None
    return scheme, code, _text(id_el, "Id"), _text(exp_el, "ExpDate")


def _serial(pack_el: etree._Element) -> str:
    _sequence(pack_el, "Pack", ())
    return _attributes(pack_el, "Pack", required=("sn",))["sn"]


def _parse_single_body(body_el: etree._Element, use_case: str) -> PackRequest:
    names = ["Product", "Pack"] + (["RefClientTrxId?"] if use_case in UNDO_REASON else [])
    product_el, pack_el, *ref = _sequence(body_el, "Body", names)
    assert product_el is not None and pack_el is not None
    return _pack_request(use_case, product_el, pack_el, ref[0] if ref else None)


def _pack_request(
    use_case: str,
    product_el: etree._Element,
    pack_el: etree._Element,
    ref_el: etree._Element | None,
) -> PackRequest:
    """One pack operation; a manual-entry use case carries no batch or expiry."""
    manual = use_case in MANUAL_ENTRY
    scheme, code, batch, expiry = _parse_product(product_el, with_batch=not manual)
    ref_id = None if ref_el is None else _text(ref_el, "RefClientTrxId")
    return PackRequest(
        use_case,
        scheme,
        code,
        _serial(pack_el),
        None if manual else batch,
        None if manual else expiry,
        ref_id,
    )


def _parse_bulk_body(body_el: etree._Element, use_case: str) -> BulkRequest:
    names = ["Product", "Packs"] + (["RefClientTrxId?"] if use_case in BULK_UNDO else [])
    product_el, packs_el, *ref = _sequence(body_el, "Body", names)
    assert product_el is not None and packs_el is not None
    scheme, code, batch, expiry = _parse_product(product_el, with_batch=True)
    serials = [_serial(pack_el) for pack_el in _repeated(packs_el, "Packs", "Pack")]
    if len(set(serials)) != len(serials):
        raise SoapRequestError(
            "NMVS_TE_XM_02", "the serial numbers of a bulk request must be unique"
        )
    ref_id = _text(ref[0], "RefClientTrxId") if ref and ref[0] is not None else None
    return BulkRequest(use_case, scheme, code, batch, expiry, tuple(serials), ref_id)


def _parse_mixed_body(body_el: etree._Element) -> MixedBulkRequest:
    (trx_list,) = _sequence(body_el, "Body", ("TrxList",))
    assert trx_list is not None
    items: list[MixedItem] = []
    for trx_item in _repeated(trx_list, "TrxList", "TrxItem"):
        children = _elements(trx_item, "TrxItem")
        kind = etree.QName(children[0]).localname if len(children) == 1 else None
        if kind not in MIXED_ITEM_TYPES or children[0].tag != f"{_T}{kind}":
            raise SoapRequestError(
                "NMVS_TE_XM_02", "a TrxItem must hold one Item, ItemUndo or ItemMan"
            )
        item = children[0]
        use_case = _attributes(item, kind, required=("reqType",))["reqType"]
        if use_case not in MIXED_ITEM_TYPES[kind]:
            raise SoapRequestError("NMVS_TE_XM_02", f"{kind}@reqType {use_case!r} is not allowed")
        product_el, pack_el, transaction = _sequence(item, kind, ("Product", "Pack", "Transaction"))
        assert product_el is not None and pack_el is not None and transaction is not None
        names = ("ClientTrxId", "Language") + (("RefClientTrxId?",) if kind == "ItemUndo" else ())
        trx_id, language, *ref = _sequence(transaction, "Transaction", names)
        assert trx_id is not None and language is not None
        request = _pack_request(use_case, product_el, pack_el, ref[0] if ref else None)
        items.append(MixedItem(request, _text(trx_id, "ClientTrxId"), _text(language, "Language")))
    return MixedBulkRequest(tuple(items))


# ---------------------------------------------------------------------------- schema helpers


def _repeated(parent: etree._Element, name: str, child: str) -> list[etree._Element]:
    """The 1 to 100 000 ``child`` elements of a list element (Packs, TrxList)."""
    children = _elements(parent, name)
    if not 1 <= len(children) <= MAX_BULK_PACKS:
        raise SoapRequestError(
            "NMVS_TE_XM_02", f"{name} must hold 1 to {MAX_BULK_PACKS} {child} elements"
        )
    for element in children:
        if element.tag != f"{_T}{child}":
            raise SoapRequestError(
                "NMVS_TE_XM_02", f"unexpected element {_describe(element)} in {name}"
            )
    return children


def _describe(element: etree._Element) -> str:
    qname = etree.QName(element)
    return f"{{{qname.namespace}}}{qname.localname}" if qname.namespace else qname.localname


def _elements(parent: etree._Element, name: str) -> list[etree._Element]:
    """The element children; text other than whitespace between them is a schema error."""
    if parent.text and parent.text.strip():
        raise SoapRequestError("NMVS_TE_XM_02", f"{name} must not contain text")
    children: list[etree._Element] = []
    for child in parent:
        if child.tail and child.tail.strip():
            raise SoapRequestError("NMVS_TE_XM_02", f"{name} must not contain text")
        if isinstance(child.tag, str):
            children.append(child)
    return children


def _sequence(
    parent: etree._Element, name: str, names: tuple[str, ...] | list[str]
) -> list[etree._Element | None]:
    """Match the children of ``parent`` against an XSD sequence (``"X?"`` = optional).

    Children must be in the types namespace; returns one slot per name, None when an optional
    element is absent.
    """
    children = _elements(parent, name)
    found: list[etree._Element | None] = []
    position = 0
    for wanted in names:
        optional = wanted.endswith("?")
        local = wanted.removesuffix("?")
        child = children[position] if position < len(children) else None
        if child is not None and child.tag == f"{_T}{local}":
            found.append(child)
            position += 1
        elif optional:
            found.append(None)
        elif child is not None and etree.QName(child).localname == local:
            raise SoapRequestError(
                "NMVS_TE_XM_02",
                f"{name}/{local} must be in namespace {TYPES_NS}, not "
                f"{etree.QName(child).namespace or 'no namespace'}",
            )
        else:
            raise SoapRequestError("NMVS_TE_XM_02", f"{name} is missing {local}")
    if position < len(children):
        raise SoapRequestError(
            "NMVS_TE_XM_02", f"unexpected element {_describe(children[position])} in {name}"
        )
    return found


def _attributes(
    element: etree._Element, name: str, *, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, str]:
    """Check the attributes of ``element``: all qualified with the types namespace."""
    values: dict[str, str] = {}
    for key, value in element.attrib.items():
        qname = etree.QName(key)
        if qname.namespace is None and qname.localname in (*required, *optional):
            raise SoapRequestError(
                "NMVS_TE_XM_02",
                f"attribute {qname.localname} of {name} must be namespace-qualified ({TYPES_NS})",
            )
        if qname.namespace != TYPES_NS or qname.localname not in (*required, *optional):
            raise SoapRequestError("NMVS_TE_XM_02", f"unexpected attribute {qname.text} on {name}")
        values[qname.localname] = _check(qname.localname, str(value), f"{name}@{qname.localname}")
    for attr in required:
        if attr not in values:
            raise SoapRequestError("NMVS_TE_XM_02", f"{name} is missing attribute {attr}")
    return values


def _text(element: etree._Element, name: str, *, attributes_checked: bool = False) -> str:
    if len(element):
        raise SoapRequestError("NMVS_TE_XM_02", f"{name} must hold text only")
    if not attributes_checked:
        _attributes(element, name, required=())
    return _check(name, element.text or "", name)


def _check(kind: str, value: str, where: str) -> str:
    if not PATTERNS[kind].fullmatch(value):
        shown = "(hidden)" if kind == "Password" else repr(value)
        raise SoapRequestError("NMVS_TE_XM_02", f"{where} {shown} breaks the schema constraint")
    return value


# ---------------------------------------------------------------------------- responses


def _sub(
    parent: etree._Element, name: str, text: str | None = None, **attrs: str
) -> etree._Element:
    element = etree.SubElement(parent, f"{_T}{name}", {f"{_T}{k}": v for k, v in attrs.items()})
    if text is not None:
        element.text = text
    return element


def _envelope(payload: etree._Element) -> bytes:
    envelope = etree.Element(f"{_S}Envelope", nsmap={"env": SOAP12_NS})
    etree.SubElement(envelope, f"{_S}Header")
    etree.SubElement(envelope, f"{_S}Body").append(payload)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


def _timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _response_header(
    response: etree._Element, header: RequestHeader | None, answer: Answer
) -> None:
    header_el = _sub(response, "Header")
    if header is not None:
        auth = _sub(header_el, "Auth")
        _sub(auth, "ClientLoginId", header.client_login_id)
        _sub(auth, "UserId", header.user_id)
        if header.sub_user_id is not None:
            _sub(auth, "SubUserId", header.sub_user_id)
    transaction = _sub(header_el, "Transaction")
    _sub(transaction, "Language", header.language if header else "eng")
    if header is not None:
        _sub(transaction, "ClientTrxId", header.client_trx_id)
    _sub(transaction, "NMVSTrxId", answer.nmvs_trx_id)
    _sub(transaction, "Timestamp", _timestamp(answer.timestamp))
    for code, description in answer.notifications:
        _sub(header_el, "Notification", notificationCode=code, notificationDesc=description)


def _product(
    parent: etree._Element,
    scheme: str,
    code: str,
    batch: str | None,
    expiry: str | None,
    *,
    intermarket: bool,
) -> None:
    product_el = _sub(parent, "Product")
    _sub(product_el, "ProductCode", code, scheme=scheme)
    if intermarket:
        _sub(product_el, "IntermarketFlag", "true")
    if batch:
        batch_el = _sub(product_el, "Batch")
        _sub(batch_el, "Id", batch)
        if expiry:
            _sub(batch_el, "ExpDate", expiry)


def _pack(
    parent: etree._Element,
    serial: str,
    state: str,
    reasons: tuple[str, ...],
    code: str | None = None,
    header: RequestHeader | None = None,
) -> None:
    """``Pack@sn@state{Reason*}``, with the pack's own ReturnCode in bulk results."""
    pack = _sub(parent, "Pack", sn=serial, state=state)
    for reason in reasons:
        _sub(pack, "Reason", reason)
    if code is not None:
        _sub(pack, "ReturnCode", code=code, desc=_desc(code, header))


def render_answer(
    operation: str,
    header: RequestHeader | None,
    answer: Answer,
    *,
    product: tuple[str, str, str | None, str | None] | None = None,
    serial: str | None = None,
) -> bytes:
    """A ``GxxxResponse`` (operation ``GxxxRequest``) carrying ``answer``.

    ``product`` = (scheme, code, batch, expiry) echoes the request's product, ``serial`` its pack.
    """
    response = _response(operation)
    _response_header(response, header, answer)
    body = _sub(response, "Body")
    if product is not None and product[1]:
        _product(body, *product, intermarket=answer.intermarket)
    if serial is not None and answer.state is not None:
        _pack(body, serial, answer.state, answer.reasons)
    if answer.bulk is not None:
        packs = _sub(body, "Packs")
        for outcome in answer.bulk:
            _pack(
                packs, outcome.serial, outcome.state, outcome.reasons, outcome.return_code, header
            )
    _sub(body, "ReturnCode", code=answer.return_code, desc=answer.description[:255])
    return _envelope(response)


def render_mixed_result(
    operation: str, header: RequestHeader, answer: Answer, request: MixedBulkRequest
) -> bytes:
    """G196Response: per item its use case, own transaction ids, product, pack and code."""
    response = _response(operation)
    _response_header(response, header, answer)
    body = _sub(response, "Body")
    trx_list = _sub(body, "TrxList")
    for item, outcome in zip(request.items, answer.bulk or (), strict=True):
        req = item.request
        trx_item = _sub(trx_list, "TrxItem", reqType=req.use_case)
        transaction = _sub(trx_item, "Transaction")
        _sub(transaction, "ClientTrxId", item.client_trx_id)
        _sub(transaction, "Language", item.language)
        _sub(transaction, "NMVSTrxId", outcome.nmvs_trx_id or answer.nmvs_trx_id)
        _product(trx_item, req.scheme, req.product_code, req.batch, req.expiry, intermarket=False)
        _pack(trx_item, outcome.serial, outcome.state, outcome.reasons, outcome.return_code, header)
    _sub(body, "ReturnCode", code=answer.return_code, desc=answer.description[:255])
    return _envelope(response)


def _desc(code: str, header: RequestHeader | None) -> str:
    return lookup(code).message(header.language if header else "eng")[:255]


def _response(operation: str) -> etree._Element:
    return etree.Element(
        f"{_W}{operation.removesuffix('Request')}Response",
        nsmap={"ns2": WSDL_TYPES_NS, "ns1": TYPES_NS},
    )


def render_ping(operation: str, output: str) -> bytes:
    response = _response(operation)
    _sub(response, "Output", output)
    return _envelope(response)


def render_fault(code: str, description: str, *, sender: bool = True) -> bytes:
    """A SOAP 1.2 Fault for a request whose operation is unknown; the Detail holds the
    NMVS ReturnCode so a client reading ``{types}ReturnCode@code`` finds it."""
    fault = etree.Element(f"{_S}Fault", nsmap={"env": SOAP12_NS, "ns1": TYPES_NS})
    code_el = etree.SubElement(fault, f"{_S}Code")
    etree.SubElement(code_el, f"{_S}Value").text = "env:Sender" if sender else "env:Receiver"
    reason = etree.SubElement(fault, f"{_S}Reason")
    text = etree.SubElement(reason, f"{_S}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = f"{code}: {description}"
    detail = etree.SubElement(fault, f"{_S}Detail")
    _sub(detail, "ReturnCode", code=code, desc=description[:255])
    return _envelope(fault)
