"""Arvato SOAP v5 messages: building requests and reading answers, with no I/O.

Requests are built with lxml, every element and attribute qualified in its v5 namespace
(attributes too: ``urn1:sn``, never a bare ``sn``). Answers are parsed with a parser that
resolves no entity, loads no DTD, touches no network and refuses huge trees; a document with a
DOCTYPE is refused outright (SOAP forbids them). Elements are matched by namespace URI, never by
prefix. Every field is checked against the Arvato XSD constraints before a request is built, so
a malformed scan is refused here instead of raising a data-mismatch alert at the NMVS.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from gateway.codes.pack import PackIdentifier
from gateway.nmvs.backend import NmvsInvalidRequestError, Notification
from gateway.nmvs.secret import Secret
from gateway.vocabulary import Operation, PackState

SOAP_NS = "http://www.w3.org/2003/05/soap-envelope"
WSDL_NS = "urn:wsdltypes.nmvs.eu:v5.0"
TYPES_NS = "urn:types.nmvs.eu:v5.0"
_NSMAP = {"soap": SOAP_NS, "urn": WSDL_NS, "urn1": TYPES_NS}

SINGLE_PACK_PATH = "/WS_SINGLE_TRANSACTIONS_V1/SinglePackServiceV50"
BULK_PATH = "/WS_BULK_TRANSACTIONS_V1/BulkServiceV50"
CONTENT_TYPE = "text/xml; charset=utf-8"  # what working Arvato clients send

USE_CASE: dict[Operation, str] = {
    Operation.VERIFY: "G110",
    Operation.DISPENSE: "G120",
    Operation.UNDO_DISPENSE: "G121",
    Operation.DESTROY: "G130",
    Operation.UNDO_DESTROY: "G131",
    Operation.EXPORT: "G140",
    Operation.UNDO_EXPORT: "G141",
    Operation.SAMPLE: "G150",
    Operation.UNDO_SAMPLE: "G151",
    Operation.FREE_SAMPLE: "G160",
    Operation.UNDO_FREE_SAMPLE: "G161",
    Operation.LOCK: "G170",
    Operation.UNLOCK: "G171",
    Operation.STOLEN: "G180",
}
MANUAL_USE_CASE: dict[Operation, str] = {Operation.DISPENSE: "G122", Operation.STOLEN: "G182"}
# Bulk: a set Gxx0 becomes Gxx5, an undo Gxx1 becomes Gxx7.
BULK_USE_CASE: dict[Operation, str] = {
    op: code[:3] + ("7" if op.is_undo else "5") for op, code in USE_CASE.items()
}
BULK_RESULT_USE_CASE = "G188"

PACK_STATES: frozenset[str] = frozenset(("ACTIVE", "INACTIVE", "UNKNOWN"))
MAX_BULK_PACKS = 100_000

_ID = re.compile(r"[A-Za-z0-9-]+")
_SET_82 = re.compile(r"[A-Za-z0-9!\"%&'()*+,\-./:;<=>?_]+")
_DIGITS = re.compile(r"[0-9]+")
_ALNUM = re.compile(r"[A-Za-z0-9]+")
_YYMMDD = re.compile(r"[0-9]{2}(0[1-9]|1[0-2])(0[0-9]|[12][0-9]|3[01])")


# --- field checks (XSD constraints) -------------------------------------------------------------


def _bad(field: str, rule: str, value: str) -> NmvsInvalidRequestError:
    return NmvsInvalidRequestError(f"{field} {value!r} is not valid for the NMVS: {rule}")


def check_id(field: str, value: str, min_len: int, max_len: int) -> None:
    if not (min_len <= len(value) <= max_len and _ID.fullmatch(value)):
        raise _bad(field, f"{min_len}-{max_len} characters A-Z a-z 0-9 -", value)


def check_client_trx_id(field: str, value: str) -> None:
    """ClientTrxId / RefClientTrxId: 8–32 ``[A-Za-z0-9-]`` (≥ 8 enforced since NMVS 1.04)."""
    check_id(field, value, 8, 32)


def _check_set_82(field: str, value: str) -> None:
    if not (1 <= len(value) <= 20 and _SET_82.fullmatch(value)):
        raise _bad(field, "1-20 characters of the GS1 set 82", value)


def _check_product(scheme: str, product_code: str) -> None:
    if scheme not in ("GTIN", "PPN"):
        raise _bad("scheme", "GTIN or PPN", scheme)
    if not (12 <= len(product_code) <= 22 and _DIGITS.fullmatch(product_code)):
        raise _bad("product_code", "12-22 digits", product_code)


def check_pack(pack: PackIdentifier) -> None:
    _check_product(pack.scheme, pack.product_code)
    _check_set_82("batch", pack.batch)
    if not _YYMMDD.fullmatch(pack.expiry):
        raise _bad("expiry", "YYMMDD (MM 01-12, DD 00-31)", pack.expiry)
    _check_set_82("serial", pack.serial)
    if pack.nhrn is not None and not (
        8 <= len(pack.nhrn.value) <= 20 and _ALNUM.fullmatch(pack.nhrn.value)
    ):
        raise _bad("nhrn", "8-20 letters and digits", pack.nhrn.value)


# --- building ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """What goes into ``Header/Auth`` and ``Header/UserSoftware``; validated by the config."""

    client_login_id: str
    user_id: str
    password: Secret
    sub_user_id: str | None
    software_name: str
    software_supplier: str
    software_version: str
    language: str


def _t(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{TYPES_NS}}}{name}")
    if text is not None:
        element.text = text
    return element


def _envelope(wrapper_name: str) -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap=_NSMAP)
    etree.SubElement(envelope, f"{{{SOAP_NS}}}Header")
    body = etree.SubElement(envelope, f"{{{SOAP_NS}}}Body")
    wrapper = etree.SubElement(body, f"{{{WSDL_NS}}}{wrapper_name}")
    return envelope, wrapper


def _header(wrapper: etree._Element, credentials: Credentials, client_trx_id: str) -> None:
    header = _t(wrapper, "Header")
    auth = _t(header, "Auth")
    _t(auth, "ClientLoginId", credentials.client_login_id)
    _t(auth, "UserId", credentials.user_id)
    _t(auth, "Password", credentials.password.reveal())
    if credentials.sub_user_id is not None:
        _t(auth, "SubUserId", credentials.sub_user_id)
    software = _t(header, "UserSoftware")
    software.set(f"{{{TYPES_NS}}}name", credentials.software_name)
    software.set(f"{{{TYPES_NS}}}supplier", credentials.software_supplier)
    software.set(f"{{{TYPES_NS}}}version", credentials.software_version)
    transaction = _t(header, "Transaction")
    _t(transaction, "ClientTrxId", client_trx_id)
    _t(transaction, "Language", credentials.language)


def _product(body: etree._Element, pack: PackIdentifier | None, scheme: str, code: str) -> None:
    product = _t(body, "Product")
    _t(product, "ProductCode", code).set(f"{{{TYPES_NS}}}scheme", scheme)
    if pack is not None:
        if pack.nhrn is not None:
            _t(product, "NHRN", pack.nhrn.value)
        batch = _t(product, "Batch")
        _t(batch, "Id", pack.batch)
        _t(batch, "ExpDate", pack.expiry)


def _pack(parent: etree._Element, serial: str) -> None:
    _t(parent, "Pack").set(f"{{{TYPES_NS}}}sn", serial)


def _serialize(envelope: etree._Element) -> bytes:
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def single_pack_request(
    use_case: str,
    credentials: Credentials,
    pack: PackIdentifier,
    client_trx_id: str,
    ref_client_trx_id: str | None = None,
) -> bytes:
    """A G110–G180 request (G1x1 undo with the optional RefClientTrxId)."""
    check_client_trx_id("client_trx_id", client_trx_id)
    if ref_client_trx_id is not None:
        check_client_trx_id("ref_client_trx_id", ref_client_trx_id)
    check_pack(pack)
    envelope, wrapper = _envelope(f"{use_case}Request")
    _header(wrapper, credentials, client_trx_id)
    body = _t(wrapper, "Body")
    _product(body, pack, pack.scheme, pack.product_code)
    _pack(body, pack.serial)
    if ref_client_trx_id is not None:
        _t(body, "RefClientTrxId", ref_client_trx_id)
    return _serialize(envelope)


def manual_entry_request(
    use_case: str,
    credentials: Credentials,
    scheme: str,
    product_code: str,
    serial: str,
    client_trx_id: str,
) -> bytes:
    """G122 / G182: product code and serial only."""
    check_client_trx_id("client_trx_id", client_trx_id)
    _check_product(scheme, product_code)
    _check_set_82("serial", serial)
    envelope, wrapper = _envelope(f"{use_case}Request")
    _header(wrapper, credentials, client_trx_id)
    body = _t(wrapper, "Body")
    _product(body, None, scheme, product_code)
    _pack(body, serial)
    return _serialize(envelope)


def bulk_request(
    use_case: str,
    credentials: Credentials,
    packs: Sequence[PackIdentifier],
    client_trx_id: str,
) -> bytes:
    """G115…G185: 1–100 000 unique serials of one product and batch."""
    check_client_trx_id("client_trx_id", client_trx_id)
    if not 1 <= len(packs) <= MAX_BULK_PACKS:
        raise NmvsInvalidRequestError(
            f"a bulk request holds 1-{MAX_BULK_PACKS} packs, not {len(packs)}"
        )
    first = packs[0]
    serials: set[str] = set()
    for pack in packs:
        check_pack(pack)
        if (pack.scheme, pack.product_code, pack.batch, pack.expiry) != (
            first.scheme,
            first.product_code,
            first.batch,
            first.expiry,
        ):
            raise NmvsInvalidRequestError(
                "a bulk request holds packs of one product, batch and expiry only: "
                f"serial {pack.serial!r} differs from the first pack"
            )
        if pack.serial in serials:
            raise NmvsInvalidRequestError(f"serial {pack.serial!r} appears twice in the bulk")
        serials.add(pack.serial)
    envelope, wrapper = _envelope(f"{use_case}Request")
    _header(wrapper, credentials, client_trx_id)
    body = _t(wrapper, "Body")
    _product(body, first, first.scheme, first.product_code)
    packs_element = _t(body, "Packs")
    for pack in packs:
        _pack(packs_element, pack.serial)
    return _serialize(envelope)


def bulk_result_request(credentials: Credentials, nmvs_trx_id: str, client_trx_id: str) -> bytes:
    """G188: fetch the result of a bulk transaction by its NMVSTrxId."""
    check_client_trx_id("client_trx_id", client_trx_id)
    check_id("nmvs_trx_id", nmvs_trx_id, 1, 32)
    envelope, wrapper = _envelope(f"{BULK_RESULT_USE_CASE}Request")
    _header(wrapper, credentials, client_trx_id)
    _t(_t(wrapper, "Body"), "RefNMVSTrxId", nmvs_trx_id)
    return _serialize(envelope)


def ping_request(wrapper_name: str, text: str) -> bytes:
    """``SinglePackPingRequest`` / ``BulkPingRequest``: no credentials, an ``Input`` string."""
    envelope, wrapper = _envelope(wrapper_name)
    _t(wrapper, "Input", text)
    return _serialize(envelope)


# --- parsing -----------------------------------------------------------------------------------


class MalformedAnswerError(ValueError):
    """The answer is not a v5 SOAP response we can read; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class BulkPackAnswer:
    """One pack of a G188 result as the NMVS wrote it."""

    serial: str
    state: PackState | None
    reasons: tuple[str, ...]
    return_code: str


