"""The trade tape keeps the newest trades across batches, in order, as databento reads them."""

from __future__ import annotations

from pathlib import Path

import databento as db
import pytest
from databento_dbn import MBOMsg

from obm_shared.dbn_file import open_mbo_file
from receiver.trade_tape import TradeTape


def test_the_tape_holds_the_newest_trades_of_a_real_file_across_batches(clx5: Path) -> None:
    tape = TradeTape(size=50)
    for batch in open_mbo_file(clx5).batches(777):  # batches that split the trades unevenly
        tape.record(batch)

    trades = [
        record
        for record in db.DBNStore.from_file(clx5)
        if isinstance(record, MBOMsg) and str(record.action) == "T"
    ]
    expected = [
        (
            t.ts_event,
            t.instrument_id,
            t.publisher_id,
            str(t.side),
            f"{t.pretty_price:.9f}".rstrip("0").rstrip("."),
        )
        for t in trades[-20:]
    ]
    shown = tape.latest(20)
    assert [(t.ts_event, t.instrument_id, t.publisher_id, t.side, t.price) for t in shown] == expected
    assert [t.size for t in shown] == [t.size for t in trades[-20:]]
    assert len(tape.latest(1000)) == 50


def test_a_tape_shows_fewer_trades_than_asked_when_fewer_came() -> None:
    assert TradeTape(size=10).latest(5) == []
    with pytest.raises(ValueError):
        TradeTape(size=0)
