"""The demo data: a real DBN file that databento and our reader read back, the same bytes for the same
arguments, and a session that the book replays without skipping a record or crossing a book."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import databento as db
import numpy as np
import pytest
from databento_dbn import F_LAST, F_SNAPSHOT, UNDEF_PRICE, Action, Side

from demo_market import writer
from demo_market.instruments import DEMO_INSTRUMENTS
from demo_market.writer import demo_records, write_demo_file
from obm_shared.dbn_file import instrument_symbols, open_mbo_file
from obm_shared.records import MBO_DTYPE, MboArray
from receiver.book.adapter import apply_records
from receiver.book.book import OrderBook
from receiver.book.market import Market
from receiver.book.views import book_view, format_price
from tests.unit.observers import CallbackObserver

RECORDS = 20_000
SEED = 7
SYMBOLS = {spec.instrument_id: spec.symbol for spec in DEMO_INSTRUMENTS}
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def code(member: object) -> bytes:
    """The byte a record holds for a DBN ``Action`` or ``Side`` member (typed loosely: the stubs call them str)."""
    return str(member).encode()


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.mbo.dbn"
    assert write_demo_file(path, RECORDS, SEED) == RECORDS
    return path


@pytest.fixture(scope="module")
def records(demo_file: Path) -> MboArray:
    return np.concatenate(list(open_mbo_file(demo_file).batches(4096)))


def events(records: MboArray) -> list[MboArray]:
    """The records cut after each F_LAST record."""
    assert records["flags"][-1] & F_LAST, "the file ends inside an event"
    return np.split(records, np.flatnonzero(records["flags"] & F_LAST) + 1)[:-1]


def test_databento_reads_the_file_back(demo_file: Path, records: MboArray) -> None:
    store = db.DBNStore.from_file(demo_file)
    meta = store.metadata
    assert (meta.version, meta.dataset, str(meta.schema)) == (3, "DEMO.MBO", "mbo")
    assert (str(meta.stype_in), str(meta.stype_out)) == ("raw_symbol", "instrument_id")
    assert meta.symbols == [spec.symbol for spec in DEMO_INSTRUMENTS]
    assert instrument_symbols(meta) == SYMBOLS
    array = store.to_ndarray()
    assert array.dtype == MBO_DTYPE
    assert array.tobytes() == records.tobytes()
    assert meta.start <= array["ts_recv"].min() and array["ts_recv"].max() < meta.end


def test_our_reader_streams_the_file(demo_file: Path) -> None:
    mbo_file = open_mbo_file(demo_file)
    meta = mbo_file.metadata()
    assert (meta.dataset, meta.schema, meta.dbn_version) == ("DEMO.MBO", "mbo", 3)
    assert meta.instruments == SYMBOLS
    assert mbo_file.count_records() == RECORDS
    assert [len(batch) for batch in mbo_file.batches(8_000)] == [8_000, 8_000, 4_000]


def test_same_arguments_give_the_same_bytes_and_another_seed_does_not(
    demo_file: Path, tmp_path: Path
) -> None:
    again, other = tmp_path / "again.dbn", tmp_path / "other.dbn"
    write_demo_file(again, RECORDS, SEED)
    write_demo_file(other, RECORDS, SEED + 1)
    assert again.read_bytes() == demo_file.read_bytes()
    assert other.stat().st_size == demo_file.stat().st_size
    assert other.read_bytes() != demo_file.read_bytes()


def test_chunk_size_does_not_change_the_records(
    demo_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events, timestamps and sequences carry across chunk boundaries (997 splits many events)."""
    monkeypatch.setattr(writer, "CHUNK_RECORDS", 997)
    path = tmp_path / "small_chunks.dbn"
    write_demo_file(path, RECORDS, SEED)
    assert path.read_bytes() == demo_file.read_bytes()


@pytest.mark.parametrize("count", [1_000, 4_099])
def test_exactly_the_records_asked_for_ending_with_a_complete_event(count: int) -> None:
    chunks = list(demo_records(count, SEED))
    assert sum(len(chunk) for chunk in chunks) == count
    assert chunks[-1]["flags"][-1] & F_LAST


