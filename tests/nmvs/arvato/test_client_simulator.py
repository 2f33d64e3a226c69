"""ArvatoClient against the real simulator over mutual TLS: every operation, every return-code
path the simulator produces, every injected fault and the TLS failures.

How each simulator fault is classified (what the client can know, not what the server did):

* ``reset_before`` — the server read the body, then reset: ambiguous. From the client's side
  the body was sent and no answer came; it cannot know the server did not process it.
* ``reset_after`` — processed, then reset: ambiguous (the verify shows the state changed).
* ``http_500`` — a SOAP Fault carrying ``NMVS_ERROR``: ambiguous (catalogue).
* ``timeout_code`` — processed, answered ``NMVS_TI_TO_01``: ambiguous, with the return code.
* ``rate_limit`` — HTTP 429 + ``NMVS_FI_SE_CLI_01`` + Retry-After: rate limited (not sent).
* ``latency`` beyond the read timeout — ambiguous (ReadTimeout after the body was sent).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import structlog

from gateway.codes.pack import PackIdentifier
from gateway.nmvs.arvato import ArvatoClient, ArvatoConfig, Secret
from gateway.nmvs.arvato.client import as_backend
from gateway.nmvs.arvato.soap import USE_CASE
from gateway.nmvs.backend import (
    NmvsAmbiguousError,
    NmvsError,
    NmvsInvalidRequestError,
    NmvsNotSentError,
    NmvsPermanentError,
    NmvsRateLimitedError,
    NmvsResult,
    Notification,
)
from gateway.simulator.faults import parse_faults
from gateway.simulator.market import (
    BatchSpec,
    Market,
    MarketData,
    MarketRules,
    ProductSpec,
    UserSpec,
)
from gateway.simulator.server import RunningSimulator, running_simulator
from gateway.vocabulary import Operation
from tests.nmvs.conftest import KEY_PASSPHRASE, Pki

PASSWORD = "Pharma-Secret-1!"
OTHER_PASSWORD = "Other-Secret-2!"
GTIN = "05000456013482"
IMT_GTIN = "05000456013499"
RECALLED_GTIN = "05000456013505"
WITHDRAWN_GTIN = "05000456013512"
PPN = "111234567842"
FUTURE = (date.today() + timedelta(days=400)).strftime("%y%m%d")
PAST = (date.today() - timedelta(days=40)).strftime("%y%m%d")
SERIALS = tuple(f"SN{i:03d}" for i in range(40))


def market() -> MarketData:
    return MarketData(
        users=(
            UserSpec("PHARMA01", "SITE0001", PASSWORD),
            UserSpec("PHARMA01", "SITE0002", OTHER_PASSWORD),
            UserSpec("PHARMA01", "SITE0003", PASSWORD, password_expires_in_days=5),
            UserSpec("PHARMA01", "SITE0004", PASSWORD, password_expired=True),
            UserSpec("PHARMA01", "SITE0005", PASSWORD, terms_to_accept_in_days=7),
            UserSpec("PHARMA01", "SITE0006", PASSWORD, terms_blocked=True),
        ),
        products=(
            ProductSpec(
                "GTIN",
                GTIN,
                (BatchSpec("B1", FUTURE, SERIALS), BatchSpec("OLD1", PAST, ("X1",))),
            ),
            ProductSpec("GTIN", IMT_GTIN, (BatchSpec("I1", FUTURE, ("M1",)),), intermarket=True),
            ProductSpec("GTIN", RECALLED_GTIN, (BatchSpec("R1", FUTURE, ("R1",), recalled=True),)),
            ProductSpec(
                "GTIN", WITHDRAWN_GTIN, (BatchSpec("W1", FUTURE, ("W1",)),), withdrawn=True
            ),
            ProductSpec("PPN", PPN, (BatchSpec("P1", FUTURE, ("Pa/1",)),)),
        ),
    )


def pack(
    serial: str = "SN000", batch: str = "B1", expiry: str = FUTURE, code: str = GTIN
) -> PackIdentifier:
    return PackIdentifier("GTIN", code, batch, expiry, serial)


_counter = iter(range(10**9))


def trx() -> str:
    return f"{next(_counter):032x}"


def server_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pki.server.configure_cert(context)
    context.load_verify_locations(cafile=str(pki.ca_file))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_config(pki: Pki, url: str, **changes: Any) -> ArvatoConfig:
    config = ArvatoConfig(
        endpoint=url,
        client_login_id="PHARMA01",
        user_id="SITE0001",
        password=Secret(PASSWORD),
        software_supplier="Test LGO",
        cert_file=pki.client_cert,
        key_file=pki.client_key,
        ca_file=pki.ca_file,
        read_timeout=3.0,
    )
    return replace(config, **changes)


@pytest.fixture
async def sim(pki: Pki) -> AsyncIterator[RunningSimulator]:
    async with running_simulator(market(), tls=server_context(pki)) as running:
        yield running


@pytest.fixture
async def client(pki: Pki, sim: RunningSimulator) -> AsyncIterator[ArvatoClient]:
    async with ArvatoClient(client_config(pki, sim.single_url)) as arvato:
        yield arvato


@pytest.fixture
async def admin(pki: Pki, sim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    async with httpx.AsyncClient(base_url=sim.url, verify=context) as http:
        yield http


async def fault(admin: httpx.AsyncClient, plan: dict[str, Any]) -> None:
    response = await admin.post("/_sim/faults", json=plan)
    assert response.status_code == 200, response.text


async def sim_pack(admin: httpx.AsyncClient, serial: str, code: str = GTIN) -> dict[str, Any]:
    response = await admin.get(f"/_sim/packs/{code}/{quote(serial, safe='/')}")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def transactions(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = (await admin.get("/_sim/transactions")).json()
    return result


def assert_answered(result: NmvsResult, client_trx_id: str) -> None:
    assert result.client_trx_id == client_trx_id
    assert result.nmvs_trx_id is not None and len(result.nmvs_trx_id) == 32
    assert result.server_time is not None and result.server_time.utcoffset() == timedelta(0)


# --- every operation -------------------------------------------------------------------------

SET_OPERATIONS = [op for op in Operation if op.changes_state and not op.is_undo]
UNDO_OF_SET = {
    Operation.DISPENSE: Operation.UNDO_DISPENSE,
    Operation.DESTROY: Operation.UNDO_DESTROY,
    Operation.EXPORT: Operation.UNDO_EXPORT,
    Operation.SAMPLE: Operation.UNDO_SAMPLE,
    Operation.FREE_SAMPLE: Operation.UNDO_FREE_SAMPLE,
    Operation.LOCK: Operation.UNLOCK,
}


@pytest.mark.parametrize("operation", SET_OPERATIONS)
async def test_set_verify_and_undo(
    client: ArvatoClient, admin: httpx.AsyncClient, operation: Operation
) -> None:
    the_pack = pack()
    backend = as_backend(client)  # through the engine's interface
    verify_trx = trx()
    before = await backend.execute(Operation.VERIFY, the_pack, client_trx_id=verify_trx)
    assert_answered(before, verify_trx)
    assert (before.return_code, before.state, before.reasons) == ("NMVS_SUCCESS", "ACTIVE", ())

    set_trx = trx()
    done = await backend.execute(operation, the_pack, client_trx_id=set_trx)
    assert_answered(done, set_trx)
    assert (done.return_code, done.alert, done.state) == ("NMVS_SUCCESS", False, "INACTIVE")
    assert done.reasons == (operation.reason,)

    after = await client.execute(Operation.VERIFY, the_pack, client_trx_id=trx())
    assert (after.state, after.reasons) == ("INACTIVE", (operation.reason,))

    if operation in UNDO_OF_SET:
        undo_trx = trx()
        undone = await client.execute(
            UNDO_OF_SET[operation], the_pack, client_trx_id=undo_trx, ref_client_trx_id=set_trx
        )
        assert_answered(undone, undo_trx)
        assert (undone.return_code, undone.state, undone.reasons) == ("NMVS_SUCCESS", "ACTIVE", ())
    recorded = [(t["use_case"], t["client_trx_id"]) for t in await transactions(admin)]
    assert recorded[1] == (USE_CASE[operation], set_trx)
    assert (await admin.get("/_sim/alerts")).json() == []


async def test_manual_entry_dispense_and_stolen(client: ArvatoClient) -> None:
    dispensed = await client.execute_manual(
        Operation.DISPENSE, "GTIN", GTIN, "SN001", client_trx_id=trx()
    )
    assert (dispensed.return_code, dispensed.reasons) == ("NMVS_SUCCESS", ("SUPPLIED",))
    stolen = await client.execute_manual(Operation.STOLEN, "PPN", PPN, "Pa/1", client_trx_id=trx())
    assert (stolen.return_code, stolen.reasons) == ("NMVS_SUCCESS", ("STOLEN",))
    with pytest.raises(
        NmvsInvalidRequestError, match="manual entry exists for dispense and stolen"
    ):
        await client.execute_manual(Operation.DESTROY, "GTIN", GTIN, "SN002", client_trx_id=trx())


async def test_ping(client: ArvatoClient) -> None:
    result = await client.ping()
    assert result.output == "nmvs-gateway ping"
    assert result.latency_ms > 0
    assert result.server_time is not None  # from the HTTP Date header, for clock checks
    assert abs(result.server_time - datetime.now(UTC)) < timedelta(minutes=1)


async def test_bulk_dispense_is_polled_until_ready(
    client: ArvatoClient, admin: httpx.AsyncClient
) -> None:
    packs = [pack(serial) for serial in ("SN010", "SN011", "SN012")]
    ticket = await client.submit_bulk(Operation.DISPENSE, packs, client_trx_id=trx())
    assert ticket.return_code == "NMVS_SUCCESS"
    assert len(ticket.nmvs_trx_id) == 32
    pending = await client.bulk_result(ticket, client_trx_id=trx())
    assert (pending.ready, pending.return_code, pending.packs) == (False, "NMVS_FE_TX_02", ())
    await admin.post("/_sim/clock", json={"advance_seconds": 5})
    done = await client.bulk_result(ticket, client_trx_id=trx())
    assert done.ready
    assert done.server_time is not None and done.notifications == ()
    assert [
        (p.serial, p.result.state, p.result.reasons, p.result.return_code) for p in done.packs
    ] == [(s, "INACTIVE", ("SUPPLIED",), "NMVS_SUCCESS") for s in ("SN010", "SN011", "SN012")]
    assert (await sim_pack(admin, "SN011"))["state"] == "INACTIVE"


async def test_bulk_with_failures_reports_each_pack(
    client: ArvatoClient, admin: httpx.AsyncClient
) -> None:
    await client.execute(Operation.DISPENSE, pack("SN013"), client_trx_id=trx())
    ticket = await client.submit_bulk(
        Operation.DISPENSE, [pack("SN013"), pack("SN014")], client_trx_id=trx()
    )
    await admin.post("/_sim/clock", json={"advance_seconds": 5})
    partial = await client.bulk_result(ticket, client_trx_id=trx())
    assert partial.return_code == "NMVS_NC_PCK_24"
    assert [(p.serial, p.result.return_code) for p in partial.packs] == [
        ("SN013", "NMVS_NC_PCK_23"),
        ("SN014", "NMVS_SUCCESS"),
    ]
    none = await client.submit_bulk(Operation.DISPENSE, [pack("NOPE1")], client_trx_id=trx())
    await admin.post("/_sim/clock", json={"advance_seconds": 5})
    failed = await client.bulk_result(none, client_trx_id=trx())
    assert (failed.ready, failed.return_code) == (True, "NMVS_NC_PCK_17")


async def test_bulk_verify(client: ArvatoClient, admin: httpx.AsyncClient) -> None:
    ticket = await client.submit_bulk(Operation.VERIFY, [pack("SN020")], client_trx_id=trx())
    await admin.post("/_sim/clock", json={"advance_seconds": 5})
    result = await client.bulk_result(ticket, client_trx_id=trx())
    assert [(p.serial, p.result.state) for p in result.packs] == [("SN020", "ACTIVE")]
    assert (await transactions(admin))[0]["use_case"] == "G115"


# --- return-code paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_pack", "code", "hub"),
    [
        (pack("NOPE", batch="B1"), "NMVS_NC_PC_02", "A3"),
        (pack("NOPE", batch="B9"), "NMVS_FE_LOT_03", "A2"),
        (pack("SN000", batch="OLD1"), "NMVS_FE_LOT_13", "A68"),
        (pack("SN000", expiry="991231"), "NMVS_FE_LOT_12", "A52"),
    ],
)
async def test_data_mismatch_alerts(
    client: ArvatoClient, admin: httpx.AsyncClient, the_pack: PackIdentifier, code: str, hub: str
) -> None:
    client_trx_id = trx()
    result = await client.execute(Operation.VERIFY, the_pack, client_trx_id=client_trx_id)
    assert (result.return_code, result.alert, result.hub_code) == (code, True, hub)
    alerts = (await admin.get("/_sim/alerts")).json()
    assert [(a["return_code"], a["hub_code"], a["client_trx_id"]) for a in alerts] == [
        (code, hub, client_trx_id)
    ]


async def test_unknown_product_is_refused_without_alert(client: ArvatoClient) -> None:
    result = await client.execute(
        Operation.VERIFY, pack(code="05000456099990"), client_trx_id=trx()
    )
    assert (result.return_code, result.alert, result.hub_code) == ("NMVS_NC_PC_01", False, None)


@pytest.mark.parametrize(
    ("the_pack", "code", "reason"),
    [
        (pack("X1", batch="OLD1", expiry=PAST), "NMVS_NC_PCK_02", "EXPIRED"),
        (pack("R1", batch="R1", code=RECALLED_GTIN), "NMVS_FE_LOT_01", "RECALLED"),
        (pack("W1", batch="W1", code=WITHDRAWN_GTIN), "NMVS_FE_LOT_08", "WITHDRAWN"),
    ],
)
async def test_system_inactive_packs_are_refused(
    client: ArvatoClient, the_pack: PackIdentifier, code: str, reason: str
) -> None:
    verified = await client.execute(Operation.VERIFY, the_pack, client_trx_id=trx())
    assert (verified.return_code, verified.state, verified.reasons) == (
        "NMVS_SUCCESS",
        "INACTIVE",
        (reason,),
    )
    refused = await client.execute(Operation.DISPENSE, the_pack, client_trx_id=trx())
    assert (refused.return_code, refused.alert) == (code, False)


async def other_user(pki: Pki, sim: RunningSimulator) -> ArvatoClient:
    return ArvatoClient(
        client_config(pki, sim.single_url, user_id="SITE0002", password=Secret(OTHER_PASSWORD))
    )


async def test_re_dispense_by_another_user_is_pck_22(
    pki: Pki, sim: RunningSimulator, client: ArvatoClient
) -> None:
    await client.execute(Operation.DISPENSE, pack("SN030"), client_trx_id=trx())
    async with await other_user(pki, sim) as other:
        again = await other.execute(Operation.DISPENSE, pack("SN030"), client_trx_id=trx())
        assert (again.return_code, again.alert, again.hub_code) == ("NMVS_NC_PCK_22", True, "A24")
        undo = await other.execute(Operation.UNDO_DISPENSE, pack("SN030"), client_trx_id=trx())
        assert (undo.return_code, undo.alert) == ("NMVS_NC_PCK_21", True)
        assert undo.hub_code == "A5"


async def test_own_repeat_counter_pck_23_then_pck_19(client: ArvatoClient) -> None:
    await client.execute(Operation.DISPENSE, pack("SN031"), client_trx_id=trx())
    codes = [
        (await client.execute(Operation.DISPENSE, pack("SN031"), client_trx_id=trx())).return_code
        for _ in range(4)
    ]
    assert codes == ["NMVS_NC_PCK_23"] * 3 + ["NMVS_NC_PCK_19"]


async def test_other_reason_is_pck_27(client: ArvatoClient) -> None:
    await client.execute(Operation.DISPENSE, pack("SN032"), client_trx_id=trx())
    result = await client.execute(Operation.DESTROY, pack("SN032"), client_trx_id=trx())
    assert (result.return_code, result.alert, result.hub_code) == ("NMVS_NC_PCK_27", True, "A24")


async def test_intermarket_repeat_is_pck_19_with_the_flag(client: ArvatoClient) -> None:
    imt = pack("M1", batch="I1", code=IMT_GTIN)
    first = await client.execute(Operation.DISPENSE, imt, client_trx_id=trx())
    assert (first.return_code, first.intermarket) == ("NMVS_SUCCESS", True)
    again = await client.execute(Operation.DISPENSE, imt, client_trx_id=trx())
    assert (again.return_code, again.alert, again.hub_code) == ("NMVS_NC_PCK_19", True, "A7")


async def test_undo_rules(client: ArvatoClient, admin: httpx.AsyncClient) -> None:
    wrong_reason = await client.execute(Operation.DISPENSE, pack("SN033"), client_trx_id=trx())
    assert wrong_reason.success
    pck06 = await client.execute(Operation.UNDO_DESTROY, pack("SN033"), client_trx_id=trx())
    assert (pck06.return_code, pck06.alert, pck06.hub_code) == ("NMVS_NC_PCK_06", True, "A24")
    active = await client.execute(Operation.UNDO_DISPENSE, pack("SN034"), client_trx_id=trx())
    assert (active.return_code, active.alert) == ("NMVS_NC_PCK_29", False)
    mismatch = await client.execute(
        Operation.UNDO_DISPENSE, pack("SN033"), client_trx_id=trx(), ref_client_trx_id=trx()
    )
    assert (mismatch.return_code, mismatch.alert) == ("NMVS_FE_TX_01", False)
    await admin.post("/_sim/clock", json={"advance_seconds": 11 * 86400})
    late = await client.execute(Operation.UNDO_DISPENSE, pack("SN033"), client_trx_id=trx())
    assert (late.return_code, late.alert, late.hub_code) == ("NMVS_NC_PCK_20", True, "A4")


async def test_ref_client_trx_id_only_on_undo(client: ArvatoClient) -> None:
    with pytest.raises(NmvsInvalidRequestError, match="only for an undo"):
        await client.execute(
            Operation.DISPENSE, pack(), client_trx_id=trx(), ref_client_trx_id=trx()
        )


async def test_password_expiry_notification_is_surfaced(pki: Pki, sim: RunningSimulator) -> None:
    async with ArvatoClient(client_config(pki, sim.single_url, user_id="SITE0003")) as arvato:
        result = await arvato.execute(Operation.VERIFY, pack(), client_trx_id=trx())
    assert result.success
    assert result.notifications == (
        Notification("NMVS_NOTIFY_AU_02", "Your password expires in 5 days."),
    )


async def test_new_terms_notification_is_surfaced(pki: Pki, sim: RunningSimulator) -> None:
    async with ArvatoClient(client_config(pki, sim.single_url, user_id="SITE0005")) as arvato:
        result = await arvato.execute(Operation.DISPENSE, pack(), client_trx_id=trx())
    assert result.success
    assert [n.code for n in result.notifications] == ["NMVS_NOTIFY_PMS_01"]


@pytest.mark.parametrize(
    ("user_id", "code"), [("SITE0004", "NMVS_FE_AU_11"), ("SITE0006", "NMVS_FE_AU_23")]
)
async def test_expired_password_and_unaccepted_terms_are_permanent(
    pki: Pki, sim: RunningSimulator, user_id: str, code: str
) -> None:
    async with ArvatoClient(client_config(pki, sim.single_url, user_id=user_id)) as arvato:
        with pytest.raises(NmvsPermanentError) as caught:
            await arvato.execute(Operation.VERIFY, pack(), client_trx_id=trx())
        assert caught.value.return_code == code
        assert arvato.halted_by is None  # only bad credentials stop all sending


async def test_bad_password_stops_sending_until_reconfigured(
    pki: Pki, sim: RunningSimulator, admin: httpx.AsyncClient
) -> None:
    wrong = client_config(pki, sim.single_url, password=Secret("Wrong-Password-0"))
    async with ArvatoClient(wrong) as arvato:
        with pytest.raises(NmvsPermanentError) as first:
            await arvato.execute(Operation.DISPENSE, pack(), client_trx_id=trx())
        assert first.value.return_code == "NMVS_FE_AU_01"
        assert arvato.halted_by == "NMVS_FE_AU_01"
        sent = len(await transactions(admin))
        for _ in range(6):  # more than the lockout threshold: none of them may reach the NMVS
            with pytest.raises(NmvsPermanentError, match="sending stopped after NMVS_FE_AU_01"):
                await arvato.execute(Operation.VERIFY, pack(), client_trx_id=trx())
        assert len(await transactions(admin)) == sent
        assert (await arvato.ping()).output  # a ping carries no credentials: still allowed
        await arvato.reconfigure(client_config(pki, sim.single_url))
        assert arvato.halted_by is None
        result = await arvato.execute(Operation.VERIFY, pack(), client_trx_id=trx())
        assert result.success


async def test_locked_account_is_permanent(pki: Pki, sim: RunningSimulator) -> None:
    for _ in range(5):
        wrong = client_config(pki, sim.single_url, password=Secret("Wrong-Password-0"))
        async with ArvatoClient(wrong) as arvato:
            with pytest.raises(NmvsPermanentError):
                await arvato.execute(Operation.VERIFY, pack(), client_trx_id=trx())
    async with ArvatoClient(client_config(pki, sim.single_url)) as arvato:
        with pytest.raises(NmvsPermanentError) as caught:
            await arvato.execute(Operation.VERIFY, pack(), client_trx_id=trx())
    assert caught.value.return_code == "NMVS_FE_AU_05"


class MangledTransport(httpx.AsyncBaseTransport):
    """Forwards to the real server after replacing ``old`` by ``new`` in the request body, to
    make the simulator answer a schema or XML error (our builder cannot produce one)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, old: bytes, new: bytes) -> None:
        self._inner = inner
        self._old, self._new = old, new

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content.replace(self._old, self._new)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        mangled = httpx.Request(request.method, request.url, headers=headers, content=body)
        return await self._inner.handle_async_request(mangled)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        ((b"urn1:sn=", b"sn="), "NMVS_TE_XM_02"),  # the classic unqualified attribute
        ((b"</soap:Envelope>", b"</soap:Envel"), "NMVS_TE_XM_01"),  # not well-formed
    ],
)
async def test_schema_and_xml_errors_are_permanent(
    pki: Pki, sim: RunningSimulator, mangle: tuple[bytes, bytes], code: str
) -> None:
    config = client_config(pki, sim.single_url)
    inner = httpx.AsyncHTTPTransport(verify=config.ssl_context())
    async with ArvatoClient(config, transport=MangledTransport(inner, *mangle)) as arvato:
        with pytest.raises(NmvsPermanentError) as caught:
            await arvato.execute(Operation.DISPENSE, pack(), client_trx_id=trx())
    assert caught.value.return_code == code