@dataclass(frozen=True, slots=True)
class Answer:
    """One parsed ``GxxxResponse``: the header echo, the overall ReturnCode and the body."""

    wrapper: str
    return_code: str
    description: str
    client_trx_id: str | None
    nmvs_trx_id: str | None
    timestamp: datetime | None
    notifications: tuple[Notification, ...]
    state: PackState | None
    reasons: tuple[str, ...]
    intermarket: bool
    bulk_packs: tuple[BulkPackAnswer, ...]


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


_PARSER = _parser()


def parse_document(data: bytes) -> etree._Element:
    """Parse bytes into the SOAP envelope; refuse anything that is not a plain SOAP 1.2 document."""
    if not data.strip():
        raise MalformedAnswerError("empty body")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedAnswerError(f"not well-formed XML ({exc.msg})") from None
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None:
        raise MalformedAnswerError("the answer carries a DOCTYPE (refused: SOAP forbids DTDs)")
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise MalformedAnswerError(f"root element is {root.tag!r}, not a SOAP 1.2 Envelope")
    return root


def body_content(envelope: etree._Element) -> etree._Element:
    body = envelope.find(f"{{{SOAP_NS}}}Body")
    if body is None:
        raise MalformedAnswerError("no SOAP Body")
    children = [child for child in body if isinstance(child.tag, str)]
    if len(children) != 1:
        raise MalformedAnswerError(f"SOAP Body holds {len(children)} elements, expected 1")
    return children[0]