def test_the_book_replays_every_record_and_never_locks_or_crosses(demo_file: Path) -> None:
    mbo_file = open_mbo_file(demo_file)
    market = Market(symbols=mbo_file.metadata().instruments)
    bad_events: list[tuple[str, int | None, int]] = []

    def check(book: OrderBook, ts_event: int, ts_recv: int, sequence: int) -> None:
        for publisher_id in (book.publisher_id, None):
            crossing = market.crossing(book.instrument_id, publisher_id)
            if crossing.crossed or crossing.locked:
                bad_events.append((market.symbol(book.instrument_id), publisher_id, ts_recv))

    for batch in mbo_file.batches(4096):
        apply_records(market, batch, CallbackObserver(check))
    accounting = market.accounting
    assert not accounting.skipped, f"skipped records: {dict(accounting.skipped)}"
    assert accounting.balanced and accounting.records == RECORDS
    assert accounting.modify_unknown_as_add == 0
    assert not bad_events, f"{len(bad_events)} events left a locked or crossed book, first {bad_events[:3]}"
    for spec in DEMO_INSTRUMENTS:
        view = book_view(market, spec.instrument_id, None, 10)
        assert not view.crossed and view.best_bid and view.best_ask
        assert min(view.bid_levels, view.ask_levels) >= 5, f"{spec.symbol} book thinned out: {view}"
        books = market.instrument_books(spec.instrument_id)
        assert [book.publisher_id for book in books] == list(spec.publishers)


def test_every_book_opens_with_a_clear_and_a_snapshot(records: MboArray) -> None:
    snapshots = [event for event in events(records) if event["flags"][0] & F_SNAPSHOT]
    books = {(spec.instrument_id, publisher) for spec in DEMO_INSTRUMENTS for publisher in spec.publishers}
    assert {(event["instrument_id"][0], event["publisher_id"][0]) for event in snapshots} == books
    for event in snapshots:
        clear = event[0]
        assert (clear["action"], clear["side"], clear["price"]) == (
            code(Action.CLEAR),
            code(Side.NONE),
            UNDEF_PRICE,
        )
        assert set(event["action"][1:].tolist()) == {code(Action.ADD)}
        assert (event["flags"][:-1] == F_SNAPSHOT).all() and event["flags"][-1] == F_SNAPSHOT | F_LAST
        bids, asks = (event["price"][event["side"] == code(side)] for side in (Side.BID, Side.ASK))
        assert 10 <= len(np.unique(bids)) <= 20 and 10 <= len(np.unique(asks)) <= 20
        assert bids.max() < asks.min()
    assert len(snapshots) == len(books)
    assert np.count_nonzero(records["flags"] & F_SNAPSHOT) == sum(len(event) for event in snapshots)


def test_live_events_are_single_records_or_trades_ending_in_f_last(records: MboArray) -> None:
    actions = Counter(records["action"].tolist())
    every = (Action.ADD, Action.CANCEL, Action.MODIFY, Action.TRADE, Action.FILL, Action.CLEAR)
    assert set(actions) == {code(action) for action in every}
    live = [event for event in events(records) if not event["flags"][0] & F_SNAPSHOT]
    assert all((event["flags"][:-1] == 0).all() and event["flags"][-1] == F_LAST for event in live)
    trades = [event for event in live if len(event) > 1]
    assert len(trades) > 100 and all(event["action"][0] == code(Action.TRADE) for event in trades)
    settling = {code(action) for action in (Action.CANCEL, Action.MODIFY, Action.ADD)}
    for trade in trades:
        aggressor = trade["side"][0]
        resting = code(Side.ASK) if aggressor == code(Side.BID) else code(Side.BID)
        prints, fills = (trade[trade["action"] == code(action)] for action in (Action.TRADE, Action.FILL))
        assert (prints["side"] == aggressor).all() and (fills["side"] == resting).all()
        assert prints["size"].sum() == fills["size"].sum() > 0
        settled = trade[len(prints) + len(fills) :]
        assert set(settled["action"].tolist()) <= settling
        settled = settled[settled["action"] != code(Action.ADD)]  # the aggressor's remainder, if it rests
        assert sorted(settled["order_id"]) == sorted(fills["order_id"]), "a filled order was not settled"


