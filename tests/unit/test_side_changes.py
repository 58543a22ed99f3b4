"""A book notes its changes in one SideChanges per side; its observer reads, takes and resets them."""

from __future__ import annotations

from obm_shared.dbn import ASK, BID
from receiver.book.book import OrderBook


def read_book() -> OrderBook:
    """A book with bids at 10 and 9, an ask at 11, whose observer has just read both sides."""
    book = OrderBook(1, 1)
    book.add(1, BID, 10, 5)
    book.add(2, BID, 9, 5)
    book.add(3, ASK, 11, 5)
    for side in (BID, ASK):
        book.changes(side).reset()
    return book


def test_a_new_book_asks_for_a_read() -> None:
    book = OrderBook(1, 1)
    assert book.bid_changes.reread and book.ask_changes.reread


def test_one_changed_level_is_handed_over_once() -> None:
    book = read_book()
    book.add(4, BID, 10, 1)
    book.cancel(4, BID, 1)
    assert book.bid_changes.changed() and not book.bid_changes.reread
    assert not book.ask_changes.changed(), "a bid changed, yet the ask side says it changed"
    level = book.bid_changes.take()
    assert level is not None and level.price == 10
    assert book.bid_changes.take() is None and not book.bid_changes.changed()


def test_a_second_changed_level_asks_for_a_read() -> None:
    book = read_book()
    book.cancel(1, BID, 5)
    book.add(5, BID, 9, 1)
    assert book.bid_changes.reread


def test_changes_beyond_the_watched_limit_are_not_noted() -> None:
    book = read_book()
    book.bid_changes.watch(10)  # the observer shows the bids down to 10
    book.ask_changes.watch(11)
    book.add(4, BID, 9, 1)
    book.add(5, BID, 8, 1)
    book.add(6, ASK, 12, 1)
    assert not book.bid_changes.changed() and not book.ask_changes.changed()
    book.ask_changes.watch_all()
    book.add(7, ASK, 13, 1)
    assert book.ask_changes.changed()


def test_a_replaced_or_cleared_side_asks_for_a_read() -> None:
    book = read_book()
    book.replace_top_of_book(ASK, 12, 3)
    assert book.ask_changes.reread and not book.bid_changes.changed()
    book.ask_changes.reset()
    book.clear()
    assert book.bid_changes.reread and book.ask_changes.reread