async def test_twin_market_answers_pck_30_without_alert(pki: Pki) -> None:
    twin = Market(market(), rules=MarketRules(batch_inactive_set="twin"))
    async with (
        running_simulator(twin, tls=server_context(pki)) as running,
        ArvatoClient(client_config(pki, running.single_url)) as arvato,
    ):
        result = await arvato.execute(
            Operation.DISPENSE, pack("X1", batch="OLD1", expiry=PAST), client_trx_id=trx()
        )
    assert (result.return_code, result.alert, result.hub_code) == ("NMVS_NC_PCK_30", False, None)


# --- injected faults -------------------------------------------------------------------------


async def test_reset_before_processing_is_ambiguous_and_nothing_changed(
    client: ArvatoClient, admin: httpx.AsyncClient
) -> None:
    await fault(admin, {"next": {"count": 1, "fault": "reset_before"}})
    with pytest.raises(NmvsAmbiguousError, match="after the request was sent"):
        await client.execute(Operation.DISPENSE, pack("SN035"), client_trx_id=trx())
    assert (await sim_pack(admin, "SN035"))["state"] == "ACTIVE"


async def test_reset_after_processing_is_ambiguous_and_the_state_changed(
    client: ArvatoClient, admin: httpx.AsyncClient
) -> None:
    await fault(admin, {"next": {"count": 1, "fault": "reset_after"}})
    with pytest.raises(NmvsAmbiguousError):
        await client.execute(Operation.DISPENSE, pack("SN036"), client_trx_id=trx())
    reconcile = await client.execute(Operation.VERIFY, pack("SN036"), client_trx_id=trx())
    assert (reconcile.state, reconcile.reasons) == ("INACTIVE", ("SUPPLIED",))