def order_changes(records: MboArray) -> Counter[str]:
    """Each Cancel and Modify classified against the orders that the file's own Adds put in the book; fails
    on a change to an order that does not rest or a cancel larger than what rests."""
    resting: dict[int, tuple[int, int]] = {}  # order id -> (price, size); order ids are unique across books
    changes: Counter[str] = Counter()
    columns = (records[name].tolist() for name in ("action", "order_id", "price", "size"))
    for action, order_id, price, size in zip(*columns):
        if action == code(Action.ADD):
            resting[order_id] = (price, size)
        elif action in (code(Action.CANCEL), code(Action.MODIFY)):
            assert order_id in resting, f"{action.decode()} of order {order_id}, which does not rest"
            old_price, old_size = resting[order_id]
            if action == code(Action.MODIFY):
                resting[order_id] = (price, size)
                changes[
                    "new price" if price != old_price else "smaller" if size < old_size else "larger"
                ] += 1
            elif size < old_size:
                resting[order_id] = (old_price, old_size - size)
                changes["partial cancel"] += 1
            else:
                assert size == old_size, f"cancel of {size} from order {order_id}, which rests {old_size}"
                del resting[order_id]
                changes["full cancel"] += 1
    return changes


def test_cancels_and_modifies_of_every_kind_touch_only_resting_orders(records: MboArray) -> None:
    changes = order_changes(records)
    kinds = ("full cancel", "partial cancel", "smaller", "new price", "larger")
    assert all(changes[kind] > 50 for kind in kinds), f"too few of some kind: {dict(changes)}"


def test_prices_sit_on_the_tick_grid_near_the_open_and_time_moves_forward(records: MboArray) -> None:
    for spec in DEMO_INSTRUMENTS:
        priced = records[(records["instrument_id"] == spec.instrument_id) & (records["price"] != UNDEF_PRICE)]
        assert (priced["price"] % spec.tick == 0).all(), f"{spec.symbol} price off its tick grid"
        assert abs(np.median(priced["price"]) / spec.open_price - 1) < 0.02, (
            f"{spec.symbol} wandered to {format_price(int(np.median(priced['price'])))}"
        )
    ts_event, ts_recv = records["ts_event"].astype(np.int64), records["ts_recv"].astype(np.int64)
    assert (np.diff(ts_event) >= 0).all() and (np.diff(ts_recv) >= 0).all()
    latency = ts_recv - ts_event
    assert (latency > 0).all() and ((records["ts_in_delta"] > 0) & (records["ts_in_delta"] < latency)).all()
    ends = np.flatnonzero(records["flags"] & F_LAST)
    assert (np.diff(ts_event[ends]) >= 1_000).all(), "events less than a microsecond apart"
    added = records["order_id"][records["action"] == code(Action.ADD)]
    assert len(np.unique(added)) == len(added), "an order id was added twice"
    for spec in DEMO_INSTRUMENTS:
        for publisher in spec.publishers:
            mine = records[
                (records["instrument_id"] == spec.instrument_id) & (records["publisher_id"] == publisher)
            ]
            event_sequence = mine["sequence"][mine["flags"] & F_LAST != 0].astype(np.int64)
            assert (np.diff(mine["sequence"].astype(np.int64)) >= 0).all() and (
                np.diff(event_sequence) > 0
            ).all()


def test_zstd_file_holds_the_same_records(records: MboArray, tmp_path: Path) -> None:
    path = tmp_path / "demo.mbo.dbn.zst"
    write_demo_file(path, RECORDS, SEED)
    assert path.read_bytes()[:4] == ZSTD_MAGIC
    mbo_file = open_mbo_file(path)
    assert mbo_file.count_records() == RECORDS
    assert np.concatenate(list(mbo_file.batches(4096))).tobytes() == records.tobytes()
    assert db.DBNStore.from_file(path).to_ndarray().tobytes() == records.tobytes()


def test_too_few_records_for_the_opening_snapshot_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tiny.dbn"
    with pytest.raises(ValueError, match="opening snapshot"):
        write_demo_file(path, 50)
    assert not path.exists()
