"""The backend contract: what every NMVS backend must do, run against each of them.

- ``arvato-https``: the Arvato client against the simulator over HTTPS with client certificates;
- ``solidsoft-https``: the Solidsoft REST client against the simulator's REST face over HTTPS
  with client certificates (the same market; its accounts' user ids are the client ids);
- ``in-memory``: :class:`gateway.simulator.inmemory.MarketBackend` over the same pure market.

Every case is stated in the gateway's own terms — operations, answer classes, alert flags, pack
states, the error types that say whether a request may have reached the NMVS — never in a
protocol's codes. A backend joins the list by adding one fixture parameter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from itertools import count
from typing import Any

import pytest

from gateway.codes.pack import PackIdentifier
from gateway.nmvs.arvato import ArvatoClient
from gateway.nmvs.backend import (
    NmvsAmbiguousError,
    NmvsBackend,
    NmvsPermanentError,
    NmvsRateLimitedError,
)
from gateway.nmvs.secret import Secret
from gateway.nmvs.solidsoft import SolidsoftClient, SolidsoftConfig
from gateway.nmvs.tls import ClientTls
from gateway.simulator.faults import FaultInjector, parse_faults
from gateway.simulator.inmemory import MarketBackend
from gateway.simulator.market import Market, MarketRules
from gateway.simulator.server import running_simulator
from gateway.vocabulary import AnswerClass, Operation
from tests.nmvs.arvato.test_client_simulator import (
    FUTURE,
    OTHER_PASSWORD,
    PASSWORD,
    client_config,
    market,
    pack,
    server_context,
)
from tests.nmvs.conftest import Pki

V, D, U = Operation.VERIFY, Operation.DISPENSE, Operation.UNDO_DISPENSE
_ids = count(1)


def trx() -> str:
    return f"{next(_ids):032x}"


@dataclass
class Side:
    """One backend under test, its market, and a way to build the same backend as someone else."""

    backend: NmvsBackend
    core: Market
    faults: FaultInjector
    as_user: Callable[[str, str], Any]  # (user_id, password) → async context of a backend

    def fault(self, plan: dict[str, Any]) -> None:
        self.faults.configure(parse_faults(plan))


@pytest.fixture(params=["arvato-https", "solidsoft-https", "in-memory"])
async def side(request: pytest.FixtureRequest, pki: Pki) -> AsyncIterator[Side]:
    # the French PCK_23 counter off: a repeated decommission is the alert it is elsewhere
    core = Market(market(), rules=MarketRules(own_repeat_info_limit=None))
    if request.param == "in-memory":
        faults = FaultInjector()

        def memory_as(user: str, password: str) -> Any:
            return _closing(
                MarketBackend(
                    core, client_login_id="PHARMA01", user_id=user, password=password, faults=faults
                )
            )

        async with memory_as("SITE0001", PASSWORD) as backend:
            yield Side(backend, core, faults, memory_as)
        return
    if request.param == "solidsoft-https":
        async with running_simulator(
            core, tls=server_context(pki), protocol="solidsoft-rest"
        ) as sim:

            def solidsoft_as(user: str, password: str) -> Any:
                tls = ClientTls(
                    cert_file=pki.client_cert, key_file=pki.client_key, ca_file=pki.ca_file
                )
                config = SolidsoftConfig(
                    sim.api_url, sim.token_url, user, Secret(password), tls=tls, read_timeout=3.0
                )
                return SolidsoftClient(config, sleep=_no_wait)

            async with solidsoft_as("SITE0001", PASSWORD) as backend:
                yield Side(backend, core, sim.faults, solidsoft_as)
        return
    async with running_simulator(core, tls=server_context(pki)) as sim:

        def arvato_as(user: str, password: str) -> Any:
            return ArvatoClient(
                client_config(pki, sim.single_url, user_id=user, password=Secret(password))
            )

        async with arvato_as("SITE0001", PASSWORD) as backend:
            yield Side(backend, core, sim.faults, arvato_as)


async def _no_wait(_seconds: float) -> None:
    """A retry's wait, skipped: the cases count what was sent, not how long it took."""


class _closing:
    def __init__(self, backend: MarketBackend) -> None:
        self.backend = backend

    async def __aenter__(self) -> MarketBackend:
        return self.backend

    async def __aexit__(self, *_exc: object) -> None:
        await self.backend.aclose()


def state_of(side: Side, p: PackIdentifier) -> str | None:
    found = side.core.pack(p.product_code, p.serial)
    return None if found is None else found.reason


async def test_verify_dispense_and_undo_succeed_and_report_the_pack_state(side: Side) -> None:
    p = pack("SN001")
    verified = await side.backend.execute(V, p, client_trx_id=trx())
    assert (verified.answer_class, verified.alert, verified.state) == (
        AnswerClass.SUCCESS,
        False,
        "ACTIVE",
    )
    dispensed = await side.backend.execute(D, p, client_trx_id=(sent := trx()))
    assert (dispensed.answer_class, dispensed.state, dispensed.reasons) == (
        AnswerClass.SUCCESS,
        "INACTIVE",
        ("SUPPLIED",),
    )
    undone = await side.backend.execute(U, p, client_trx_id=trx(), ref_client_trx_id=sent)
    assert (undone.answer_class, undone.state, undone.reasons) == (
        AnswerClass.SUCCESS,
        "ACTIVE",
        (),
    )


