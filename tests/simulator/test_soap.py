"""The SOAP service driven over real HTTP with hand-written XML (no client code involved)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from gateway.simulator.market import Market, UserSpec
from gateway.simulator.server import (
    BULK_PATH,
    MIXED_BULK_PATH,
    SINGLE_PATH,
    RunningSimulator,
    running_simulator,
)
from tests.simulator.markets import MARKET, Clock
from tests.simulator.soapxml import (
    REFERENCE_SKETCH,
    T,
    envelope,
    header_xml,
    product_xml,
    read_reply,
    single,
)

SKETCH_USER = UserSpec("PHARMA01", "SITE0001", "(from credential store)")


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    market = Market(MARKET, time_source=Clock())
    async with running_simulator(market, plain_http=True, admin=True) as running:
        yield running


@pytest.fixture
async def http(sim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        yield client


async def post(
    http: httpx.AsyncClient, xml: str, path: str = SINGLE_PATH, content_type: str = "text/xml"
):
    response = await http.post(path, content=xml.encode(), headers={"Content-Type": content_type})
    return read_reply(response.status_code, response.content)


async def test_the_reference_sketch_is_accepted_verbatim() -> None:
    data = replace(MARKET, users=(SKETCH_USER,))
    async with running_simulator(data, plain_http=True) as sim, httpx.AsyncClient() as http:
        response = await http.post(
            sim.single_url, content=REFERENCE_SKETCH, headers={"Content-Type": "text/xml"}
        )
    reply = read_reply(response.status_code, response.content)
    assert (reply.status, reply.root_name, reply.code, reply.state) == (
        200,
        "G110Response",
        "NMVS_SUCCESS",
        "ACTIVE",
    )
    assert reply.client_trx_id == "0f3c9d2e7a514b0c8e11d2a3b4c5d6e7"
    assert reply.nmvs_trx_id is not None and len(reply.nmvs_trx_id) == 32
    assert response.headers["content-type"].startswith("application/soap+xml")


@pytest.mark.parametrize(
    "content_type",
    [
        "text/xml",
        "text/xml; charset=utf-8",
        'application/soap+xml; charset=utf-8; action="urn:G110Verify"',
    ],
)
async def test_accepted_content_types(http: httpx.AsyncClient, content_type: str) -> None:
    reply = await post(http, single("G110"), content_type=content_type)
    assert reply.code == "NMVS_SUCCESS"


async def test_other_content_types_are_refused_with_a_fault(http: httpx.AsyncClient) -> None:
    reply = await post(http, single("G110"), content_type="application/json")
    assert (reply.status, reply.root_name, reply.code) == (415, "Fault", "NMVS_TE_XM_01")


async def test_response_shape_and_qualified_attributes(http: httpx.AsyncClient) -> None:
    await post(http, single("G120"))
    reply = await post(http, single("G110"))
    assert (reply.state, reply.reasons) == ("INACTIVE", ["SUPPLIED"])
    code = reply.xml.find(f"{{{T}}}Body/{{{T}}}ReturnCode")
    assert code is not None and set(code.attrib) == {f"{{{T}}}code", f"{{{T}}}desc"}
    product_code = reply.xml.find(f"{{{T}}}Body/{{{T}}}Product/{{{T}}}ProductCode")
    assert product_code is not None and product_code.get(f"{{{T}}}scheme") == "GTIN"
    assert reply.xml.findtext(f"{{{T}}}Header/{{{T}}}Auth/{{{T}}}UserId") == "SITE0001"


async def test_undo_with_ref_client_trx_id(http: httpx.AsyncClient) -> None:
    await post(http, single("G120", header=header_xml(trx="DISPENSE-00000001")))
    wrong = await post(
        http, single("G121", ref="DISPENSE-00000002", header=header_xml(trx="UNDO-00000001"))
    )
    assert wrong.code == "NMVS_FE_TX_01"
    right = await post(
        http, single("G121", ref="DISPENSE-00000001", header=header_xml(trx="UNDO-00000002"))
    )
    assert (right.code, right.state) == ("NMVS_SUCCESS", "ACTIVE")


async def test_manual_entry_has_no_batch(http: httpx.AsyncClient) -> None:
    product = '<u:Product><u:ProductCode u:scheme="GTIN">05000456013482</u:ProductCode></u:Product>'
    reply = await post(http, single("G122", product=product))
    assert (reply.code, reply.reasons) == ("NMVS_SUCCESS", ["SUPPLIED"])


async def test_bad_credentials_are_au_01(http: httpx.AsyncClient) -> None:
    reply = await post(http, single("G120", header=header_xml(password="Not-The-Pass1")))
    assert (reply.root_name, reply.code, reply.state) == ("G120Response", "NMVS_FE_AU_01", None)


async def test_alert_paths_over_soap(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    assert (await post(http, single("G110", "NOSUCHSERIAL"))).code == "NMVS_NC_PC_02"
    await post(http, single("G120"))
    assert (
        await post(http, single("G120", header=header_xml("SITE0002")))
    ).code == "NMVS_NC_PCK_22"
    alerts = (await http.get("/_sim/alerts")).json()
    assert [(a["return_code"], a["hub_code"], a["user_id"], a["serial"]) for a in alerts] == [
        ("NMVS_NC_PC_02", "A3", "SITE0001", "NOSUCHSERIAL"),
        ("NMVS_NC_PCK_22", "A24", "SITE0002", "0000000014"),
    ]
    assert set(alerts[0]) == {
        "return_code",
        "hub_code",
        "client_trx_id",
        "user_id",
        "product_code",
        "serial",
        "batch",
        "at",
    }


# ---------------------------------------------------------------- schema and XML errors


async def test_unqualified_attributes_are_rejected(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    xml = single("G120").replace('u:sn="0000000014"', 'sn="0000000014"')
    reply = await post(http, xml)
    assert (reply.status, reply.root_name, reply.code) == (200, "G120Response", "NMVS_TE_XM_02")
    assert "attribute sn of Pack must be namespace-qualified" in (reply.desc or "")
    assert sim.core.pack("05000456013482", "0000000014").reason is None


async def test_unqualified_scheme_is_rejected(http: httpx.AsyncClient) -> None:
    reply = await post(http, single("G110").replace('u:scheme="GTIN"', 'scheme="GTIN"'))
    assert reply.code == "NMVS_TE_XM_02"


async def test_malformed_xml_is_xm_01(http: httpx.AsyncClient) -> None:
    reply = await post(http, single("G110")[:-20])
    assert (reply.status, reply.root_name, reply.code) == (400, "Fault", "NMVS_TE_XM_01")


async def test_binary_garbage_is_xm_01(http: httpx.AsyncClient) -> None:
    response = await http.post(
        SINGLE_PATH, content=bytes(range(256)) * 4, headers={"Content-Type": "text/xml"}
    )
    assert read_reply(response.status_code, response.content).code == "NMVS_TE_XM_01"


async def test_entity_expansion_is_refused(http: httpx.AsyncClient) -> None:
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE e:Envelope [<!ENTITY l0 "lol">{lol}]>' + single(
        "G110", serial="&l9;"
    ).removeprefix('<?xml version="1.0" encoding="UTF-8"?>')
    reply = await post(http, bomb)
    assert (reply.status, reply.code) == (400, "NMVS_TE_XM_01")


async def test_external_entities_are_not_read(http: httpx.AsyncClient) -> None:
    xxe = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY f SYSTEM "file:///etc/passwd">]>' + single(
        "G110", serial="&f;"
    ).removeprefix('<?xml version="1.0" encoding="UTF-8"?>')
    response = await http.post(
        SINGLE_PATH, content=xxe.encode(), headers={"Content-Type": "text/xml"}
    )
    assert b"root:" not in response.content
    assert read_reply(response.status_code, response.content).code == "NMVS_TE_XM_01"


async def test_wrong_wrapper_namespace_is_xm_02(http: httpx.AsyncClient) -> None:
    xml = envelope("G110Request", "", wrapper_ns="urn:wsdltypes.nmvs.eu:v4.0")
    reply = await post(http, xml)
    assert (reply.status, reply.root_name, reply.code) == (400, "Fault", "NMVS_TE_XM_02")


async def test_wrong_types_namespace_is_xm_02(http: httpx.AsyncClient) -> None:
    xml = single("G110").replace(
        'xmlns:u="urn:types.nmvs.eu:v5.0"', 'xmlns:u="urn:types.nmvs.eu:v4.0"'
    )
    reply = await post(http, xml)
    assert (reply.root_name, reply.code) == ("G110Response", "NMVS_TE_XM_02")


async def test_soap_11_envelope_is_xm_02(http: httpx.AsyncClient) -> None:
    xml = single("G110").replace(
        "http://www.w3.org/2003/05/soap-envelope", "http://schemas.xmlsoap.org/soap/envelope/"
    )
    assert (await post(http, xml)).code == "NMVS_TE_XM_02"


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (
            single(
                "G110",
                product='<u:Product><u:ProductCode u:scheme="GTIN">05000456013482</u:ProductCode></u:Product>',
            ),
            "Product is missing Batch",
        ),
        (single("G110", header=header_xml(trx="SHORT12")), "ClientTrxId 'SHORT12'"),
        (
            single("G110", header=header_xml(trx="0f3c9d2e-7a51-4b0c-8e11-d2a3b4c5d6e7")),
            "ClientTrxId",
        ),
        (single("G110", header=header_xml(version="1.2.0-rc1+g1a2b")), "UserSoftware@version"),
        (single("G110", header=header_xml(language="en")), "Language"),
        (single("G110", product=product_xml(product="50004560134")), "ProductCode"),
        (single("G110", product=product_xml(expiry="261300")), "ExpDate"),
        (single("G110", product=product_xml(batch="A" * 21)), "Id"),
        (single("G110", serial="bad serial"), "Pack@sn"),
        (
            single("G110", product=product_xml().replace('u:scheme="GTIN"', 'u:scheme="EAN"')),
            "ProductCode@scheme",
        ),
        (single("G110", ref="DISPENSE-00000001"), "unexpected element"),
        (single("G110", header=header_xml(password="short")), "(hidden)"),
    ],
)
async def test_schema_violations_are_xm_02(http: httpx.AsyncClient, xml: str, message: str) -> None:
    reply = await post(http, xml)
    assert (reply.status, reply.root_name, reply.code) == (200, "G110Response", "NMVS_TE_XM_02")
    assert message in (reply.desc or "")
    assert "short" not in (reply.desc or "")


async def test_schema_rejections_are_recorded(http: httpx.AsyncClient) -> None:
    await post(http, single("G120").replace('u:sn="0000000014"', 'sn="0000000014"'))
    (record,) = (await http.get("/_sim/transactions")).json()
    assert (record["use_case"], record["return_code"], record["user_id"]) == (
        "G120",
        "NMVS_TE_XM_02",
        "SITE0001",
    )


async def test_bulk_operation_on_the_single_service_is_refused(http: httpx.AsyncClient) -> None:
    reply = await post(http, envelope("G125Request", header_xml()))
    assert (reply.root_name, reply.code) == ("Fault", "NMVS_TE_XM_02")


# ---------------------------------------------------------------- ping and bulk


@pytest.mark.parametrize(
    ("path", "name"), [(SINGLE_PATH, "SinglePackPing"), (BULK_PATH, "BulkPing")]
)
async def test_ping(http: httpx.AsyncClient, path: str, name: str) -> None:
    response = await http.post(
        path,
        content=envelope(f"{name}Request", "<u:Input>hello</u:Input>").encode(),
        headers={"Content-Type": "text/xml"},
    )
    reply = read_reply(response.status_code, response.content)
    assert reply.root_name == f"{name}Response"
    assert reply.xml.findtext(f"{{{T}}}Output") == "hello"


async def test_bulk_submit_then_poll(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    packs = '<u:Packs><u:Pack u:sn="0000000014"/><u:Pack u:sn="0000000015"/></u:Packs>'
    ticket = await post(
        http,
        envelope("G125Request", header_xml() + f"<u:Body>{product_xml()}{packs}</u:Body>"),
        BULK_PATH,
    )
    assert (ticket.root_name, ticket.code) == ("G125Response", "NMVS_SUCCESS")
    poll = envelope(
        "G188Request",
        header_xml() + f"<u:Body><u:RefNMVSTrxId>{ticket.nmvs_trx_id}</u:RefNMVSTrxId></u:Body>",
    )
    assert (await post(http, poll, BULK_PATH)).code == "NMVS_FE_TX_02"
    assert (await http.post("/_sim/clock", json={"advance_seconds": 5})).status_code == 200
    result = await post(http, poll, BULK_PATH)
    assert (result.root_name, result.code) == ("G188Response", "NMVS_SUCCESS")
    packs_out = result.xml.findall(f"{{{T}}}Body/{{{T}}}Packs/{{{T}}}Pack")
    assert [(p.get(f"{{{T}}}sn"), p.get(f"{{{T}}}state")) for p in packs_out] == [
        ("0000000014", "INACTIVE"),
        ("0000000015", "INACTIVE"),
    ]
    assert packs_out[0].find(f"{{{T}}}ReturnCode").get(f"{{{T}}}code") == "NMVS_SUCCESS"


async def test_duplicate_serials_in_bulk_are_xm_02(http: httpx.AsyncClient) -> None:
    packs = '<u:Packs><u:Pack u:sn="A1"/><u:Pack u:sn="A1"/></u:Packs>'
    reply = await post(
        http,
        envelope("G125Request", header_xml() + f"<u:Body>{product_xml()}{packs}</u:Body>"),
        BULK_PATH,
    )
    assert reply.code == "NMVS_TE_XM_02"


async def test_notifications_are_header_elements_with_qualified_attributes(
    http: httpx.AsyncClient,
) -> None:
    reply = await post(http, single("G110", header=header_xml("EXPIRING")))
    (notification,) = reply.xml.findall(f"{{{T}}}Header/{{{T}}}Notification")
    assert dict(notification.attrib) == {
        f"{{{T}}}notificationCode": "NMVS_NOTIFY_AU_02",
        f"{{{T}}}notificationDesc": "Your password expires in 5 days.",
    }
    assert reply.code == "NMVS_SUCCESS"


async def test_a_client_template_with_comments_and_sub_user_is_accepted(
    http: httpx.AsyncClient,
) -> None:
    """Shaped like the open-source v5 connectors' templates: indentation, SOAP Header, XML
    comments where optional elements were left out, a SubUserId."""
    xml = (
        single("G110")
        .replace("</u:Password>", "</u:Password><u:SubUserId>till 2</u:SubUserId>")
        .replace("<u:Auth>", "\n  <u:Auth>\n    <!--Optional: <u:SubUserId>?</u:SubUserId>-->\n")
        .replace("</u:ProductCode>", "</u:ProductCode>\n  <!--Optional <u:NHRN>?</u:NHRN>-->\n")
        .replace("<e:Body>", "<e:Header/>\n<e:Body>\n")
    )
    reply = await post(http, xml)
    assert (reply.code, reply.state) == ("NMVS_SUCCESS", "ACTIVE")
    assert reply.xml.findtext(f"{{{T}}}Header/{{{T}}}Auth/{{{T}}}SubUserId") == "till 2"


def mixed_item(kind: str, req_type: str, serial: str, trx: str, *, batch: bool = True) -> str:
    product = (
        product_xml()
        if batch
        else (
            '<u:Product><u:ProductCode u:scheme="GTIN">05000456013482</u:ProductCode></u:Product>'
        )
    )
    return (
        f'<u:TrxItem><u:{kind} u:reqType="{req_type}">{product}<u:Pack u:sn="{serial}"/>'
        f"<u:Transaction><u:ClientTrxId>{trx}</u:ClientTrxId><u:Language>eng</u:Language>"
        f"</u:Transaction></u:{kind}></u:TrxItem>"
    )


async def test_mixed_bulk_submit_and_result(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    items = (
        mixed_item("Item", "G120", "0000000014", "ITEM-0000001")
        + '\n  <!--  <u:Pack u:sn="?"/> -->\n'
        + mixed_item("Item", "G110", "0000000015", "ITEM-0000002")
        + mixed_item("ItemMan", "G122", "S4", "ITEM-0000003", batch=False)
    )
    body = header_xml() + f"<u:Body><u:TrxList>{items}</u:TrxList></u:Body>"
    ticket = await post(http, envelope("G195Request", body), MIXED_BULK_PATH)
    assert (ticket.root_name, ticket.code) == ("G195Response", "NMVS_SUCCESS")
    poll = envelope(
        "G196Request",
        header_xml() + f"<u:Body><u:RefNMVSTrxId>{ticket.nmvs_trx_id}</u:RefNMVSTrxId></u:Body>",
    )
    assert (await post(http, poll, MIXED_BULK_PATH)).code == "NMVS_FE_TX_02"
    await http.post("/_sim/clock", json={"advance_seconds": 5})
    result = await post(http, poll, MIXED_BULK_PATH)
    assert (result.root_name, result.code) == ("G196Response", "NMVS_SUCCESS")
    rows = [
        (
            item.get(f"{{{T}}}reqType"),
            item.findtext(f"{{{T}}}Transaction/{{{T}}}ClientTrxId"),
            item.find(f"{{{T}}}Pack").get(f"{{{T}}}state"),
            item.find(f"{{{T}}}Pack/{{{T}}}ReturnCode").get(f"{{{T}}}code"),
        )
        for item in result.xml.findall(f"{{{T}}}Body/{{{T}}}TrxList/{{{T}}}TrxItem")
    ]
    assert rows == [
        ("G120", "ITEM-0000001", "INACTIVE", "NMVS_SUCCESS"),
        ("G110", "ITEM-0000002", "ACTIVE", "NMVS_SUCCESS"),
        ("G122", "ITEM-0000003", "INACTIVE", "NMVS_SUCCESS"),
    ]


@pytest.mark.parametrize(
    "item",
    [
        mixed_item("Item", "G121", "0000000014", "ITEM-0000001"),  # undo needs ItemUndo
        mixed_item("ItemMan", "G120", "0000000014", "ITEM-0000001", batch=False),
        mixed_item("Item", "G120", "0000000014", "SHORT"),
    ],
)
async def test_mixed_bulk_schema_errors(http: httpx.AsyncClient, item: str) -> None:
    body = header_xml() + f"<u:Body><u:TrxList>{item}</u:TrxList></u:Body>"
    reply = await post(http, envelope("G195Request", body), MIXED_BULK_PATH)
    assert (reply.root_name, reply.code) == ("G195Response", "NMVS_TE_XM_02")
