"""Replay the three real DBN files through the book and check the known final books and counts.

Each file is replayed once per batch size and cached for the module; failure messages speak in prices, sizes
and order counts as a trader would read them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from obm_shared.dbn_file import open_mbo_file
from receiver.book.adapter import apply_records
from receiver.book.book import OrderBook
from receiver.book.market import Market
from receiver.book.views import BookView, LevelView, book_view, market_views
from tests.unit.observers import CallbackObserver
from tests.unit.test_book_properties import expected_crossing

pytestmark = pytest.mark.realdata

CLX5_INSTRUMENT = 432669
ESM4_INSTRUMENT = 5602
GOOG, GOOGL = 7151, 7152
DEPTH = 10


@cache
def replay(path: str, records_per_batch: int = 65_536) -> Market:
    """The market after applying every record of ``path``, ``records_per_batch`` at a time."""
    mbo_file = open_mbo_file(path)
    market = Market(symbols=dict(mbo_file.metadata().instruments))
    for batch in mbo_file.batches(records_per_batch):
        apply_records(market, batch)
    return market


def market_of(path: Path, records_per_batch: int = 65_536) -> Market:
    return replay(str(path), records_per_batch)


def show(level: LevelView | None) -> str:
    if level is None:
        return "none"
    return f"{level.price} x {level.size} ({level.count} order{'s' if level.count != 1 else ''})"


def rows(levels: list[LevelView]) -> list[tuple[str, int, int]]:
    return [(level.price, level.size, level.count) for level in levels]


def assert_best(book: BookView, bid: tuple[str, int, int | None], ask: tuple[str, int, int | None]) -> None:
    """Best bid and ask as (price, size, orders); orders None when not checked."""
    where = f"{book.symbol} ({book.instrument_id}) publisher {book.publisher_id or 'consolidated'}"
    for side, got, (price, size, count) in (("bid", book.best_bid, bid), ("ask", book.best_ask, ask)):
        assert got is not None, f"{where}: no best {side}, expected {price} x {size}"
        got_tuple = (got.price, got.size) if count is None else (got.price, got.size, got.count)
        want_tuple = (price, size) if count is None else (price, size, count)
        want_text = f"{price} x {size}" + ("" if count is None else f" ({count} orders)")
        assert got_tuple == want_tuple, f"{where}: best {side} {show(got)}, expected {want_text}"


# --- CLX5 ---------------------------------------------------------------------------------------------------


def test_clx5_accounting(clx5: Path) -> None:
    accounting = market_of(clx5).accounting
    assert accounting.records == 38_212, f"{accounting.records} records applied, expected 38,212"
    skipped = {str(reason): count for reason, count in accounting.skipped.items() if count}
    assert skipped == {"cancel_unknown_order": 1224}, (
        f"skipped {skipped}, expected 1224 cancels of unknown orders"
    )
    assert accounting.modify_unknown_as_add == 216, (
        f"{accounting.modify_unknown_as_add} modifies of unknown orders added, expected 216"
    )
    assert accounting.balanced, f"records not accounted for: {accounting.as_dict()}"


@pytest.mark.parametrize("publisher_id", [None, 1], ids=["consolidated", "publisher-1"])
def test_clx5_final_book(clx5: Path, publisher_id: int | None) -> None:
    market = market_of(clx5)
    assert market.instruments() == [CLX5_INSTRUMENT]
    book = book_view(market, CLX5_INSTRUMENT, publisher_id, 5)
    assert book.symbol == "CLX5"
    assert book.orders == 147, f"{book.orders} orders rest in the book, expected 147"
    assert book.bid_levels == 61, f"{book.bid_levels} bid levels, expected 61"
    assert book.ask_levels == 52, f"{book.ask_levels} ask levels, expected 52"
    assert book.crossed, (
        f"book should end crossed: best bid {show(book.best_bid)}, best ask {show(book.best_ask)}"
    )
    assert not book.locked
    assert book.crossed_since_ns is not None, "a crossed book should say since when"
    assert_best(book, ("65.4", 1, 1), ("64.78", 3, 1))
    expected_bids = [("65.4", 1, 1), ("64.9", 10, 1), ("64.79", 1, 1), ("64.76", 1, 1), ("64.75", 9, 1)]
    expected_asks = [("64.78", 3, 1), ("64.79", 5, 3), ("64.8", 7, 2), ("64.81", 1, 1), ("64.82", 20, 3)]
    assert rows(book.bids) == expected_bids, f"top 5 bids (price, size, orders) {rows(book.bids)}"
    assert rows(book.asks) == expected_asks, f"top 5 asks (price, size, orders) {rows(book.asks)}"
    assert book.spread == "-0.62", f"spread {book.spread}, expected -0.62 (crossed)"


# --- ESM4 ---------------------------------------------------------------------------------------------------


def test_esm4_accounting(esm4: Path) -> None:
    accounting = market_of(esm4).accounting
    assert accounting.records == 13_796, f"{accounting.records} records applied, expected 13,796"
    skipped = {str(reason): count for reason, count in accounting.skipped.items() if count}
    assert skipped == {}, f"nothing should be skipped, got {skipped}"
    assert accounting.modify_unknown_as_add == 0, (
        f"{accounting.modify_unknown_as_add} modifies of unknown orders"
    )
    assert accounting.balanced, f"records not accounted for: {accounting.as_dict()}"


def test_esm4_final_book(esm4: Path) -> None:
    book = book_view(market_of(esm4), ESM4_INSTRUMENT, None, 5)
    assert book.symbol == "ESM4"
    assert book.orders == 13_598, f"{book.orders} orders rest in the book, expected 13,598"
    assert_best(book, ("5214", 28, 22), ("5214.25", 17, 11))
    assert not book.crossed and not book.locked
    assert (book.spread, book.mid) == ("0.25", "5214.125")


# --- DBEQ ---------------------------------------------------------------------------------------------------


def test_dbeq_accounting_and_publishers(dbeq: Path) -> None:
    market = market_of(dbeq)
    accounting = market.accounting
    assert accounting.records == 286_130, f"{accounting.records} records applied, expected 286,130"
    assert accounting.balanced, f"records not accounted for: {accounting.as_dict()}"
    assert market.instruments() == [GOOG, GOOGL]
    for instrument_id in (GOOG, GOOGL):
        publishers = [book.publisher_id for book in market.instrument_books(instrument_id)]
        assert publishers == [39, 40, 41], f"{market.symbol(instrument_id)} publishers {publishers}"


@pytest.mark.parametrize(
    ("instrument_id", "symbol", "bid", "ask"),
    [(GOOGL, "GOOGL", ("152.95", 700), ("154.53", 700)), (GOOG, "GOOG", ("154.62", 700), ("155.67", 700))],
    ids=["GOOGL", "GOOG"],
)
def test_dbeq_consolidated_best(
    dbeq: Path, instrument_id: int, symbol: str, bid: tuple[str, int], ask: tuple[str, int]
) -> None:
    book = book_view(market_of(dbeq), instrument_id, None, DEPTH)
    assert book.symbol == symbol
    assert book.publisher_id is None
    assert_best(book, (*bid, None), (*ask, None))
    assert not book.crossed


@pytest.mark.parametrize("instrument_id", [GOOG, GOOGL], ids=["GOOG", "GOOGL"])
@pytest.mark.parametrize("publisher_id", [40, 41])
def test_dbeq_top_of_book_publishers_have_levels_without_orders(
    dbeq: Path, instrument_id: int, publisher_id: int
) -> None:
    market = market_of(dbeq)
    book = book_view(market, instrument_id, publisher_id, DEPTH)
    where = f"{book.symbol} publisher {publisher_id}"
    assert book.orders == 0, f"{where}: top-of-book venue holds {book.orders} orders, expected none"
    assert book.bids or book.asks, f"{where}: no levels at all"
    for level in book.bids + book.asks:
        assert level.count == 0, f"{where}: level {show(level)} should have order count 0"
        assert level.size > 0, f"{where}: level {show(level)} has no size"
    assert book.bid_levels <= 1 and book.ask_levels <= 1, f"{where}: more than one level per side"


def test_dbeq_consolidated_levels_sum_publishers(dbeq: Path) -> None:
    market = market_of(dbeq)
    for instrument_id in (GOOG, GOOGL):
        consolidated = book_view(market, instrument_id, None, 1000)
        for side in ("bids", "asks"):
            totals: dict[int, list[int]] = {}
            for book in market.instrument_books(instrument_id):
                for level in getattr(book_view(market, instrument_id, book.publisher_id, 1000), side):
                    total = totals.setdefault(level.price_raw, [0, 0])
                    total[0] += level.size
                    total[1] += level.count
            got = {level.price_raw: [level.size, level.count] for level in getattr(consolidated, side)}
            assert got == totals, (
                f"{market.symbol(instrument_id)} consolidated {side} are not the publishers' sums"
            )


# --- batch size does not matter -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["clx5", "esm4", "dbeq"])
def test_batch_size_does_not_change_the_final_books(request: pytest.FixtureRequest, name: str) -> None:
    path: Path = request.getfixturevalue(name)
    small, large = market_of(path, 1_000), market_of(path, 65_536)
    assert small.accounting == large.accounting, f"{path.name}: accounting differs between batch sizes"
    small_views, large_views = market_views(small, DEPTH), market_views(large, DEPTH)
    assert len(small_views) == len(large_views)
    for got, want in zip(small_views, large_views, strict=True):
        assert got == want, (
            f"{path.name}: {got.symbol} publisher {got.publisher_id} differs with batches of 1,000: "
            f"best bid {show(got.best_bid)} vs {show(want.best_bid)}, best ask {show(got.best_ask)} vs "
            f"{show(want.best_ask)}"
        )


# --- crossing after every event -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["clx5", "dbeq"])
def test_crossing_after_every_event_matches_the_resting_prices(
    request: pytest.FixtureRequest, name: str
) -> None:
    """Crossing is only re-evaluated after events that move best prices; read after each event, it must
    still say what the levels say, for each publisher's book and the consolidated one (CLX5 is crossed or
    locked after 172 of its events; DBEQ has three publishers)."""
    path: Path = request.getfixturevalue(name)
    market = Market()
    crossed_events = 0

    def check(book: OrderBook, ts_event: int, ts_recv: int, sequence: int) -> None:
        nonlocal crossed_events
        books = market.instrument_books(book.instrument_id)
        where = f"{path.name}, sequence {sequence}"
        own = market.crossing(book.instrument_id, book.publisher_id)
        want = expected_crossing(list(book.bids), list(book.asks))
        assert (own.crossed, own.locked) == want, f"{where}: publisher {book.publisher_id} (crossed, locked)"
        consolidated = market.crossing(book.instrument_id, None)
        want = expected_crossing(
            [price for sibling in books for price in sibling.bids],
            [price for sibling in books for price in sibling.asks],
        )
        assert (consolidated.crossed, consolidated.locked) == want, f"{where}: consolidated (crossed, locked)"
        crossed_events += any(want)

    for batch in open_mbo_file(path).batches(8_192):
        apply_records(market, batch, CallbackObserver(check))
    assert crossed_events > 0, "no crossed or locked event: the check proved nothing"
