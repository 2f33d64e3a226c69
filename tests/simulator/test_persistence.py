"""--state: a restarted simulator keeps packs, accounts, records, bulk jobs and its clock."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.simulator.market import BulkRequest, PackRequest
from gateway.simulator.persistence import StateFileError
from gateway.simulator.server import open_market
from tests.simulator.markets import BATCH, EXPIRY, GTIN, MARKET, Clock, header


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite"
    clock = Clock()
    market, store = open_market(MARKET, state_file=path, time_source=clock)
    market.single(
        header(trx="DISPENSE-0001"), PackRequest("G120", "GTIN", GTIN, "0000000014", BATCH, EXPIRY)
    )
    market.single(
        header("SITE0002"), PackRequest("G120", "GTIN", GTIN, "0000000014", BATCH, EXPIRY)
    )
    ticket = market.submit_bulk(
        header(), BulkRequest("G125", "GTIN", GTIN, BATCH, EXPIRY, ("0000000015",))
    )
    market.single(
        header(password="Wrong-Pass9"),
        PackRequest("G110", "GTIN", GTIN, "0000000014", BATCH, EXPIRY),
    )
    market.advance(3600)
    assert store is not None
    store.close()

    again, store = open_market(None, state_file=path, time_source=clock)
    assert again.now() == clock() + timedelta(hours=1)
    pack = again.pack(GTIN, "0000000014")
    assert pack is not None
    assert (pack.reason, pack.set_by, pack.set_trx, pack.set_at) == (
        "SUPPLIED",
        ("PHARMA01", "SITE0001"),
        "DISPENSE-0001",
        clock(),
    )
    assert [h.return_code for h in pack.history] == ["NMVS_SUCCESS", "NMVS_NC_PCK_22"]
    assert [t.return_code for t in again.state.transactions] == [
        "NMVS_SUCCESS",
        "NMVS_NC_PCK_22",
        "NMVS_SUCCESS",
        "NMVS_FE_AU_01",
    ]
    assert [a.return_code for a in again.state.alerts] == ["NMVS_NC_PCK_22"]
    assert again.state.accounts[("PHARMA01", "SITE0001")].failed_logins == 1
    answer, _ = again.bulk_result(header(), ticket.nmvs_trx_id)  # the job was kept and is now due
    assert answer.return_code == "NMVS_SUCCESS" and answer.bulk is not None
    undo = again.single(
        header(), PackRequest("G121", "GTIN", GTIN, "0000000014", BATCH, EXPIRY, "DISPENSE-0001")
    )
    assert undo.return_code == "NMVS_SUCCESS"
    assert store is not None
    store.close()

    third, store = open_market(None, state_file=path, time_source=clock)
    assert third.pack(GTIN, "0000000014").reason is None
    assert third.pack(GTIN, "0000000015").reason == "SUPPLIED"
    third.reset()
    assert store is not None
    store.close()

    after_reset, store = open_market(None, state_file=path, time_source=clock)
    assert (
        after_reset.state.transactions == [] and after_reset.pack(GTIN, "0000000015").reason is None
    )
    assert after_reset.now() == clock()
    assert store is not None
    store.close()


def test_a_new_state_file_needs_a_market(tmp_path: Path) -> None:
    try:
        open_market(None, state_file=tmp_path / "empty.sqlite")
    except RuntimeError as error:
        assert "holds no market yet; give --packs or --generate" in str(error)
    else:
        raise AssertionError("expected a StateFileError")


@pytest.mark.parametrize("offset", ["1e300", "nan", "soon"])
def test_an_impossible_clock_in_the_state_file_is_a_state_file_error(
    tmp_path: Path, offset: str
) -> None:
    path = tmp_path / "sim.sqlite"
    _, store = open_market(MARKET, state_file=path)
    assert store is not None
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'clock_offset'", (offset,))
    db.close()
    with pytest.raises(StateFileError, match=r"sim\.sqlite: cannot read the simulator state: "):
        open_market(None, state_file=path)
