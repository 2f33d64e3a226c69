"""Hand-written SOAP requests and a minimal response reader for the simulator tests.

Deliberately independent of the gateway's client: string templates in, XPath out.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from tests.simulator.markets import BATCH, EXPIRY, GTIN, PASSWORDS

W = "urn:wsdltypes.nmvs.eu:v5.0"
T = "urn:types.nmvs.eu:v5.0"
NS = {"t": T, "w": W, "env": "http://www.w3.org/2003/05/soap-envelope"}

# A G110 verify request as an existing Arvato client writes it (prefixes w/t), verbatim.
REFERENCE_SKETCH = """<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"
               xmlns:w="urn:wsdltypes.nmvs.eu:v5.0" xmlns:t="urn:types.nmvs.eu:v5.0">
  <soap:Header/>
  <soap:Body>
    <w:G110Request>
      <t:Header>
        <t:Auth>
          <t:ClientLoginId>PHARMA01</t:ClientLoginId>
          <t:UserId>SITE0001</t:UserId>
          <t:Password>(from credential store)</t:Password>
        </t:Auth>
        <t:UserSoftware t:name="nmvs-gateway" t:supplier="(supplier)" t:version="0.1.0"/>
        <t:Transaction>
          <t:ClientTrxId>0f3c9d2e7a514b0c8e11d2a3b4c5d6e7</t:ClientTrxId>
          <t:Language>eng</t:Language>
        </t:Transaction>
      </t:Header>
      <t:Body>
        <t:Product>
          <t:ProductCode t:scheme="GTIN">05000456013482</t:ProductCode>
          <t:Batch><t:Id>00001</t:Id><t:ExpDate>261200</t:ExpDate></t:Batch>
        </t:Product>
        <t:Pack t:sn="0000000014"/>
      </t:Body>
    </w:G110Request>
  </soap:Body>
</soap:Envelope>"""


def header_xml(
    user: str = "SITE0001",
    trx: str = "0f3c9d2e7a514b0c8e11d2a3b4c5d6e7",
    *,
    password: str | None = None,
    version: str = "0.1.0",
    language: str = "eng",
) -> str:
    return (
        "<u:Header><u:Auth><u:ClientLoginId>PHARMA01</u:ClientLoginId>"
        f"<u:UserId>{user}</u:UserId><u:Password>{password or PASSWORDS[user]}</u:Password></u:Auth>"
        f'<u:UserSoftware u:name="lgo-test" u:supplier="tests" u:version="{version}"/>'
        f"<u:Transaction><u:ClientTrxId>{trx}</u:ClientTrxId><u:Language>{language}</u:Language>"
        "</u:Transaction></u:Header>"
    )


def product_xml(product: str = GTIN, batch: str = BATCH, expiry: str = EXPIRY) -> str:
    return (
        f'<u:Product><u:ProductCode u:scheme="GTIN">{product}</u:ProductCode>'
        f"<u:Batch><u:Id>{batch}</u:Id><u:ExpDate>{expiry}</u:ExpDate></u:Batch></u:Product>"
    )


def envelope(operation: str, inner: str, *, wrapper_ns: str = W) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
        f'xmlns:urn="{wrapper_ns}" xmlns:u="{T}"><e:Body>'
        f"<urn:{operation}>{inner}</urn:{operation}></e:Body></e:Envelope>"
    )


def single(
    use_case: str,
    serial: str = "0000000014",
    *,
    ref: str | None = None,
    header: str | None = None,
    product: str | None = None,
) -> str:
    body = product_xml() if product is None else product
    body += f'<u:Pack u:sn="{serial}"/>'
    if ref is not None:
        body += f"<u:RefClientTrxId>{ref}</u:RefClientTrxId>"
    return envelope(f"{use_case}Request", (header or header_xml()) + f"<u:Body>{body}</u:Body>")


@dataclass(frozen=True)
class Reply:
    """What a test reads from a response."""

    status: int
    root_name: str
    code: str | None
    desc: str | None
    state: str | None
    reasons: list[str]
    nmvs_trx_id: str | None
    client_trx_id: str | None
    xml: etree._Element


def read_reply(status: int, content: bytes) -> Reply:
    root = etree.fromstring(content)
    body = root.find("env:Body", NS)
    assert body is not None
    payload = body[0]
    code = payload.find("t:Body/t:ReturnCode", NS)
    if code is None:
        code = payload.find(".//t:ReturnCode", NS)
    pack = payload.find("t:Body/t:Pack", NS)
    return Reply(
        status=status,
        root_name=etree.QName(payload).localname,
        code=None if code is None else code.get(f"{{{T}}}code"),
        desc=None if code is None else code.get(f"{{{T}}}desc"),
        state=None if pack is None else pack.get(f"{{{T}}}state"),
        reasons=[] if pack is None else [r.text or "" for r in pack.findall("t:Reason", NS)],
        nmvs_trx_id=payload.findtext("t:Header/t:Transaction/t:NMVSTrxId", namespaces=NS),
        client_trx_id=payload.findtext("t:Header/t:Transaction/t:ClientTrxId", namespaces=NS),
        xml=payload,
    )