async def test_a_second_dispense_is_a_wrong_state_alert(side: Side) -> None:
    p = pack("SN002")
    await side.backend.execute(D, p, client_trx_id=trx())
    again = await side.backend.execute(D, p, client_trx_id=trx())
    assert (again.answer_class, again.alert, again.hub_code) == (
        AnswerClass.WRONG_STATE,
        True,
        "A24",
    )
    assert len(side.core.state.alerts) == 1


@pytest.mark.parametrize(
    ("changed", "answer_class", "hub"),
    [
        ({"serial": "NOPE1"}, AnswerClass.UNKNOWN_PACK, "A3"),
        ({"batch": "NOPE"}, AnswerClass.UNKNOWN_PACK, "A68"),  # the serial is in another batch
        ({"expiry": "991231"}, AnswerClass.EXPIRY_MISMATCH, "A52"),
    ],
)
async def test_a_pack_not_as_on_the_box_is_an_alert_of_its_class(
    side: Side, changed: dict[str, str], answer_class: AnswerClass, hub: str
) -> None:
    fields = {"serial": "SN003", "batch": "B1", "expiry": FUTURE} | changed
    answer = await side.backend.execute(V, pack(**fields), client_trx_id=trx())
    assert (answer.answer_class, answer.alert, answer.hub_code) == (answer_class, True, hub)


async def test_undo_rules_are_not_allowed_answers(side: Side) -> None:
    late, other = pack("SN004"), pack("SN005")
    sent = trx()
    await side.backend.execute(D, late, client_trx_id=sent)
    await side.backend.execute(D, other, client_trx_id=(other_sent := trx()))
    async with side.as_user("SITE0002", OTHER_PASSWORD) as colleague:
        foreign = await colleague.execute(
            U, other, client_trx_id=trx(), ref_client_trx_id=other_sent
        )
    assert (foreign.answer_class, foreign.alert) == (AnswerClass.NOT_ALLOWED, True)
    side.core.advance(11 * 86_400)
    expired = await side.backend.execute(U, late, client_trx_id=trx(), ref_client_trx_id=sent)
    assert (expired.answer_class, expired.alert) == (AnswerClass.NOT_ALLOWED, True)


async def test_a_rate_limit_is_not_sent_and_says_how_long_to_wait(side: Side) -> None:
    p = pack("SN006")
    # more refusals than any backend tries (one send, or a send and two retries)
    side.fault({"next": {"count": 3, "fault": "rate_limit"}})
    with pytest.raises(NmvsRateLimitedError) as caught:
        await side.backend.execute(D, p, client_trx_id=trx())
    assert caught.value.retry_after == 2.0
    assert state_of(side, p) is None  # not processed


@pytest.mark.parametrize(
    ("fault", "applied"),
    [("reset_after", True), ("reset_before", False), ("timeout_code", True), ("http_500", False)],
)
async def test_a_lost_answer_is_one_that_may_have_been_processed(
    side: Side, fault: str, applied: bool
) -> None:
    p = pack(f"SN01{['reset_after', 'reset_before', 'timeout_code', 'http_500'].index(fault)}")
    side.fault({"next": {"count": 1, "fault": fault}})
    with pytest.raises(NmvsAmbiguousError):
        await side.backend.execute(D, p, client_trx_id=trx())
    assert (state_of(side, p) == "SUPPLIED") is applied


async def test_wrong_credentials_need_an_operator_and_stop_further_logins(side: Side) -> None:
    """Each further try with the same wrong password would bring the account closer to a
    lockout: after the first refusal nothing more is sent."""
    async with side.as_user("SITE0001", "Wrong-Password-9") as intruder:
        for _ in range(3):
            with pytest.raises(NmvsPermanentError):
                await intruder.execute(V, pack("SN020"), client_trx_id=trx())
    account = side.core.state.accounts[("PHARMA01", "SITE0001")]
    assert account.failed_logins == 1


async def test_a_bulk_is_pending_then_each_pack_is_answered_as_a_single_request(side: Side) -> None:
    packs = [pack(f"SN03{i}") for i in range(3)]
    ticket = await side.backend.submit_bulk(D, packs, client_trx_id=trx())
    pending = await side.backend.bulk_result(ticket, client_trx_id=trx())
    assert not pending.ready and pending.packs == ()
    side.core.advance(5)
    done = await side.backend.bulk_result(ticket, client_trx_id=trx())
    assert done.ready
    assert sorted(
        (p.serial, p.result.answer_class, p.result.state, p.send_alone) for p in done.packs
    ) == [(p.serial, AnswerClass.SUCCESS, "INACTIVE", False) for p in packs]


async def test_ping_answers_with_the_server_time(side: Side) -> None:
    ping = await side.backend.ping()
    assert ping.server_time is not None
