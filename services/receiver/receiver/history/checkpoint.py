"""A whole :class:`Market` as bytes and back: the snapshot a point in history is rebuilt from.

A decoded market is indistinguishable from the one encoded: the same resting orders in the same queue order,
top-of-book levels, crossing state, maybe-bad marks, consolidated crossings, symbols and accounting, and the
same books after the same further records. Orders are kept as parallel lists of ints per side (msgpack
encodes and decodes those in C), so the cost per order is a few list and dict operations at C speed.
"""

from __future__ import annotations

from collections import Counter

import msgspec

from obm_shared.dbn import ASK, BID
from receiver.book.accounting import Accounting, SkipReason
from receiver.book.book import Levels, OrderBook
from receiver.book.crossing import Crossing
from receiver.book.market import Market


class SideState(msgspec.Struct, frozen=True, array_like=True):
    """One side's levels, ascending by price, and their orders level after level, in queue order."""

    prices: list[int]
    """Fixed-point prices, 1e-9 units."""
    sizes: list[int]
    """Each level's size: the sum of its orders', plus a top-of-book venue's size."""
    counts: list[int]
    """Orders in each level."""
    order_ids: list[int]
    order_sizes: list[int]


class CrossingState(msgspec.Struct, frozen=True, array_like=True):
    crossed: bool
    locked: bool
    since_ns: int | None


class BookState(msgspec.Struct, frozen=True, array_like=True):
    instrument_id: int
    publisher_id: int
    bids: SideState
    asks: SideState
    crossing: CrossingState
    maybe_bad: bool
    best_changed: bool
    """The best prices moved since the crossing was last evaluated (it is evaluated at the book's next event)."""


class AccountingState(msgspec.Struct, frozen=True):
    records: int
    applied: int
    ignored: int
    skipped: dict[str, int]
    """Skip reason -> records."""
    modify_unknown_as_add: int
    events: int


class MarketState(msgspec.Struct, frozen=True):
    """Everything a :class:`Market` holds, books in the market's own order."""

    symbols: dict[int, str]
    books: list[BookState]
    consolidated_crossings: dict[int, CrossingState]
    accounting: AccountingState


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(MarketState)


def encode(market: Market) -> bytes:
    """The market as msgpack bytes."""
    return _encoder.encode(market_state(market))


def decode(data: bytes) -> Market:
    """A market rebuilt from :func:`encode`'s bytes. Raises msgspec.ValidationError for other bytes."""
    return restore(_decoder.decode(data))


def market_state(market: Market) -> MarketState:
    """What the market holds, as plain structs."""
    accounting = market.accounting
    return MarketState(
        symbols=dict(market.symbols),
        books=[_book_state(book) for book in market.books.values()],
        consolidated_crossings={
            instrument_id: _crossing_state(crossing)
            for instrument_id, crossing in market.consolidated_crossings.items()
        },
        accounting=AccountingState(
            records=accounting.records,
            applied=accounting.applied,
            ignored=accounting.ignored,
            skipped={str(reason): count for reason, count in accounting.skipped.items()},
            modify_unknown_as_add=accounting.modify_unknown_as_add,
            events=accounting.events,
        ),
    )


def restore(state: MarketState) -> Market:
    """A market holding ``state``, its books rebuilt through their own restoring methods."""
    saved = state.accounting
    market = Market(
        symbols=dict(state.symbols),
        accounting=Accounting(
            records=saved.records,
            applied=saved.applied,
            ignored=saved.ignored,
            skipped=Counter({SkipReason(reason): count for reason, count in saved.skipped.items()}),
            modify_unknown_as_add=saved.modify_unknown_as_add,
            events=saved.events,
        ),
    )
    for book_state in state.books:
        book = market.book(book_state.instrument_id, book_state.publisher_id)
        _restore_side(book, BID, book_state.bids)
        _restore_side(book, ASK, book_state.asks)
        book.restore_marks(_crossing(book_state.crossing), book_state.maybe_bad, book_state.best_changed)
    # set after the books: a second publisher's book, as it is made, starts its instrument's anew
    market.consolidated_crossings.update(
        (instrument_id, _crossing(crossing))
        for instrument_id, crossing in state.consolidated_crossings.items()
    )
    return market


def _book_state(book: OrderBook) -> BookState:
    return BookState(
        instrument_id=book.instrument_id,
        publisher_id=book.publisher_id,
        bids=_side_state(book.bids),
        asks=_side_state(book.asks),
        crossing=_crossing_state(book.crossing),
        maybe_bad=book.maybe_bad,
        best_changed=book.best_changed,
    )


def _side_state(levels: Levels) -> SideState:
    sizes: list[int] = []
    counts: list[int] = []
    order_ids: list[int] = []
    order_sizes: list[int] = []
    for level in levels.values():
        sizes.append(level.size)
        counts.append(len(level.orders))
        order_ids.extend(level.orders)
        order_sizes.extend(level.orders.values())
    return SideState(list(levels.keys()), sizes, counts, order_ids, order_sizes)


def _restore_side(book: OrderBook, side: int, state: SideState) -> None:
    order_ids, order_sizes = state.order_ids, state.order_sizes
    start = 0
    for price, size, count in zip(state.prices, state.sizes, state.counts, strict=True):
        end = start + count
        book.restore_level(side, price, size, dict(zip(order_ids[start:end], order_sizes[start:end])))
        start = end


def _crossing_state(crossing: Crossing) -> CrossingState:
    return CrossingState(crossing.crossed, crossing.locked, crossing.since_ns)


def _crossing(state: CrossingState) -> Crossing:
    return Crossing(state.crossed, state.locked, state.since_ns)
