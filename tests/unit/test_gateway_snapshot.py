"""The gateway's MBO snapshot: the records of one book, hand-built and read back, and a session's stream cut at
its start on the real CLX5 file (snapshot, then the rest, make the books of the whole file)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from databento_dbn import F_BAD_TS_RECV, F_LAST, F_SNAPSHOT, F_TOB, UNDEF_PRICE, Action, Side

from obm_shared.dbn_file import open_mbo_file
from obm_shared.records import MboArray, MboRecord, array_to_records, records_to_array
from receiver.book.adapter import apply_records
from receiver.book.market import Market
from sender.gateway.plan import FileSelection
from sender.gateway.replay import merged_batches
from sender.gateway.snapshot import book_records, snapshot_records, with_snapshot
from tests.conftest import queued_books

SNAPSHOT = F_SNAPSHOT | F_BAD_TS_RECV
BATCH_RECORDS = 4_096


def add(order_id: int, side: str, price: int, size: int, flags: int = F_LAST) -> MboRecord:
    return MboRecord(100, 90, 0xA0, 7, 3, str(Action.ADD), str(side), price, size, 0, order_id, flags, 0, 5)


def record(action: str, side: str, order_id: int, price: int, size: int) -> MboRecord:
    return MboRecord(100, 90, 0xA0, 7, 3, str(action), str(side), price, size, 0, order_id, F_LAST, 0, 5)


def market_of(*records: MboRecord) -> Market:
    market = Market()
    apply_records(market, records_to_array(records))
    return market


def rows(records: MboArray) -> list[tuple[str, str, int, int, int, int]]:
    """(action, side, order_id, price, size, flags) of each record."""
    return [(r.action, r.side, r.order_id, r.price, r.size, r.flags) for r in array_to_records(records)]


def test_a_book_is_a_clear_then_bids_best_first_then_asks_best_first_each_level_in_queue_order() -> None:
    market = market_of(
        add(1, Side.BID, 100, 5),
        add(2, Side.BID, 101, 1),
        add(3, Side.BID, 100, 2),
        add(4, Side.ASK, 103, 4),
        add(5, Side.ASK, 102, 3),
        # a larger size loses its place: order 1 goes behind order 3
        record(Action.MODIFY, Side.BID, 1, 100, 6),
    )
    (book,) = market.books.values()
    records = book_records(book, ts_recv=1_000, ts_event=990)
    assert rows(records) == [
        ("R", "N", 0, UNDEF_PRICE, 0, SNAPSHOT),
        ("A", "B", 2, 101, 1, SNAPSHOT),
        ("A", "B", 3, 100, 2, SNAPSHOT),
        ("A", "B", 1, 100, 6, SNAPSHOT),
        ("A", "A", 5, 102, 3, SNAPSHOT),
        ("A", "A", 4, 103, 4, SNAPSHOT | F_LAST),
    ]
    assert set(records["ts_recv"].tolist()) == {1_000} and set(records["ts_event"].tolist()) == {990}
    assert set(records["publisher_id"].tolist()) == {7} and set(records["instrument_id"].tolist()) == {3}
    assert set(records["sequence"].tolist()) == {0}


def test_a_book_emptied_before_the_start_is_its_clear_alone_ending_the_event() -> None:
    market = market_of(add(1, Side.BID, 100, 5), record(Action.CANCEL, Side.BID, 1, 100, 5))
    (book,) = market.books.values()
    assert rows(book_records(book, 1_000, 990)) == [("R", "N", 0, UNDEF_PRICE, 0, SNAPSHOT | F_LAST)]


def test_a_top_of_book_level_is_an_f_tob_add_ahead_of_its_side() -> None:
    market = market_of(add(0, Side.ASK, 105, 9, F_TOB | F_LAST), add(8, Side.ASK, 106, 1))
    (book,) = market.books.values()
    assert rows(book_records(book, 1_000, 990))[1:] == [
        ("A", "A", 0, 105, 9, SNAPSHOT | F_TOB),
        ("A", "A", 8, 106, 1, SNAPSHOT | F_LAST),
    ]
    again = market_of(*array_to_records(book_records(book, 1_000, 990)))
    assert [(level.price, level.size) for level in again.books[(3, 7)].asks.values()] == [(105, 9), (106, 1)]


def test_books_go_by_instrument_then_publisher_each_one_event() -> None:
    market = market_of(
        _at(add(1, Side.BID, 100, 5), 4, 9),
        _at(add(2, Side.BID, 100, 5), 4, 2),
        _at(add(3, Side.ASK, 100, 5), 1, 9),
    )
    records = snapshot_records(market, records_to_array([add(9, Side.BID, 1, 1)])[0])
    clears = records[records["action"] == b"R"]
    assert list(zip(clears["instrument_id"].tolist(), clears["publisher_id"].tolist(), strict=True)) == [
        (1, 9),
        (4, 2),
        (4, 9),
    ]
    assert np.count_nonzero(records["flags"] & F_LAST) == 3


def _at(record: MboRecord, instrument_id: int, publisher_id: int) -> MboRecord:
    fields = {name: getattr(record, name) for name in MboRecord.__struct_fields__}
    return MboRecord(**(fields | {"instrument_id": instrument_id, "publisher_id": publisher_id}))


def file_records(path: Path) -> MboArray:
    return np.concatenate(list(open_mbo_file(path).batches(1 << 20)))


def session_stream(path: Path, start_ns: int) -> MboArray:
    every = FileSelection(path, np.array([], np.uint32), np.array([], np.uint64), every_instrument_from_ns=0)
    batches: Iterator[MboArray] = merged_batches([every], BATCH_RECORDS)
    return np.concatenate(list(with_snapshot(batches, start_ns, BATCH_RECORDS)))


def test_an_event_across_the_start_is_replayed_whole_after_the_snapshot(clx5: Path) -> None:
    expected = file_records(clx5)
    ends = np.flatnonzero(expected["flags"] & F_LAST)
    # a record whose event ends later than it was received: a start just after it cuts the event in two
    event_end = ends[np.searchsorted(ends, np.arange(len(expected)))[: ends[-1] + 1]]
    straddling = np.flatnonzero(expected["ts_recv"][: ends[-1] + 1] < expected["ts_recv"][event_end])
    first = int(straddling[len(straddling) // 2])
    start = int(expected["ts_recv"][first]) + 1
    stream = session_stream(clx5, start)
    snapshot = int(np.count_nonzero(stream["flags"] & F_SNAPSHOT))
    assert snapshot and (stream["flags"][:snapshot] & F_SNAPSHOT).all()
    rest = stream[snapshot:]
    assert rest["ts_recv"][0] < start, "the straddling event's records before the start are not replayed"
    assert len(stream) - snapshot > np.count_nonzero(expected["ts_recv"] >= start)
    whole, received = Market(), Market()
    apply_records(whole, expected)
    apply_records(received, stream)
    assert queued_books(received) == queued_books(whole)


def test_a_start_at_the_beginning_sends_no_snapshot_record(clx5: Path) -> None:
    expected = file_records(clx5)
    for start in (0, int(expected["ts_recv"][0])):
        assert session_stream(clx5, start).tobytes() == expected.tobytes()