async def test_http_500_is_ambiguous(client: ArvatoClient, admin: httpx.AsyncClient) -> None:
    await fault(admin, {"next": {"count": 1, "fault": "http_500"}})
    with pytest.raises(NmvsAmbiguousError) as caught:
        await client.execute(Operation.DISPENSE, pack("SN037"), client_trx_id=trx())
    assert caught.value.return_code == "NMVS_ERROR"


async def test_timeout_code_is_ambiguous(client: ArvatoClient, admin: httpx.AsyncClient) -> None:
    await fault(admin, {"next": {"count": 1, "fault": "timeout_code"}})
    with pytest.raises(NmvsAmbiguousError) as caught:
        await client.execute(Operation.DISPENSE, pack("SN038"), client_trx_id=trx())
    assert caught.value.return_code == "NMVS_TI_TO_01"
    assert (await sim_pack(admin, "SN038"))["state"] == "INACTIVE"


async def test_rate_limit_carries_retry_after(
    client: ArvatoClient, admin: httpx.AsyncClient
) -> None:
    await fault(admin, {"next": {"count": 1, "fault": "rate_limit"}})
    with pytest.raises(NmvsRateLimitedError) as caught:
        await client.execute(Operation.DISPENSE, pack("SN039"), client_trx_id=trx())
    assert isinstance(caught.value, NmvsNotSentError)
    assert caught.value.retry_after == 2.0
    assert caught.value.return_code == "NMVS_FI_SE_CLI_01"
    assert (await sim_pack(admin, "SN039"))["state"] == "ACTIVE"