def _attr(element: etree._Element, name: str) -> str | None:
    return element.get(f"{{{TYPES_NS}}}{name}")


def _text(parent: etree._Element | None, *path: str) -> str | None:
    element = parent
    for name in path:
        if element is None:
            return None
        element = element.find(f"{{{TYPES_NS}}}{name}")
    return None if element is None else (element.text or "")


def _timestamp(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise MalformedAnswerError(f"Timestamp {value!r} is not an xs:dateTime") from None


def _state(value: str | None, where: str) -> PackState | None:
    if value is None:
        return None
    if value not in PACK_STATES:
        raise MalformedAnswerError(f"{where} state {value!r} is not ACTIVE, INACTIVE or UNKNOWN")
    state: PackState = value  # type: ignore[assignment]  # narrowed by the membership test
    return state


def _return_code(parent: etree._Element, where: str) -> tuple[str, str]:
    element = parent.find(f"{{{TYPES_NS}}}ReturnCode")
    if element is None:
        raise MalformedAnswerError(f"no {where} ReturnCode in the types namespace")
    code = _attr(element, "code")
    if not code:
        raise MalformedAnswerError(f"{where} ReturnCode has no qualified code attribute")
    return code, _attr(element, "desc") or ""


def parse_answer(data: bytes, expected_wrapper: str) -> Answer:
    """Read a ``GxxxResponse``; raise :class:`MalformedAnswerError` for anything else."""
    content = body_content(parse_document(data))
    if content.tag == f"{{{SOAP_NS}}}Fault":
        return _fault(content, expected_wrapper)
    if content.tag != f"{{{WSDL_NS}}}{expected_wrapper}":
        raise MalformedAnswerError(f"expected {{{WSDL_NS}}}{expected_wrapper}, got {content.tag!r}")
    header = content.find(f"{{{TYPES_NS}}}Header")
    body = content.find(f"{{{TYPES_NS}}}Body")
    if body is None:
        raise MalformedAnswerError("no Body in the types namespace")
    return_code, description = _return_code(body, "overall")
    notifications = tuple(
        Notification(
            code=_attr(n, "notificationCode") or "", description=_attr(n, "notificationDesc") or ""
        )
        for n in (header.iterfind(f"{{{TYPES_NS}}}Notification") if header is not None else ())
    )
    pack = body.find(f"{{{TYPES_NS}}}Pack")
    intermarket = _text(body, "Product", "IntermarketFlag")
    bulk_packs = tuple(
        BulkPackAnswer(
            serial=_attr(p, "sn") or "",
            state=_state(_attr(p, "state"), "bulk pack"),
            reasons=tuple(r.text or "" for r in p.iterfind(f"{{{TYPES_NS}}}Reason")),
            return_code=_return_code(p, "bulk pack")[0],
        )
        for p in body.iterfind(f"{{{TYPES_NS}}}Packs/{{{TYPES_NS}}}Pack")
    )
    return Answer(
        wrapper=expected_wrapper,
        return_code=return_code,
        description=description,
        client_trx_id=_text(header, "Transaction", "ClientTrxId"),
        nmvs_trx_id=_text(header, "Transaction", "NMVSTrxId"),
        timestamp=_timestamp(_text(header, "Transaction", "Timestamp")),
        notifications=notifications,
        state=None if pack is None else _state(_attr(pack, "state"), "pack"),
        reasons=()
        if pack is None
        else tuple(r.text or "" for r in pack.iterfind(f"{{{TYPES_NS}}}Reason")),
        intermarket=intermarket is not None and intermarket.strip() in ("true", "1"),
        bulk_packs=bulk_packs,
    )


def _fault(fault: etree._Element, expected_wrapper: str) -> Answer:
    """A SOAP 1.2 Fault counts as an answer only when its Detail carries an NMVS ReturnCode."""
    detail = fault.find(f"{{{SOAP_NS}}}Detail")
    code_element = None if detail is None else detail.find(f".//{{{TYPES_NS}}}ReturnCode")
    code = None if code_element is None else _attr(code_element, "code")
    if code_element is None or not code:
        reason = fault.findtext(f"{{{SOAP_NS}}}Reason/{{{SOAP_NS}}}Text") or ""
        raise MalformedAnswerError(f"SOAP Fault without an NMVS ReturnCode: {reason[:200]!r}")
    return Answer(
        wrapper=expected_wrapper,
        return_code=code,
        description=_attr(code_element, "desc") or "",
        client_trx_id=None,
        nmvs_trx_id=None,
        timestamp=None,
        notifications=(),
        state=None,
        reasons=(),
        intermarket=False,
        bulk_packs=(),
    )


def parse_ping(data: bytes, expected_wrapper: str) -> str:
    """The ``Output`` of a ping answer (accepted in either v5 namespace)."""
    content = body_content(parse_document(data))
    if content.tag != f"{{{WSDL_NS}}}{expected_wrapper}":
        raise MalformedAnswerError(f"expected {expected_wrapper}, got {content.tag!r}")
    for namespace in (TYPES_NS, WSDL_NS):
        output = content.find(f"{{{namespace}}}Output")
        if output is not None:
            return output.text or ""
    raise MalformedAnswerError("ping answer has no Output")
