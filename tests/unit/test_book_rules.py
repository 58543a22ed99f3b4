"""Databento's MBO book rules, one hand-built case each, small enough to check by reading.

Every case builds :class:`MboRecord` values with :func:`mbo`, packs them with ``records_to_array`` and runs them
through the real hot loop (``apply_records``) on a :class:`Market`, then reads the result back through
``receiver.book.views``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from databento_dbn import F_LAST, F_MAYBE_BAD_BOOK, F_SNAPSHOT, F_TOB, UNDEF_PRICE, Action, Side

from obm_shared.dbn import ASK, BID, MBO_RTYPE
from obm_shared.records import MboRecord, records_to_array
from receiver.book.accounting import SkipReason
from receiver.book.adapter import apply_records
from receiver.book.book import OrderBook
from receiver.book.market import Market
from receiver.book.views import BookView, book_view, format_price, level_orders, queue_position
from tests.unit.observers import CallbackObserver

INSTRUMENT = 1
PUBLISHER = 1


def px(price: str) -> int:
    """A decimal price as DBN fixed-point (1e-9 units): px("65.4") == 65_400_000_000."""
    return int(Decimal(price) * 1_000_000_000)


def mbo(
    action: str,
    side: str,
    price: int,
    size: int,
    order_id: int,
    flags: int = F_LAST,
    *,
    ts_recv: int = 1_000,
    ts_event: int | None = None,
    sequence: int = 0,
    publisher_id: int = PUBLISHER,
    instrument_id: int = INSTRUMENT,
) -> MboRecord:
    """One MBO record with sensible defaults: a complete event (F_LAST) on instrument 1 at publisher 1.

    ``action`` and ``side`` are databento_dbn's members (``Action.ADD``, ``Side.BID``): its stub types each member as
    ``str``, and ``str()`` of one is its one-character DBN code.
    """
    return MboRecord(
        ts_recv=ts_recv,
        ts_event=ts_recv - 10 if ts_event is None else ts_event,
        rtype=MBO_RTYPE,
        publisher_id=publisher_id,
        instrument_id=instrument_id,
        action=str(action),
        side=str(side),
        price=price,
        size=size,
        channel_id=0,
        order_id=order_id,
        flags=flags,
        ts_in_delta=0,
        sequence=sequence,
    )


def add(side: str, price: str, size: int, order_id: int, **kwargs: int) -> MboRecord:
    return mbo(Action.ADD, side, px(price), size, order_id, **kwargs)


def cancel(side: str, price: str, size: int, order_id: int, **kwargs: int) -> MboRecord:
    return mbo(Action.CANCEL, side, px(price), size, order_id, **kwargs)


def modify(side: str, price: str, size: int, order_id: int, **kwargs: int) -> MboRecord:
    return mbo(Action.MODIFY, side, px(price), size, order_id, **kwargs)


def clear(**kwargs: int) -> MboRecord:
    return mbo(Action.CLEAR, Side.NONE, UNDEF_PRICE, 0, 0, **kwargs)


def apply(
    market: Market, *records: MboRecord, on_event: Callable[[OrderBook, int, int, int], None] | None = None
) -> Market:
    apply_records(market, records_to_array(records), CallbackObserver(on_event) if on_event else None)
    return market


def replay(*records: MboRecord) -> Market:
    return apply(Market(), *records)


def book_of(market: Market, publisher_id: int = PUBLISHER) -> OrderBook:
    return market.books[(INSTRUMENT, publisher_id)]


def view(market: Market, publisher_id: int | None = PUBLISHER, depth: int = 20) -> BookView:
    return book_view(market, INSTRUMENT, publisher_id, depth)


def levels(market: Market, side: str, publisher_id: int | None = PUBLISHER) -> list[tuple[str, int, int]]:
    """(price, size, count) of every level of one side, best first."""
    book = view(market, publisher_id)
    return [
        (level.price, level.size, level.count) for level in (book.bids if side == Side.BID else book.asks)
    ]


def queue(market: Market, side: str, price: str) -> list[tuple[int, int]]:
    """(order_id, size) at one price, front of the queue first."""
    code = BID if side == Side.BID else ASK
    return [(order.order_id, order.size) for order in level_orders(book_of(market), code, px(price))]


def skipped(market: Market) -> dict[str, int]:
    return {str(reason): count for reason, count in market.accounting.skipped.items() if count}


def assert_balanced(market: Market) -> None:
    accounting = market.accounting
    assert accounting.balanced, f"records not accounted for: {accounting.as_dict()}"


# --- Add ---------------------------------------------------------------------------------------------------


def test_add_joins_the_back_of_its_level() -> None:
    market = replay(
        add(Side.BID, "10", 5, 1),
        add(Side.BID, "10", 3, 2),
        add(Side.BID, "10", 2, 3),
        add(Side.ASK, "11", 4, 4),
    )
    assert queue(market, Side.BID, "10") == [(1, 5), (2, 3), (3, 2)], "bid queue at 10 not in arrival order"
    assert levels(market, Side.BID) == [("10", 10, 3)]
    assert levels(market, Side.ASK) == [("11", 4, 1)]
    position = queue_position(book_of(market), 3)
    assert (position.side, position.price, position.position, position.size_ahead, position.size) == (
        "B",
        "10",
        2,
        8,
        2,
    ), f"order 3 should be third in the queue behind 8 lots, got {position}"
    assert queue_position(book_of(market), 1).position == 0
    assert market.accounting.applied == 4
    assert_balanced(market)


def test_levels_are_sorted_best_first() -> None:
    market = replay(
        add(Side.BID, "9.5", 1, 1),
        add(Side.BID, "10", 1, 2),
        add(Side.BID, "9.75", 1, 3),
        add(Side.ASK, "11", 1, 4),
        add(Side.ASK, "10.25", 1, 5),
        add(Side.ASK, "10.5", 1, 6),
    )
    assert [price for price, _, _ in levels(market, Side.BID)] == ["10", "9.75", "9.5"]
    assert [price for price, _, _ in levels(market, Side.ASK)] == ["10.25", "10.5", "11"]
    book = view(market)
    assert book.best_bid is not None and book.best_bid.price == "10"
    assert book.best_ask is not None and book.best_ask.price == "10.25"
    assert (book.spread, book.mid) == ("0.25", "10.125")


def test_add_with_side_none_is_skipped_as_invalid_side() -> None:
    market = replay(add(Side.NONE, "10", 5, 1))
    assert skipped(market) == {"invalid_side": 1}
    assert book_of(market).orders == {}
    assert_balanced(market)


def test_duplicate_add_is_skipped_and_keeps_the_first_order() -> None:
    market = replay(add(Side.BID, "10", 5, 1), add(Side.ASK, "11", 7, 1))
    assert skipped(market) == {"duplicate_order_id": 1}
    assert queue(market, Side.BID, "10") == [(1, 5)]
    assert levels(market, Side.ASK) == []
    assert_balanced(market)


def test_add_with_undefined_price_or_zero_size_is_skipped() -> None:
    market = replay(
        mbo(Action.ADD, Side.BID, UNDEF_PRICE, 5, 1),
        add(Side.BID, "10", 0, 2),
    )
    assert skipped(market) == {"undefined_price": 1, "invalid_size": 1}
    assert book_of(market).orders == {}
    assert_balanced(market)


# --- Cancel ------------------------------------------------------------------------------------------------


def test_partial_cancel_reduces_size_and_keeps_queue_place() -> None:
    market = replay(
        add(Side.BID, "10", 10, 1),
        add(Side.BID, "10", 5, 2),
        cancel(Side.BID, "10", 4, 1),
    )
    assert queue(market, Side.BID, "10") == [(1, 6), (2, 5)], (
        "partly cancelled order 1 must stay at the front"
    )
    assert levels(market, Side.BID) == [("10", 11, 2)]
    assert_balanced(market)


def test_full_cancel_removes_the_order_and_its_empty_level() -> None:
    market = replay(
        add(Side.BID, "10", 3, 1),
        add(Side.BID, "9", 2, 2),
        add(Side.ASK, "11", 1, 3),
        cancel(Side.BID, "10", 3, 1),
    )
    book = book_of(market)
    assert 1 not in book.orders
    assert px("10") not in book.bids, "the empty level at 10 should be gone"
    assert levels(market, Side.BID) == [("9", 2, 1)]
    assert view(market).bid_levels == 1
    assert view(market).orders == 2
    assert_balanced(market)


def test_cancel_of_an_unknown_order_is_counted_and_skipped() -> None:
    market = replay(add(Side.BID, "10", 3, 1), cancel(Side.BID, "10", 3, 99))
    assert skipped(market) == {"cancel_unknown_order": 1}
    assert market.accounting.skipped[SkipReason.CANCEL_UNKNOWN_ORDER] == 1
    assert queue(market, Side.BID, "10") == [(1, 3)]
    assert_balanced(market)


def test_cancel_of_more_than_rests_is_skipped_and_leaves_the_book_unchanged() -> None:
    market = replay(
        add(Side.ASK, "11", 5, 1),
        add(Side.ASK, "11", 2, 2),
        cancel(Side.ASK, "11", 6, 1),
    )
    assert skipped(market) == {"cancel_exceeds_size": 1}
    assert queue(market, Side.ASK, "11") == [(1, 5), (2, 2)]
    assert levels(market, Side.ASK) == [("11", 7, 2)]
    assert_balanced(market)


def test_cancel_with_side_none_is_skipped_as_invalid_side() -> None:
    market = replay(add(Side.ASK, "11", 5, 1), cancel(Side.NONE, "11", 5, 1))
    assert skipped(market) == {"invalid_side": 1}
    assert queue(market, Side.ASK, "11") == [(1, 5)]


# --- Modify ------------------------------------------------------------------------------------------------


def test_modify_to_a_new_price_loses_priority_and_goes_to_the_back_of_the_new_level() -> None:
    market = replay(
        add(Side.BID, "10", 5, 1),
        add(Side.BID, "10", 5, 2),
        add(Side.BID, "10.25", 4, 3),
        modify(Side.BID, "10.25", 5, 1),
    )
    assert queue(market, Side.BID, "10.25") == [(3, 4), (1, 5)], "moved order 1 must queue behind order 3"
    assert queue(market, Side.BID, "10") == [(2, 5)]
    assert levels(market, Side.BID) == [("10.25", 9, 2), ("10", 5, 1)]
    assert queue_position(book_of(market), 1).price == "10.25"
    assert_balanced(market)


def test_modify_away_from_a_level_removes_the_empty_level() -> None:
    market = replay(add(Side.ASK, "11", 5, 1), modify(Side.ASK, "12", 5, 1))
    assert levels(market, Side.ASK) == [("12", 5, 1)]
    assert px("11") not in book_of(market).asks


def test_modify_size_increase_loses_priority() -> None:
    market = replay(
        add(Side.ASK, "11", 5, 1),
        add(Side.ASK, "11", 5, 2),
        modify(Side.ASK, "11", 8, 1),
    )
    assert queue(market, Side.ASK, "11") == [(2, 5), (1, 8)], "order 1 grew, so it must go behind order 2"
    assert levels(market, Side.ASK) == [("11", 13, 2)]
    assert_balanced(market)


def test_modify_size_decrease_keeps_priority() -> None:
    market = replay(
        add(Side.ASK, "11", 5, 1),
        add(Side.ASK, "11", 5, 2),
        modify(Side.ASK, "11", 2, 1),
    )
    assert queue(market, Side.ASK, "11") == [(1, 2), (2, 5)], "order 1 shrank, so it must keep the front"
    assert levels(market, Side.ASK) == [("11", 7, 2)]


def test_modify_with_same_price_and_size_keeps_priority() -> None:
    market = replay(
        add(Side.ASK, "11", 5, 1),
        add(Side.ASK, "11", 5, 2),
        modify(Side.ASK, "11", 5, 1),
    )
    assert queue(market, Side.ASK, "11") == [(1, 5), (2, 5)]


def test_modify_of_an_unknown_order_is_an_add() -> None:
    market = replay(add(Side.BID, "10", 1, 1), modify(Side.BID, "10", 4, 7))
    assert queue(market, Side.BID, "10") == [(1, 1), (7, 4)], "unknown order 7 should join the back as an add"
    accounting = market.accounting
    assert accounting.modify_unknown_as_add == 1
    assert accounting.applied == 2, "a modify applied as an add is still an applied record"
    assert skipped(market) == {}
    assert_balanced(market)


def test_modify_with_side_none_is_skipped_as_invalid_side() -> None:
    market = replay(add(Side.BID, "10", 1, 1), modify(Side.NONE, "10", 4, 1))
    assert skipped(market) == {"invalid_side": 1}
    assert queue(market, Side.BID, "10") == [(1, 1)]


# --- Clear, ignored actions --------------------------------------------------------------------------------


def test_clear_empties_the_book_and_resets_maybe_bad() -> None:
    market = replay(
        add(Side.BID, "10", 5, 1),
        add(Side.ASK, "11", 5, 2, flags=F_LAST | F_MAYBE_BAD_BOOK),
    )
    assert view(market).maybe_bad, "F_MAYBE_BAD_BOOK should mark the book maybe bad"
    apply(market, clear())
    book = view(market)
    assert (book.orders, book.bid_levels, book.ask_levels) == (0, 0, 0)
    assert (book.best_bid, book.best_ask) == (None, None)
    assert not book.maybe_bad, "a Clear should reset maybe_bad"
    assert book_of(market).orders == {}
    assert_balanced(market)


def test_trade_fill_and_none_change_nothing_and_are_counted_as_ignored() -> None:
    market = replay(add(Side.BID, "10", 5, 1), add(Side.ASK, "11", 5, 2))
    before = view(market)
    apply(
        market,
        mbo(Action.TRADE, Side.ASK, px("10"), 5, 1),
        mbo(Action.FILL, Side.BID, px("10"), 5, 1),
        mbo(Action.NONE, Side.NONE, UNDEF_PRICE, 0, 0),
    )
    assert view(market) == before
    assert queue(market, Side.BID, "10") == [(1, 5)]
    assert market.accounting.ignored == 3
    assert market.accounting.applied == 2
    assert skipped(market) == {}
    assert_balanced(market)


def test_unknown_action_is_skipped() -> None:
    record = mbo(Action.ADD, Side.BID, px("10"), 5, 1)
    array = records_to_array([record])
    array["action"] = b"X"
    market = Market()
    apply_records(market, array)
    assert skipped(market) == {"unknown_action": 1}
    assert_balanced(market)


# --- Top of book -------------------------------------------------------------------------------------------


def test_top_of_book_add_replaces_the_whole_side_with_one_level_of_count_zero() -> None:
    tob = F_LAST | F_TOB
    market = replay(
        add(Side.BID, "10", 100, 0, flags=tob),
        add(Side.ASK, "10.5", 30, 0, flags=tob),
        add(Side.BID, "10.25", 50, 0, flags=tob),
    )
    assert levels(market, Side.BID) == [("10.25", 50, 0)], "a TOB add must replace the whole bid side"
    assert levels(market, Side.ASK) == [("10.5", 30, 0)]
    assert view(market).orders == 0
    apply(market, mbo(Action.ADD, Side.BID, UNDEF_PRICE, 0, 0, flags=tob))
    assert levels(market, Side.BID) == [], "a TOB add with UNDEF_PRICE must empty the bid side"
    assert levels(market, Side.ASK) == [("10.5", 30, 0)], "the other side is untouched"
    assert market.accounting.applied == 4
    assert_balanced(market)


def test_top_of_book_add_with_side_none_is_invalid_side() -> None:
    market = replay(add(Side.NONE, "10", 100, 0, flags=F_LAST | F_TOB))
    assert skipped(market) == {"invalid_side": 1}


@pytest.mark.parametrize("tob_price", ["11", "10"], ids=["tob-at-other-price", "tob-at-same-price"])
def test_top_of_book_add_on_a_side_with_orders_drops_them_from_the_index(tob_price: str) -> None:
    market = replay(add(Side.BID, "10", 1, 7), add(Side.BID, tob_price, 5, 0, flags=F_LAST | F_TOB))
    book = book_of(market)
    for order_id, level in book.orders.items():
        side_levels = book.bids if level.is_bid else book.asks
        assert side_levels.get(level.price) is level, (
            f"order {order_id} is indexed at {format_price(level.price)} but no level of the book holds it"
        )
    # a stale index entry made this a KeyError in the hot loop (other price) or deleted the TOB level (same)
    apply(market, cancel(Side.BID, "10", 1, 7))
    assert levels(market, Side.BID) == [(tob_price, 5, 0)], "the top-of-book level must survive"
    assert_balanced(market)


def test_snapshot_flag_is_an_ordinary_add() -> None:
    market = replay(
        clear(flags=F_SNAPSHOT),
        add(Side.BID, "10", 5, 1, flags=F_SNAPSHOT),
        add(Side.ASK, "11", 5, 2, flags=F_SNAPSHOT | F_LAST),
    )
    assert levels(market, Side.BID) == [("10", 5, 1)]
    assert levels(market, Side.ASK) == [("11", 5, 1)]
    assert market.accounting.events == 1


# --- Crossed and locked books ------------------------------------------------------------------------------


def test_crossed_book_is_reported_with_the_crossing_event_time_and_never_swapped() -> None:
    market = replay(add(Side.BID, "10", 1, 1, ts_recv=100), add(Side.ASK, "11", 1, 2, ts_recv=200))
    book = view(market)
    assert (book.crossed, book.locked, book.crossed_since_ns) == (False, False, None)

    apply(market, add(Side.BID, "12", 2, 3, ts_recv=300))
    book = view(market)
    assert book.crossed, "bid 12 over ask 11 should be crossed"
    assert not book.locked
    assert book.crossed_since_ns == 300, f"crossed since {book.crossed_since_ns}, expected ts_recv 300"
    assert book.best_bid is not None and (book.best_bid.price, book.best_bid.size) == ("12", 2)
    assert book.best_ask is not None and book.best_ask.price == "11", "crossed sides must not be swapped"
    assert levels(market, Side.BID) == [("12", 2, 1), ("10", 1, 1)]
    assert book.spread == "-1"

    apply(market, add(Side.BID, "12", 1, 4, ts_recv=400))
    assert view(market).crossed_since_ns == 300, "still crossed: since_ns must not move"

    apply(market, cancel(Side.BID, "12", 2, 3, ts_recv=500), cancel(Side.BID, "12", 1, 4, ts_recv=510))
    book = view(market)
    assert (book.crossed, book.locked, book.crossed_since_ns) == (False, False, None)


def test_locked_book_is_reported_locked_not_crossed() -> None:
    market = replay(
        add(Side.BID, "10", 1, 1, ts_recv=100),
        add(Side.ASK, "10", 1, 2, ts_recv=200),
    )
    book = view(market)
    assert book.locked, "bid 10 = ask 10 should be locked"
    assert not book.crossed
    assert book.crossed_since_ns == 200
    assert book.spread == "0"


def test_crossing_is_evaluated_at_event_boundaries_only() -> None:
    market = replay(
        add(Side.BID, "10", 1, 1, ts_recv=100),
        add(Side.ASK, "11", 1, 2, ts_recv=100),
        # one event: the crossing bid is added and then cancelled before F_LAST
        add(Side.BID, "12", 1, 3, flags=0, ts_recv=200),
        cancel(Side.BID, "12", 1, 3, ts_recv=210),
    )
    book = view(market)
    assert not book.crossed, "a crossing inside one event, undone by its F_LAST record, is not a crossed book"

    apply(
        market,
        add(Side.BID, "12", 1, 4, flags=0, ts_recv=300),
        add(Side.BID, "9", 1, 5, ts_recv=310),
    )
    book = view(market)
    assert book.crossed
    assert book.crossed_since_ns == 310, "since_ns is the ts_recv of the event's F_LAST record"


# --- Maybe bad book ----------------------------------------------------------------------------------------


def test_maybe_bad_book_flag_sticks_until_clear() -> None:
    market = replay(add(Side.BID, "10", 1, 1, flags=F_LAST | F_MAYBE_BAD_BOOK))
    assert view(market).maybe_bad
    apply(market, add(Side.BID, "10", 1, 2), cancel(Side.BID, "10", 1, 1))
    assert view(market).maybe_bad, "maybe_bad must stay set until a Clear"
    apply(market, clear())
    assert not view(market).maybe_bad
    apply(market, add(Side.BID, "10", 1, 3))
    assert not view(market).maybe_bad


def test_maybe_bad_within_one_batch_follows_record_order_and_publisher() -> None:
    flagged_then_cleared = replay(add(Side.BID, "10", 1, 1, flags=F_MAYBE_BAD_BOOK), clear(flags=F_LAST))
    assert not book_of(flagged_then_cleared).maybe_bad, "a later Clear in the same batch resets the mark"
    cleared_then_flagged = replay(clear(), add(Side.BID, "10", 1, 1, flags=F_LAST | F_MAYBE_BAD_BOOK))
    assert book_of(cleared_then_flagged).maybe_bad, "a mark after the Clear stays"
    flagged_clear = replay(add(Side.BID, "10", 1, 1), clear(flags=F_LAST | F_MAYBE_BAD_BOOK))
    assert book_of(flagged_clear).maybe_bad, "a Clear that carries the flag leaves the book marked"
    other_publisher = replay(
        add(Side.BID, "10", 1, 1, flags=F_LAST | F_MAYBE_BAD_BOOK, publisher_id=1),
        add(Side.BID, "10", 1, 2, flags=F_LAST, publisher_id=2),
        clear(flags=F_LAST, publisher_id=2),
    )
    assert book_of(other_publisher, 1).maybe_bad and not book_of(other_publisher, 2).maybe_bad


# --- Consolidated book -------------------------------------------------------------------------------------


def test_consolidated_book_sums_size_and_count_at_equal_prices() -> None:
    market = replay(
        add(Side.BID, "10", 5, 1, publisher_id=1),
        add(Side.BID, "10", 2, 2, publisher_id=1),
        add(Side.BID, "10", 3, 1, publisher_id=2),  # same order id at another publisher is another order
        add(Side.BID, "9.5", 4, 3, publisher_id=2),
        add(Side.ASK, "11", 6, 4, publisher_id=1),
        add(Side.ASK, "10.75", 100, 0, publisher_id=3, flags=F_LAST | F_TOB),
    )
    assert market.instrument_books(INSTRUMENT) == [book_of(market, 1), book_of(market, 2), book_of(market, 3)]
    assert levels(market, Side.BID, None) == [("10", 10, 3), ("9.5", 4, 1)]
    assert levels(market, Side.ASK, None) == [("10.75", 100, 0), ("11", 6, 1)]
    consolidated = view(market, None)
    assert consolidated.publisher_id is None
    assert (consolidated.orders, consolidated.bid_levels, consolidated.ask_levels) == (5, 2, 2)
    assert levels(market, Side.BID, 1) == [("10", 7, 2)]
    assert levels(market, Side.BID, 2) == [("10", 3, 1), ("9.5", 4, 1)]
    depth_one = book_view(market, INSTRUMENT, None, 1)
    assert [(level.price, level.size) for level in depth_one.bids] == [("10", 10)]


def test_consolidated_book_can_cross_while_each_publisher_is_not() -> None:
    market = replay(
        add(Side.BID, "10", 1, 1, publisher_id=1, ts_recv=100),
        add(Side.ASK, "10.5", 1, 1, publisher_id=2, ts_recv=200),
        add(Side.BID, "10.75", 1, 2, publisher_id=1, ts_recv=300),
    )
    consolidated = view(market, None)
    assert consolidated.crossed, "best bid 10.75 at publisher 1 over best ask 10.5 at publisher 2"
    assert consolidated.crossed_since_ns == 300
    assert not view(market, 1).crossed
    assert not view(market, 2).crossed


def test_book_view_of_an_unknown_book_is_a_key_error() -> None:
    market = replay(add(Side.BID, "10", 1, 1))
    with pytest.raises(KeyError):
        book_view(market, INSTRUMENT, 99, 10)
    with pytest.raises(KeyError):
        book_view(market, 999, None, 10)


@pytest.mark.parametrize(
    ("bid", "ask", "mid"),
    [
        ("99.5", "100.5", "100"),
        ("5214", "5214.25", "5214.125"),
        ("0.000000001", "0.000000002", "0.0000000015"),
    ],
)
def test_mid_price_is_plain_decimal_text(bid: str, ask: str, mid: str) -> None:
    market = replay(add(Side.BID, bid, 1, 1), add(Side.ASK, ask, 1, 2))
    assert view(market).mid == mid, f"mid {view(market).mid!r} expected {mid!r}"


# --- Observer and accounting -------------------------------------------------------------------------------


def test_on_event_is_called_once_per_f_last_record_with_its_fields() -> None:
    calls: list[tuple[int | None, int, int, int]] = []

    def observer(book: OrderBook, ts_event: int, ts_recv: int, sequence: int) -> None:
        calls.append((book.publisher_id, ts_event, ts_recv, sequence))

    market = Market()
    apply(
        market,
        add(Side.BID, "10", 1, 1, flags=0, ts_recv=100, ts_event=90, sequence=1),
        add(Side.BID, "10", 1, 2, flags=0, ts_recv=100, ts_event=90, sequence=2),
        add(Side.ASK, "11", 1, 3, ts_recv=101, ts_event=91, sequence=3),
        add(Side.ASK, "12", 1, 4, ts_recv=200, ts_event=190, sequence=4, publisher_id=2),
        mbo(Action.TRADE, Side.ASK, px("11"), 1, 3, ts_recv=300, ts_event=290, sequence=5),
        add(Side.ASK, "13", 1, 5, flags=0, ts_recv=400, ts_event=390, sequence=6),  # event left open
        on_event=observer,
    )
    assert calls == [(1, 91, 101, 3), (2, 190, 200, 4), (1, 290, 300, 5)]
    assert market.accounting.events == 3


def test_observer_sees_the_book_after_the_whole_event() -> None:
    seen: list[list[tuple[str, int, int]]] = []
    market = Market()

    def observer(book: OrderBook, ts_event: int, ts_recv: int, sequence: int) -> None:
        seen.append(levels(market, Side.BID))

    apply(
        market,
        add(Side.BID, "10", 1, 1, flags=0),
        add(Side.BID, "10", 2, 2),
        cancel(Side.BID, "10", 1, 1),
        on_event=observer,
    )
    assert seen == [[("10", 3, 2)], [("10", 2, 1)]]


def test_accounting_is_balanced_across_batches() -> None:
    market = replay(
        add(Side.BID, "10", 5, 1),
        add(Side.BID, "10", 5, 1),  # duplicate
        cancel(Side.BID, "10", 1, 42),  # unknown
        modify(Side.ASK, "11", 3, 2),  # unknown -> add
        mbo(Action.TRADE, Side.ASK, px("11"), 1, 2),
        cancel(Side.ASK, "11", 9, 2),  # exceeds
    )
    apply(market, add(Side.NONE, "10", 1, 3), clear(), mbo(Action.FILL, Side.BID, px("10"), 1, 1))
    accounting = market.accounting
    assert accounting.as_dict() == {
        "records": 9,
        "applied": 3,
        "ignored": 2,
        "skipped": {
            "cancel_exceeds_size": 1,
            "cancel_unknown_order": 1,
            "duplicate_order_id": 1,
            "invalid_side": 1,
        },
        "modify_unknown_as_add": 1,
        "events": 9,
    }
    assert_balanced(market)


def test_empty_batch_changes_nothing() -> None:
    market = Market()
    apply(market)
    assert market.accounting.as_dict()["records"] == 0
    assert market.books == {}