async def test_latency_beyond_the_read_timeout_is_ambiguous(
    pki: Pki, sim: RunningSimulator, admin: httpx.AsyncClient
) -> None:
    await fault(admin, {"next": {"count": 2, "fault": "latency", "latency_ms": 800}})
    config = client_config(pki, sim.single_url, read_timeout=0.3)
    async with ArvatoClient(config) as arvato:
        with pytest.raises(NmvsAmbiguousError, match="ReadTimeout"):
            await arvato.execute(Operation.DISPENSE, pack("SN005"), client_trx_id=trx())
    async with ArvatoClient(client_config(pki, sim.single_url, read_timeout=5.0)) as patient:
        slow = await patient.execute(Operation.VERIFY, pack("SN006"), client_trx_id=trx())
    assert slow.success


async def test_pool_exhaustion_is_not_sent(
    pki: Pki, sim: RunningSimulator, admin: httpx.AsyncClient
) -> None:
    await fault(admin, {"next": {"count": 1, "fault": "latency", "latency_ms": 1200}})
    config = client_config(pki, sim.single_url, max_connections=1, pool_timeout=0.1)
    async with ArvatoClient(config) as arvato:
        slow = asyncio.create_task(
            arvato.execute(Operation.VERIFY, pack("SN007"), client_trx_id=trx())
        )
        for _ in range(1000):  # until the slow request, holding the only connection, is in
            if not sim.faults.describe()["next_remaining"]:  # the simulator (not a fixed sleep)
                break
            await asyncio.sleep(0.01)
        with pytest.raises(NmvsNotSentError, match="PoolTimeout"):
            await arvato.execute(Operation.DISPENSE, pack("SN008"), client_trx_id=trx())
        assert (await slow).success
    assert (await sim_pack(admin, "SN008"))["state"] == "ACTIVE"


