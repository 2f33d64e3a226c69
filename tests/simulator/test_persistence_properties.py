"""Whatever happened, a market reopened from its SQLite file equals the one that wrote it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.simulator.market import (
    SET_REASON,
    UNDO_REASON,
    BulkRequest,
    MixedBulkRequest,
    MixedItem,
    PackRequest,
)
from gateway.simulator.server import open_market
from tests.simulator.markets import BATCH, EXPIRY, GTIN, MARKET, Clock, header

SERIALS = ("0000000014", "0000000015", "UNKNOWN1")
operation = st.one_of(
    st.tuples(
        st.just("single"),
        st.sampled_from(("G110", *SET_REASON, *UNDO_REASON)),
        st.sampled_from(SERIALS),
        st.sampled_from(("SITE0001", "SITE0002", "NOBODY01")),
    ),
    st.tuples(st.just("bulk"), st.sampled_from(("G125", "G127", "G135")), st.sampled_from(SERIALS)),
    st.tuples(
        st.just("mixed"), st.sampled_from(("G110", "G120", "G122")), st.sampled_from(SERIALS)
    ),
    st.tuples(st.just("advance"), st.integers(min_value=0, max_value=3 * 86400)),
)


def pack_request(use_case: str, serial: str) -> PackRequest:
    manual = use_case in ("G122", "G182")  # manual entry: no batch, no expiry
    return PackRequest(
        use_case, "GTIN", GTIN, serial, None if manual else BATCH, None if manual else EXPIRY
    )


@settings(max_examples=25)
@given(st.lists(operation, max_size=25))
def test_reopened_state_equals_the_live_state(operations: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "sim.sqlite"
        clock = Clock()
        market, store = open_market(MARKET, state_file=path, time_source=clock)
        assert store is not None
        for n, op in enumerate(operations):
            if op[0] == "advance":
                market.advance(op[1])
            elif op[0] == "mixed":
                mixed = MixedBulkRequest((MixedItem(pack_request(op[1], op[2]), f"ITEM-{n:08d}"),))
                market.submit_bulk(header(trx=f"MIXED-{n:08d}"), mixed)
            elif op[0] == "bulk":
                request = BulkRequest(op[1], "GTIN", GTIN, BATCH, EXPIRY, (op[2],))
                market.submit_bulk(header(trx=f"BULK-{n:08d}"), request)
            else:
                market.single(header(op[3], f"TRX-{n:08d}"), pack_request(op[1], op[2]))
        store.close()
        reopened, store = open_market(None, state_file=path, time_source=clock)
        assert store is not None
        store.close()
        assert reopened.state == market.state
