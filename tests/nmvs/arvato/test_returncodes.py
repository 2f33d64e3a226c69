"""The return-code catalogue against the published code lists and France MVO's table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.nmvs.arvato.returncodes import CATALOGUE, NO_ALERT_TWIN, CodeClass, lookup

# Level-5 codes and their EU Hub codes (PCK_20/21 per France MVO's table).
LEVEL5 = {
    "NMVS_NC_PC_02": "A3",
    "NMVS_FE_LOT_03": "A2",
    "NMVS_FE_LOT_12": "A52",
    "NMVS_FE_LOT_13": "A68",
    "NMVS_NC_PCK_06": "A24",
    "NMVS_NC_PCK_19": "A7",
    "NMVS_NC_PCK_20": "A4",
    "NMVS_NC_PCK_21": "A5",
    "NMVS_NC_PCK_22": "A24",
    "NMVS_NC_PCK_27": "A24",
}

# Every product, batch, pack, transaction, request, authentication, account, PKI and technical
# code of the published lists.
REFERENCE_CODES = [
    "NMVS_SUCCESS",
    *(f"NMVS_NC_PC_{n:02}" for n in (1, 2, 3, 4, 5, 6, 10, 11, 14)),
    *(f"NMVS_FE_LOT_{n:02}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 15, 17, 18)),
    *(
        f"NMVS_NC_PCK_{n:02}"
        for n in (*range(1, 10), 11, *range(13, 26), *range(27, 32))
        if n not in (10, 12, 26)
    ),
    *(f"NMVS_FE_GR_{n:02}" for n in (1, 2, 3, 4)),
    *(f"NMVS_FE_TX_{n:02}" for n in (1, 2, 3, 4, 5)),
    "NMVS_TE_TX_01",
    "NMVS_TE_TX_02",
    "NMVS_FE_REQ_01",
    "NMVS_FE_REQ_02",
    "NMVS_FE_BR_01",
    "NMVS_ERROR",
    *(f"NMVS_FE_AU_{n:02}" for n in (*range(1, 16), 17, 23, 24) if n != 16),
    *(f"NMVS_FE_PKI_{n:02}" for n in (1, 5, 6, 7, 8, 9)),
    "NMVS_FE_PMS_02",
    "NMVS_FE_PMS_03",
    "NMVS_FE_PMS_04",
    "NMVS_NC_PMS_23",
    "NMVS_NC_PMS_24",
    "NMVS_TE_XM_01",
    "NMVS_TE_XM_02",
    "NMVS_TE_JS_01",
    "NMVS_TE_JS_02",
    "NMVS_TE_REQ_02",
    "NMVS_TI_AU_01",
    "NMVS_TI_RT_01",
    "NMVS_TI_RT_02",
    "NMVS_TI_TO_01",
    "NMVS_TI_XM_01",
    "NMVS_FI_SE_CLI_01",
    "NMVS_FI_BAT_01",
    "NMVS_FI_CFG_02",
    "NMVS_FI_CFG_03",
    "NMVS_WF_NC_01",
    "NMVS_WF_NC_02",
    "NMVS_NOTIFY_AU_01",
    "NMVS_NOTIFY_AU_02",
    "NMVS_NOTIFY_PMS_01",
]


@pytest.mark.parametrize("code", REFERENCE_CODES)
def test_every_reference_code_is_catalogued(code: str) -> None:
    info = lookup(code)
    assert info.known and info.code == code
    assert info.en and info.fr and info.en != info.fr


def test_the_alerts_are_exactly_the_level5_set_with_their_hub_codes() -> None:
    alerts = {code: info.hub_code for code, info in CATALOGUE.items() if info.alert}
    assert alerts == LEVEL5
    assert all(CATALOGUE[code].code_class is CodeClass.ALERT for code in LEVEL5)


def test_non_alert_codes_carry_no_hub_code() -> None:
    assert [c for c, i in CATALOGUE.items() if not i.alert and i.hub_code is not None] == []


@pytest.mark.parametrize(("alert_code", "twin"), sorted(NO_ALERT_TWIN.items()))
def test_v5_twins_are_refusals_without_alert(alert_code: str, twin: str) -> None:
    assert CATALOGUE[alert_code].alert
    assert not CATALOGUE[twin].alert
    assert CATALOGUE[twin].code_class is CodeClass.REFUSED


def test_ambiguous_codes_are_the_technical_state_change_failures() -> None:
    ambiguous = {c for c, i in CATALOGUE.items() if i.ambiguous}
    assert ambiguous == {
        "NMVS_ERROR",
        "NMVS_TI_TO_01",
        "NMVS_TI_RT_01",
        "NMVS_TI_RT_02",
        "NMVS_TI_XM_01",
    }


def test_retryable_means_transient_or_pending() -> None:
    for info in CATALOGUE.values():
        assert info.retryable == (info.code_class in (CodeClass.TRANSIENT, CodeClass.PENDING))
    assert lookup("NMVS_FE_TX_02").code_class is CodeClass.PENDING
    assert lookup("NMVS_FI_SE_CLI_01").rate_limited
    assert lookup("NMVS_FI_SE_CLI_01").retryable


def test_only_bad_credentials_stop_sending() -> None:
    assert {c for c, i in CATALOGUE.items() if i.stop_sending} == {
        "NMVS_FE_AU_01",
        "NMVS_FE_AU_06",
    }


def test_account_and_certificate_codes_need_the_operator() -> None:
    for code in (
        "NMVS_FE_AU_02",
        "NMVS_FE_AU_05",
        "NMVS_FE_AU_11",
        "NMVS_FE_AU_23",
        "NMVS_FE_PKI_01",
    ):
        assert lookup(code).code_class is CodeClass.OPERATOR
        assert not lookup(code).retryable


def test_message_picks_french_for_french_languages() -> None:
    info = lookup("NMVS_NC_PCK_22")
    assert info.message("fra") == info.fr
    assert info.message("FR") == info.fr
    assert info.message("eng") == info.en
    assert info.message("deu") == info.en


@given(st.text(max_size=40).filter(lambda c: c not in CATALOGUE))
def test_unknown_codes_get_a_conservative_entry(code: str) -> None:
    info = lookup(code)
    assert info.code == code
    assert not info.known
    assert not info.retryable
    assert not info.alert
    assert info.ambiguous
    assert info.code_class is CodeClass.OPERATOR


def test_every_code_has_the_answer_class_its_meaning_says() -> None:
    from gateway.vocabulary import AnswerClass as A

    expected = {
        "NMVS_SUCCESS": A.SUCCESS,
        "NMVS_NC_PCK_22": A.WRONG_STATE,
        "NMVS_NC_PCK_19": A.WRONG_STATE,
        "NMVS_NC_PC_02": A.UNKNOWN_PACK,
        "NMVS_FE_LOT_03": A.UNKNOWN_PACK,
        "NMVS_FE_LOT_13": A.UNKNOWN_PACK,
        "NMVS_FE_LOT_12": A.EXPIRY_MISMATCH,
        "NMVS_NC_PCK_20": A.NOT_ALLOWED,
        "NMVS_NC_PCK_21": A.NOT_ALLOWED,
        "NMVS_FE_AU_01": A.AUTHENTICATION,
        "NMVS_FE_PKI_01": A.AUTHENTICATION,
        "NMVS_FI_SE_CLI_01": A.RATE_LIMITED,
        "NMVS_TI_TO_01": A.TECHNICAL,
        "NMVS_TE_XM_01": A.TECHNICAL,
    }
    assert {code: lookup(code).answer_class for code in expected} == expected
    for code, twin in NO_ALERT_TWIN.items():  # an alert and its no-alert twin mean the same
        assert lookup(code).answer_class is lookup(twin).answer_class, code
    for info in CATALOGUE.values():
        if info.alert:
            assert info.answer_class not in (A.SUCCESS, A.TECHNICAL, A.RATE_LIMITED), info.code
        if info.needs_operator:
            assert info.answer_class is A.AUTHENTICATION, info.code
    assert lookup("NMVS_NEVER_SEEN_01").needs_operator  # unknown: an operator looks at it