# --- TLS and connection failures ---------------------------------------------------------------


def tls_transport(
    pki: Pki, cert: tuple[Any, Any] | None, max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
) -> httpx.AsyncHTTPTransport:
    """A client TLS stack like ArvatoConfig.ssl_context(), but free to present any certificate
    (or none): the config itself refuses to run without one."""
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.maximum_version = max_version
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return httpx.AsyncHTTPTransport(verify=context)


@pytest.mark.parametrize("who", ["none", "stranger", "expired"])
async def test_refused_client_certificates_are_permanent_and_not_sent(
    pki: Pki, sim: RunningSimulator, admin: httpx.AsyncClient, who: str
) -> None:
    cert = {
        "none": None,
        "stranger": (pki.stranger_cert, pki.stranger_key),
        "expired": (pki.expired_cert, pki.expired_key),
    }[who]
    config = client_config(pki, sim.single_url)
    async with ArvatoClient(config, transport=tls_transport(pki, cert)) as arvato:
        with pytest.raises(NmvsPermanentError, match="refused our certificate") as caught:
            await arvato.execute(Operation.DISPENSE, pack(), client_trx_id=trx())
    assert "not sent" in str(caught.value)
    assert await transactions(admin) == []


async def test_with_tls_1_3_a_refused_certificate_looks_like_a_connection_loss(
    pki: Pki, sim: RunningSimulator
) -> None:
    """Why tls_max_version defaults to 1.2: in TLS 1.3 the server checks our certificate after
    the request was written, and this server (like many) just hangs up."""
    config = client_config(pki, sim.single_url, tls_max_version="1.3")
    transport = tls_transport(
        pki, (pki.stranger_cert, pki.stranger_key), max_version=ssl.TLSVersion.TLSv1_3
    )
    async with ArvatoClient(config, transport=transport) as arvato:
        with pytest.raises(NmvsAmbiguousError):
            await arvato.execute(Operation.DISPENSE, pack(), client_trx_id=trx())


