"""Random sequences of operations by two users on a few packs never break the core's invariants."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.nmvs.arvato.returncodes import lookup
from gateway.simulator.market import SET_REASON, UNDO_REASON, Market, PackRequest
from tests.simulator.markets import BATCH, EXPIRY, GTIN, MARKET, Clock, header

SERIALS = ("0000000014", "0000000015", "S4")
USE_CASES = ("G110", *SET_REASON, *UNDO_REASON)

step = st.one_of(
    st.tuples(
        st.just("request"),
        st.sampled_from(USE_CASES),
        st.sampled_from(SERIALS),
        st.sampled_from(("SITE0001", "SITE0002")),
        st.booleans(),  # send the RefClientTrxId of the last known set (undo only)
    ),
    st.tuples(st.just("advance"), st.integers(min_value=0, max_value=6 * 86400)),
)


@given(st.lists(step, max_size=40))
def test_random_operations_keep_the_invariants(steps: list[tuple]) -> None:
    clock = Clock()
    market = Market(MARKET, time_source=clock)
    # model: serial -> (reason, user, trx, set_at) of the unreverted successful set, if any
    model: dict[str, tuple[str, str, str, object] | None] = dict.fromkeys(SERIALS)
    returned_alerts: list[str] = []
    ids: set[str] = set()
    for n, item in enumerate(steps):
        if item[0] == "advance":
            clock.advance(seconds=item[1])
            continue
        _, use_case, serial, user, with_ref = item
        trx = f"TRX-{n:08d}"
        before = model[serial]
        ref = before[2] if before and with_ref and use_case in UNDO_REASON else None
        manual = use_case in ("G122", "G182")
        request = PackRequest(
            use_case,
            "GTIN",
            GTIN,
            serial,
            None if manual else BATCH,
            None if manual else EXPIRY,
            ref,
        )
        answer = market.single(header(user, trx), request)
        assert answer.nmvs_trx_id not in ids and len(answer.nmvs_trx_id) == 32
        ids.add(answer.nmvs_trx_id)
        if lookup(answer.return_code).alert:
            returned_alerts.append(answer.return_code)
        success = answer.return_code == "NMVS_SUCCESS"
        if use_case in SET_REASON:
            # a set succeeds iff the pack was active
            assert success == (before is None), (use_case, before, answer.return_code)
            if success:
                model[serial] = (SET_REASON[use_case], user, trx, clock())
        elif use_case in UNDO_REASON:
            if success:
                # only the setter, within 10 days, for the same reason
                assert before is not None
                assert (before[0], before[1]) == (UNDO_REASON[use_case], user)
                assert clock() - before[3] <= timedelta(days=10)  # type: ignore[operator]
                model[serial] = None
        else:
            assert success
        pack = market.pack(GTIN, serial)
        assert pack is not None
        # ACTIVE iff no unreverted set, and the reported state says the same
        assert pack.reason == (model[serial][0] if model[serial] else None)
        assert answer.state == ("ACTIVE" if model[serial] is None else "INACTIVE")
    # the alerts recorded are exactly the Level-5 codes returned, in order
    assert [a.return_code for a in market.state.alerts] == returned_alerts
    assert all(a.hub_code for a in market.state.alerts)
    assert len(market.state.transactions) == sum(1 for s in steps if s[0] == "request")
