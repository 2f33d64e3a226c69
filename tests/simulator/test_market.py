"""Rule tests on the pure market core: every return-code path, with an injected clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.nmvs.arvato.returncodes import lookup
from gateway.simulator.market import (
    BulkRequest,
    Market,
    MarketRules,
    MixedBulkRequest,
    MixedItem,
    PackRequest,
    expiry_date,
)
from tests.simulator.markets import (
    BATCH,
    EXPIRY,
    GTIN,
    IMT_GTIN,
    MARKET,
    START,
    WITHDRAWN_GTIN,
    Clock,
    header,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def market(clock: Clock) -> Market:
    return Market(MARKET, time_source=clock)


def run(
    market: Market,
    use_case: str,
    serial: str = "0000000014",
    *,
    user: str = "SITE0001",
    trx: str = "TRX-00000001",
    product: str = GTIN,
    batch: str | None = BATCH,
    expiry: str | None = EXPIRY,
    ref: str | None = None,
    scheme: str = "GTIN",
):
    request = PackRequest(use_case, scheme, product, serial, batch, expiry, ref)
    return market.single(header(user, trx), request)


def test_verify_of_an_active_pack(market: Market) -> None:
    answer = run(market, "G110")
    assert (answer.return_code, answer.state, answer.reasons, answer.alert) == (
        "NMVS_SUCCESS",
        "ACTIVE",
        (),
        False,
    )
    assert len(answer.nmvs_trx_id) == 32 and answer.timestamp == START
    assert answer.description == lookup("NMVS_SUCCESS").en


def test_every_answer_has_a_fresh_nmvs_trx_id(market: Market) -> None:
    ids = {run(market, "G110").nmvs_trx_id for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize(
    ("use_case", "reason"),
    [
        ("G120", "SUPPLIED"),
        ("G130", "DESTROYED"),
        ("G140", "EXPORTED"),
        ("G150", "SAMPLE"),
        ("G160", "FREESAMPLE"),
        ("G170", "LOCKED"),
        ("G180", "STOLEN"),
    ],
)
def test_set_operations_make_the_pack_inactive_with_their_reason(
    market: Market, use_case: str, reason: str
) -> None:
    assert run(market, use_case).return_code == "NMVS_SUCCESS"
    answer = run(market, "G110")
    assert (answer.return_code, answer.state, answer.reasons) == (
        "NMVS_SUCCESS",
        "INACTIVE",
        (reason,),
    )
    assert market.state.alerts == []


@pytest.mark.parametrize(
    ("undo", "set_"),
    [
        ("G121", "G120"),
        ("G131", "G130"),
        ("G141", "G140"),
        ("G151", "G150"),
        ("G161", "G160"),
        ("G171", "G170"),
    ],
)
def test_each_undo_reverts_its_own_set(market: Market, undo: str, set_: str) -> None:
    run(market, set_)
    assert run(market, undo).return_code == "NMVS_SUCCESS"
    assert run(market, "G110").state == "ACTIVE"


# ----------------------------------------------------------- data checks (NMVS check order)


@pytest.mark.parametrize("use_case", ["G110", "G120", "G121"])
@pytest.mark.parametrize(
    ("kwargs", "code", "hub"),
    [
        ({"product": "05000456099981"}, "NMVS_NC_PC_01", None),
        ({"scheme": "PPN"}, "NMVS_NC_PC_01", None),
        ({"serial": "UNKNOWN1"}, "NMVS_NC_PC_02", "A3"),
        ({"serial": "UNKNOWN1", "batch": "NOBATCH"}, "NMVS_FE_LOT_03", "A2"),
        ({"batch": "EXP1", "expiry": "241100"}, "NMVS_FE_LOT_13", "A68"),
        ({"expiry": "261231"}, "NMVS_FE_LOT_12", "A52"),
        ({}, "NMVS_SUCCESS", None),
    ],
)
def test_data_checks_in_reference_order(
    market: Market, use_case: str, kwargs: dict[str, str], code: str, hub: str | None
) -> None:
    if use_case == "G121" and code == "NMVS_SUCCESS":
        run(market, "G120")
    answer = run(market, use_case, **kwargs)
    assert answer.return_code == code
    assert answer.hub_code == hub
    alerts = [(a.return_code, a.hub_code) for a in market.state.alerts]
    assert alerts == ([(code, hub)] if hub else [])


def test_serials_and_batches_are_case_sensitive(market: Market) -> None:
    assert run(market, "G110", "ABC-DEF/12", batch=BATCH).return_code == "NMVS_NC_PC_02"
    assert run(market, "G110", "abc-def/12").return_code == "NMVS_SUCCESS"
    assert run(market, "G110", "abc-def/12", batch="0000l").return_code == "NMVS_FE_LOT_13"


def test_expiry_must_match_as_the_exact_string(market: Market) -> None:
    # 261200 and 261231 name the same last day, but the NMVS compares the scanned string
    assert run(market, "G110", expiry="261231").return_code == "NMVS_FE_LOT_12"


def test_a_refused_data_check_leaves_the_pack_alone(market: Market) -> None:
    assert run(market, "G120", batch="EXP1", expiry="241100").return_code == "NMVS_FE_LOT_13"
    assert market.pack(GTIN, "0000000014").reason is None


# ---------------------------------------------------------------- repeated deactivation


def test_other_user_re_dispensing_gets_pck_22_with_alert(market: Market) -> None:
    run(market, "G120")
    answer = run(market, "G120", user="SITE0002")
    assert (answer.return_code, answer.alert, answer.hub_code) == ("NMVS_NC_PCK_22", True, "A24")
    assert answer.state == "INACTIVE" and answer.reasons == ("SUPPLIED",)


def test_french_counter_pck_23_three_times_then_pck_19(market: Market) -> None:
    run(market, "G120")
    codes = [run(market, "G120").return_code for _ in range(5)]
    assert codes == ["NMVS_NC_PCK_23"] * 3 + ["NMVS_NC_PCK_19"] * 2
    assert [(a.return_code, a.hub_code) for a in market.state.alerts] == [
        ("NMVS_NC_PCK_19", "A7")
    ] * 2


def test_the_counter_restarts_after_an_undo(market: Market) -> None:
    run(market, "G120")
    for _ in range(3):
        run(market, "G120")
    run(market, "G121")
    run(market, "G120")
    assert run(market, "G120").return_code == "NMVS_NC_PCK_23"


def test_without_the_counter_a_repeat_is_pck_22(clock: Clock) -> None:
    market = Market(MARKET, time_source=clock, rules=MarketRules(own_repeat_info_limit=None))
    run(market, "G120")
    assert run(market, "G120").return_code == "NMVS_NC_PCK_22"


def test_another_inactive_status_is_pck_27(market: Market) -> None:
    run(market, "G130")
    answer = run(market, "G120")
    assert (answer.return_code, answer.alert, answer.hub_code) == ("NMVS_NC_PCK_27", True, "A24")


def test_intermarket_repeat_is_pck_19_without_counter(market: Market) -> None:
    first = run(market, "G120", "IMT1", product=IMT_GTIN, batch="I1", expiry="271231")
    assert first.return_code == "NMVS_SUCCESS" and first.intermarket
    assert (
        run(market, "G120", "IMT1", product=IMT_GTIN, batch="I1", expiry="271231").return_code
        == "NMVS_NC_PCK_19"
    )
    assert (
        run(market, "G130", "IMT1", product=IMT_GTIN, batch="I1", expiry="271231").return_code
        == "NMVS_NC_PCK_27"
    )


# ---------------------------------------------------------------- undo rules


def test_undo_within_ten_days_boundary(market: Market, clock: Clock) -> None:
    run(market, "G120")
    clock.advance(days=10)
    assert run(market, "G121").return_code == "NMVS_SUCCESS"
    run(market, "G120")
    clock.advance(days=10, seconds=1)
    answer = run(market, "G121")
    assert (answer.return_code, answer.alert) == ("NMVS_NC_PCK_20", True)
    assert market.pack(GTIN, "0000000014").reason == "SUPPLIED"


def test_admin_clock_advance_counts_for_the_window(market: Market) -> None:
    run(market, "G120")
    market.advance(timedelta(days=11).total_seconds())
    assert run(market, "G121").return_code == "NMVS_NC_PCK_20"


def test_undo_by_another_user_is_pck_21(market: Market) -> None:
    run(market, "G120")
    answer = run(market, "G121", user="SITE0002")
    assert (answer.return_code, answer.alert) == ("NMVS_NC_PCK_21", True)
    assert run(market, "G110").state == "INACTIVE"


def test_undo_of_another_reason_is_pck_06_with_alert(market: Market) -> None:
    run(market, "G120")
    answer = run(market, "G131")
    assert (answer.return_code, answer.alert, answer.hub_code) == ("NMVS_NC_PCK_06", True, "A24")


def test_stolen_cannot_be_undone(market: Market) -> None:
    run(market, "G180")
    assert run(market, "G121").return_code == "NMVS_NC_PCK_06"


def test_undo_of_an_active_pack_is_the_no_alert_twin(market: Market) -> None:
    answer = run(market, "G121")
    assert (answer.return_code, answer.alert) == ("NMVS_NC_PCK_29", False)
    assert market.state.alerts == []


def test_ref_client_trx_id_must_match_the_set(market: Market) -> None:
    run(market, "G120", trx="DISPENSE-0001")
    answer = run(market, "G121", trx="UNDO-0001", ref="DISPENSE-0002")
    assert (answer.return_code, answer.alert) == ("NMVS_FE_TX_01", False)
    assert market.pack(GTIN, "0000000014").reason == "SUPPLIED"
    assert run(market, "G121", trx="UNDO-0002", ref="DISPENSE-0001").return_code == "NMVS_SUCCESS"


# ---------------------------------------------------------------- batch and product reasons


def test_expired_batch(market: Market) -> None:
    verify = run(market, "G110", "EXPIRED01", batch="EXP1", expiry="241100")
    assert (verify.return_code, verify.state, verify.reasons) == (
        "NMVS_SUCCESS",
        "INACTIVE",
        ("EXPIRED",),
    )
    assert (
        run(market, "G120", "EXPIRED01", batch="EXP1", expiry="241100").return_code
        == "NMVS_NC_PCK_02"
    )
    assert (
        run(market, "G121", "EXPIRED01", batch="EXP1", expiry="241100").return_code
        == "NMVS_NC_PCK_29"
    )
    assert market.state.alerts == []


def test_day_00_means_the_end_of_the_month(market: Market, clock: Clock) -> None:
    assert expiry_date("250100").isoformat() == "2025-01-31"
    assert expiry_date("240200").isoformat() == "2024-02-29"
    kwargs = {"batch": "EOM1", "expiry": "250100"}
    assert run(market, "G110", "ENDOFMONTH", **kwargs).state == "ACTIVE"  # 31 Jan 2025
    clock.advance(days=1)
    assert run(market, "G120", "ENDOFMONTH", **kwargs).return_code == "NMVS_NC_PCK_02"


def test_a_dispensed_pack_that_expires_cannot_be_undone(market: Market, clock: Clock) -> None:
    kwargs = {"batch": "EOM1", "expiry": "250100"}
    run(market, "G120", "ENDOFMONTH", **kwargs)
    clock.advance(days=1)
    verify = run(market, "G110", "ENDOFMONTH", **kwargs)
    assert verify.reasons == ("SUPPLIED", "EXPIRED")
    assert run(market, "G121", "ENDOFMONTH", **kwargs).return_code == "NMVS_NC_PCK_29"


def test_recalled_batch_and_withdrawn_product(market: Market) -> None:
    recalled = {"batch": "RCL1", "expiry": "271231"}
    assert run(market, "G110", "RECALLED01", **recalled).reasons == ("RECALLED",)
    assert run(market, "G120", "RECALLED01", **recalled).return_code == "NMVS_FE_LOT_01"
    withdrawn = {"product": WITHDRAWN_GTIN, "batch": "W1", "expiry": "271231"}
    assert run(market, "G110", "WITHDRAWN1", **withdrawn).reasons == ("WITHDRAWN",)
    assert run(market, "G130", "WITHDRAWN1", **withdrawn).return_code == "NMVS_FE_LOT_08"
    assert market.state.alerts == []


def test_twin_setting_answers_pck_30_without_alert(clock: Clock) -> None:
    market = Market(MARKET, time_source=clock, rules=MarketRules(batch_inactive_set="twin"))
    answer = run(market, "G120", "RECALLED01", batch="RCL1", expiry="271231")
    assert (answer.return_code, answer.alert) == ("NMVS_NC_PCK_30", False)


# ---------------------------------------------------------------- manual entry


def test_manual_entry_dispense_and_stolen(market: Market) -> None:
    assert run(market, "G122", batch=None, expiry=None).return_code == "NMVS_SUCCESS"
    assert run(market, "G110").reasons == ("SUPPLIED",)
    assert run(market, "G182", "0000000015", batch=None, expiry=None).return_code == "NMVS_SUCCESS"
    assert run(market, "G182", "NOPE", batch=None, expiry=None).return_code == "NMVS_NC_PC_02"


# ---------------------------------------------------------------- credentials


def test_bad_password_is_au_01_and_changes_nothing(market: Market) -> None:
    request = PackRequest("G120", "GTIN", GTIN, "0000000014", BATCH, EXPIRY)
    answer = market.single(header(password="Wrong-Pass9"), request)
    assert (answer.return_code, answer.state) == ("NMVS_FE_AU_01", None)
    assert market.pack(GTIN, "0000000014").reason is None
    assert market.single(header("NOBODY01"), request).return_code == "NMVS_FE_AU_01"


def test_lockout_after_max_failures(market: Market) -> None:
    request = PackRequest("G110", "GTIN", GTIN, "0000000014", BATCH, EXPIRY)
    codes = [market.single(header(password="Wrong-Pass9"), request).return_code for _ in range(5)]
    assert codes == ["NMVS_FE_AU_01"] * 5
    assert market.single(header(), request).return_code == "NMVS_FE_AU_05"


def test_a_success_resets_the_failure_count(market: Market) -> None:
    request = PackRequest("G110", "GTIN", GTIN, "0000000014", BATCH, EXPIRY)
    for _ in range(4):
        market.single(header(password="Wrong-Pass9"), request)
    market.single(header(), request)
    for _ in range(4):
        market.single(header(password="Wrong-Pass9"), request)
    assert market.single(header(), request).return_code == "NMVS_SUCCESS"


def test_password_notifications_and_expiry(market: Market) -> None:
    request = PackRequest("G110", "GTIN", GTIN, "0000000014", BATCH, EXPIRY)
    answer = market.single(header("EXPIRING"), request)
    assert answer.notifications == (("NMVS_NOTIFY_AU_02", "Your password expires in 5 days."),)
    assert market.single(header("OLDPASS1"), request).return_code == "NMVS_FE_AU_11"


def test_terms_and_conditions(market: Market) -> None:
    request = PackRequest("G110", "GTIN", GTIN, "0000000014", BATCH, EXPIRY)
    answer = market.single(header("NEWTERMS"), request)
    assert answer.notifications == (
        ("NMVS_NOTIFY_PMS_01", "New terms and conditions must be accepted within 7 days."),
    )
    assert market.single(header("BLOCKED1"), request).return_code == "NMVS_FE_AU_23"


def test_french_language_gets_french_descriptions(market: Market) -> None:
    request = PackRequest("G110", "GTIN", GTIN, "UNKNOWN1", BATCH, EXPIRY)
    english = market.single(header(), request).description
    french = market.single(header(language="fra"), request).description
    assert english != french and french


# ---------------------------------------------------------------- records


def test_every_transaction_is_recorded(market: Market, clock: Clock) -> None:
    run(market, "G120", trx="TRX-A0000001")
    clock.advance(seconds=5)
    run(market, "G120", user="SITE0002", trx="TRX-B0000001")
    records = market.state.transactions
    assert [
        (
            t.use_case,
            t.client_trx_id,
            t.user_id,
            t.product_code,
            t.serial,
            t.batch,
            t.return_code,
            t.at,
        )
        for t in records
    ] == [
        ("G120", "TRX-A0000001", "SITE0001", GTIN, "0000000014", BATCH, "NMVS_SUCCESS", START),
        (
            "G120",
            "TRX-B0000001",
            "SITE0002",
            GTIN,
            "0000000014",
            BATCH,
            "NMVS_NC_PCK_22",
            START + timedelta(seconds=5),
        ),
    ]
    (alert,) = market.state.alerts
    assert (
        alert.return_code,
        alert.hub_code,
        alert.client_trx_id,
        alert.user_id,
        alert.serial,
    ) == ("NMVS_NC_PCK_22", "A24", "TRX-B0000001", "SITE0002", "0000000014")
    history = market.pack(GTIN, "0000000014").history
    assert [(h.use_case, h.return_code, h.state) for h in history] == [
        ("G120", "NMVS_SUCCESS", "INACTIVE"),
        ("G120", "NMVS_NC_PCK_22", "INACTIVE"),
    ]


def test_reset_restores_the_loaded_market(market: Market) -> None:
    run(market, "G120")
    run(market, "G120", user="SITE0002")
    market.advance(3600)
    market.reset()
    assert market.state.transactions == [] and market.state.alerts == []
    assert market.now() == START
    assert run(market, "G110").state == "ACTIVE"


# ---------------------------------------------------------------- bulk


def bulk(market: Market, use_case: str, serials: tuple[str, ...], **kw: str):
    request = BulkRequest(use_case, "GTIN", kw.pop("product", GTIN), BATCH, EXPIRY, serials)
    return market.submit_bulk(header(trx="BULK-0000001"), request)


def test_bulk_is_pending_until_the_delay_then_reports_each_pack(
    market: Market, clock: Clock
) -> None:
    ticket = bulk(market, "G125", ("0000000014", "0000000015", "UNKNOWN1"))
    assert ticket.return_code == "NMVS_SUCCESS" and len(ticket.nmvs_trx_id) == 32
    answer, _ = market.bulk_result(header(trx="POLL-0000001"), ticket.nmvs_trx_id)
    assert (answer.return_code, answer.bulk) == ("NMVS_FE_TX_02", None)
    assert run(market, "G110").state == "ACTIVE"  # not processed yet
    clock.advance(seconds=2)
    answer, _ = market.bulk_result(header(trx="POLL-0000002"), ticket.nmvs_trx_id)
    assert answer.return_code == "NMVS_NC_PCK_24"
    assert [(o.serial, o.state, o.reasons, o.return_code) for o in answer.bulk] == [
        ("0000000014", "INACTIVE", ("SUPPLIED",), "NMVS_SUCCESS"),
        ("0000000015", "INACTIVE", ("SUPPLIED",), "NMVS_SUCCESS"),
        ("UNKNOWN1", "UNKNOWN", (), "NMVS_NC_PC_02"),
    ]
    assert [a.return_code for a in market.state.alerts] == ["NMVS_NC_PC_02"]
    assert {t.use_case for t in market.state.transactions if t.serial == "0000000015"} == {"G125"}


def test_bulk_all_success_and_all_failed(market: Market, clock: Clock) -> None:
    ok = bulk(market, "G115", ("0000000014",))
    failed = bulk(market, "G125", ("IMT1",), product=IMT_GTIN)  # bulk never goes intermarket
    clock.advance(seconds=3)
    assert market.bulk_result(header(), ok.nmvs_trx_id)[0].return_code == "NMVS_SUCCESS"
    answer, _ = market.bulk_result(header(), failed.nmvs_trx_id)
    assert answer.return_code == "NMVS_NC_PCK_17"
    assert answer.bulk[0].return_code == "NMVS_NC_PC_01"


def test_unknown_bulk_id_is_not_available(market: Market) -> None:
    assert market.bulk_result(header(), "0" * 32)[0].return_code == "NMVS_FE_TX_02"


def test_bulk_submission_needs_credentials(market: Market) -> None:
    request = BulkRequest("G125", "GTIN", GTIN, BATCH, EXPIRY, ("0000000014",))
    assert (
        market.submit_bulk(header(password="Wrong-Pass9"), request).return_code == "NMVS_FE_AU_01"
    )
    assert market.state.bulk_jobs == {}


def test_mixed_bulk_items_keep_their_own_use_case_and_ids(market: Market, clock: Clock) -> None:
    dispense = MixedItem(
        PackRequest("G120", "GTIN", GTIN, "0000000014", BATCH, EXPIRY), "ITEM-0000001"
    )
    undo = MixedItem(
        PackRequest("G121", "GTIN", GTIN, "0000000015", BATCH, EXPIRY, "DISPENSE-0001"),
        "ITEM-0000002",
    )
    manual = MixedItem(PackRequest("G182", "GTIN", GTIN, "S4"), "ITEM-0000003")
    run(market, "G120", "0000000015", trx="DISPENSE-0001")
    ticket = market.submit_bulk(
        header(trx="MIXED-000001"), MixedBulkRequest((dispense, undo, manual))
    )
    assert market.bulk_result(header(), ticket.nmvs_trx_id)[0].return_code == "NMVS_FE_TX_02"
    clock.advance(seconds=2)
    answer, _ = market.bulk_result(header(), ticket.nmvs_trx_id)
    assert answer.return_code == "NMVS_SUCCESS" and answer.bulk is not None
    assert [(o.serial, o.state, o.reasons) for o in answer.bulk] == [
        ("0000000014", "INACTIVE", ("SUPPLIED",)),
        ("0000000015", "ACTIVE", ()),
        ("S4", "INACTIVE", ("STOLEN",)),
    ]
    assert len({o.nmvs_trx_id for o in answer.bulk}) == 3
    records = [(t.use_case, t.client_trx_id) for t in market.state.transactions[-4:-1]]
    assert records == [("G120", "ITEM-0000001"), ("G121", "ITEM-0000002"), ("G182", "ITEM-0000003")]