async def test_tls_1_3_works_with_a_good_certificate(pki: Pki, sim: RunningSimulator) -> None:
    async with ArvatoClient(client_config(pki, sim.single_url, tls_max_version="1.3")) as arvato:
        assert (await arvato.execute(Operation.VERIFY, pack(), client_trx_id=trx())).success


async def test_an_expired_client_certificate_is_refused_before_sending(
    pki: Pki, sim: RunningSimulator, admin: httpx.AsyncClient
) -> None:
    config = client_config(
        pki, sim.single_url, cert_file=pki.expired_cert, key_file=pki.expired_key
    )
    async with ArvatoClient(config) as arvato:
        assert arvato.certificate_expires_at is not None
        with pytest.raises(NmvsPermanentError, match="not sent, the client certificate expired on"):
            await arvato.execute(Operation.VERIFY, pack(), client_trx_id=trx())
        with pytest.raises(NmvsPermanentError, match="expired"):
            await arvato.ping()
    assert await transactions(admin) == []


async def test_a_certificate_not_yet_valid_is_refused_before_sending(
    pki: Pki, sim: RunningSimulator
) -> None:
    config = client_config(pki, sim.single_url)
    async with ArvatoClient(config, clock=lambda: datetime(1990, 1, 1, tzinfo=UTC)) as arvato:
        with pytest.raises(NmvsPermanentError, match="valid only from"):
            await arvato.execute(Operation.VERIFY, pack(), client_trx_id=trx())


async def test_server_with_an_unknown_ca_is_permanent(pki: Pki, sim: RunningSimulator) -> None:
    config = client_config(pki, sim.single_url, ca_file=pki.unknown_ca_file)
    async with ArvatoClient(config) as arvato:
        with pytest.raises(NmvsPermanentError, match="CERTIFICATE_VERIFY_FAILED"):
            await arvato.execute(Operation.VERIFY, pack(), client_trx_id=trx())


async def test_plain_http_server_at_an_https_endpoint_is_permanent(pki: Pki) -> None:
    async with running_simulator(market(), plain_http=True) as plain:
        https_url = plain.single_url.replace("http://", "https://")
        async with ArvatoClient(client_config(pki, https_url)) as arvato:
            with pytest.raises(NmvsPermanentError, match="WRONG_VERSION_NUMBER"):
                await arvato.execute(Operation.VERIFY, pack(), client_trx_id=trx())


async def test_plain_http_works_for_demos(pki: Pki) -> None:
    async with running_simulator(market(), plain_http=True) as plain:
        config = client_config(pki, plain.single_url, cert_file=None, key_file=None)
        async with ArvatoClient(config) as arvato:
            result = await arvato.execute(Operation.DISPENSE, pack(), client_trx_id=trx())
    assert result.success


async def test_connection_refused_is_not_sent(pki: Pki) -> None:
    async with running_simulator(market(), plain_http=True) as plain:
        url = plain.single_url
    async with ArvatoClient(client_config(pki, url.replace("http://", "https://"))) as arvato:
        with pytest.raises(NmvsNotSentError, match="ConnectError"):
            await arvato.execute(Operation.DISPENSE, pack(), client_trx_id=trx())


async def test_unknown_host_is_not_sent(pki: Pki) -> None:
    config = client_config(pki, "https://nmvs.invalid:8443/x", connect_timeout=2.0)
    async with ArvatoClient(config) as arvato:
        with pytest.raises(NmvsNotSentError):
            await arvato.execute(Operation.DISPENSE, pack(), client_trx_id=trx())


async def test_wrong_path_is_permanent(pki: Pki, sim: RunningSimulator) -> None:
    async with ArvatoClient(client_config(pki, sim.url + "/WS_SINGLE/Nothing")) as arvato:
        with pytest.raises(NmvsPermanentError, match="HTTP 404"):
            await arvato.execute(Operation.DISPENSE, pack(), client_trx_id=trx())


# --- secrets ---------------------------------------------------------------------------------


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


async def test_secrets_stay_out_of_errors_and_logs(pki: Pki, sim: RunningSimulator) -> None:
    wrong_password = "Wrong-Password-0"
    config = client_config(
        pki,
        sim.single_url,
        password=Secret(wrong_password),
        key_file=pki.client_key_encrypted,
        key_password=Secret(KEY_PASSPHRASE),
    )
    errors: list[NmvsError] = []
    with structlog.testing.capture_logs() as logs:
        async with ArvatoClient(config) as arvato:
            for _ in range(2):  # AU_01, then the halted refusal
                try:
                    await arvato.execute(Operation.DISPENSE, pack(), client_trx_id=trx())
                except NmvsError as error:
                    errors.append(error)
            await arvato.reconfigure(replace(config, read_timeout=0.2))
            await fault_directly(sim, {"next": {"count": 1, "fault": "latency", "latency_ms": 500}})
            try:
                await arvato.execute(Operation.DISPENSE, pack(), client_trx_id=trx())
            except NmvsError as error:
                errors.append(error)
            texts = [repr(arvato), repr(config), str(config)]
    assert [type(e) for e in errors] == [NmvsPermanentError, NmvsPermanentError, NmvsAmbiguousError]
    assert logs, "the failing calls were logged"
    for error in errors:
        texts += [str(error), repr(error), repr(error.__cause__), str(error.args)]
    texts.append(repr(logs))
    assert_no_secret("\n".join(texts), wrong_password, KEY_PASSPHRASE, PASSWORD)


async def fault_directly(sim: RunningSimulator, plan: dict[str, Any]) -> None:
    sim.faults.configure(parse_faults(plan))
