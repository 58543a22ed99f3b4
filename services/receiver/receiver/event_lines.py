"""Per-event JSON lines: the consolidated top levels of an instrument after each event (F_LAST boundary).

On the ingest path, :class:`EventCapturer` turns the book into an :class:`EventLine` struct; off it, the
writer encodes a batch of them with msgspec, in C. Capturing is kept cheap three ways:
- the books note what changed within the levels a line shows (see :class:`~receiver.book.side_changes.SideChanges`):
  an untouched side is the previous line's (immutable) list; where one level changed (per book), the side
  gets just that level replaced, put in its place, or taken out with the next level beyond brought in; only
  an event that changed several levels of a book's side makes the side be read again (few events do);
- each level is JSON text once: encoded when first seen and cached by (price, size, count), the count read as
  ``len(level.orders)`` (the ``PriceLevel.count`` property would add a call per level); a line holds its
  levels as ``msgspec.Raw``, so encoding it copies them instead of encoding them again;
- the line is JSON text only once, in the writer thread.

A line: ``{"ts_event", "ts_recv", "sequence", "instrument_id", "symbol", "best_bid", "best_ask",
"bids": [{"price": "65.4", "size": 1, "count": 1}, ...], "asks": [...], "crossed", "locked", "orders"}``,
with ``best_bid``/``best_ask`` null when that side is empty.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from itertools import islice
from operator import neg
from typing import Final

import msgspec

from obm_shared.dbn import ASK, BID
from receiver.book.adapter import EventObserver
from receiver.book.book import OrderBook
from receiver.book.market import Market
from receiver.book.views import best_prices, format_price, merged_raw_levels

LEVEL_CACHE_LIMIT: Final = 1 << 16
"""Levels kept before the cache starts over (bounds memory on long runs)."""


class EventLevel(msgspec.Struct, frozen=True, gc=False):
    """One price level in an event line: decimal price, aggregate size, order count."""

    price: str
    size: int
    count: int


class EventLine(msgspec.Struct, frozen=True, gc=False):
    """The consolidated book of one instrument right after an event."""

    ts_event: int
    ts_recv: int
    sequence: int
    instrument_id: int
    symbol: str
    best_bid: msgspec.Raw | None
    best_ask: msgspec.Raw | None
    bids: list[msgspec.Raw]
    asks: list[msgspec.Raw]
    crossed: bool
    locked: bool
    orders: int


_encoder = msgspec.json.Encoder()


def encode_lines(lines: Sequence[EventLine]) -> bytes:
    """Newline-delimited JSON, one line per event."""
    return _encoder.encode_lines(lines)


def encode_level(level: EventLevel) -> msgspec.Raw:
    """A level as the JSON text a line embeds."""
    return msgspec.Raw(_encoder.encode(level))


Side = tuple[list[msgspec.Raw], list[int]]
"""A side as last captured: its levels, and their raw prices."""


class _Instrument:
    """What the capturer keeps of one instrument: its books (the market's own list, so a publisher that appears
    later is seen), its sides at the last capture, its symbol."""

    __slots__ = ("asks", "bids", "books", "symbol")

    def __init__(self, market: Market, instrument_id: int) -> None:
        self.books = market.by_instrument[instrument_id]
        self.bids: Side | None = None
        self.asks: Side | None = None
        self.symbol = market.symbol(instrument_id)  # named by the stream's metadata, which comes first


class EventCapturer(EventObserver):
    """Captures the :class:`EventLine` of each event of one market, top ``depth`` levels per side."""

    def __init__(self, market: Market, depth: int) -> None:
        self.market = market
        self.depth = depth
        self._instruments: dict[int, _Instrument] = {}
        self._levels: dict[tuple[int, int, int], msgspec.Raw] = {}
        self._price_texts: dict[int, str] = {}
        self._captured: list[EventLine] = []

    def on_event(self, book: OrderBook, ts_event: int, ts_recv: int, sequence: int) -> None:
        """Capture the instrument's consolidated top levels after an event on ``book``, for :meth:`take`."""
        instrument_id = book.instrument_id
        instrument = self._instruments.get(instrument_id)
        if instrument is None:
            instrument = self._instruments[instrument_id] = _Instrument(self.market, instrument_id)
        books = instrument.books
        bids, asks = instrument.bids, instrument.asks
        if len(books) == 1:  # a side the event left alone costs two reads here
            if bids is None or book.bid_changes.changed():
                bids = instrument.bids = self._own_side(books, BID, bids)
            if asks is None or book.ask_changes.changed():
                asks = instrument.asks = self._own_side(books, ASK, asks)
            orders = len(book.orders)
            crossing = book.crossing
        else:  # one pass over the books finds the sides the event left alone
            orders = 0
            bids_noted = asks_noted = False
            for sibling in books:
                orders += len(sibling.orders)
                if sibling.bid_changes.changed():
                    bids_noted = True
                if sibling.ask_changes.changed():
                    asks_noted = True
            if bids is None or bids_noted:
                bids = instrument.bids = self._consolidated_side(books, BID, bids)
            if asks is None or asks_noted:
                asks = instrument.asks = self._consolidated_side(books, ASK, asks)
            crossing = self.market.consolidated_crossings[instrument_id]
        bid_levels, ask_levels = bids[0], asks[0]
        line = EventLine(
            ts_event,
            ts_recv,
            sequence,
            instrument_id,
            instrument.symbol,
            bid_levels[0] if bid_levels else None,
            ask_levels[0] if ask_levels else None,
            bid_levels,
            ask_levels,
            crossing.crossed,
            crossing.locked,
            orders,
        )
        self._captured.append(line)

    def take(self) -> list[EventLine]:
        """The lines captured since the last take, oldest first."""
        lines, self._captured = self._captured, []
        return lines

    def _own_side(self, books: list[OrderBook], side: int, last: Side | None) -> Side:
        """One side of an instrument's only book, which noted a change: the level it noted replaced, put in its
        place or taken out, or the side read again."""
        book = books[0]
        changes = book.changes(side)
        if last is None or changes.reread:
            return self._read(books, side)
        level = changes.take()
        assert level is not None  # the caller saw a note
        if book.levels(side).get(level.price) is level:  # changed in place, or came
            return self._put(books, side, last, level.price, level.size, len(level.orders))
        return self._removed(books, side, last, level.price)

    def _put(self, books: list[OrderBook], side: int, last: Side, price: int, size: int, count: int) -> Side:
        """The side with its level at ``price`` now of this size and count: replaced, or put in its place."""
        levels, prices = last
        level = self._level(price, size, count)
        if price in prices:
            levels = levels.copy()
            levels[prices.index(price)] = level
            return levels, prices
        at = bisect_left(prices, -price, key=neg) if side == BID else bisect_left(prices, price)
        if at == self.depth:  # beyond a full side
            return last
        levels, prices = levels.copy(), prices.copy()
        levels.insert(at, level)
        prices.insert(at, price)
        if len(prices) > self.depth:
            del levels[-1], prices[-1]
        self._watch(books, side, prices)
        return levels, prices

    def _removed(self, books: list[OrderBook], side: int, last: Side, price: int) -> Side:
        """The side without its level at ``price`` (gone from every book), and with the next level beyond it if
        it was full."""
        levels, prices = last
        if price not in prices:  # it came and went within the event
            return last
        at = prices.index(price)
        levels, prices = levels.copy(), prices.copy()
        del levels[at], prices[at]
        if len(prices) == self.depth - 1:
            self._append_next(books, side, levels, prices, last[1][-1])
        self._watch(books, side, prices)
        return levels, prices

    def _append_next(
        self, books: list[OrderBook], side: int, levels: list[msgspec.Raw], prices: list[int], edge: int
    ) -> None:
        """Append to the side the best level across the books beyond ``edge``, if there is one."""
        found = [
            price
            for book in books
            for price in islice(
                book.bids.irange(maximum=edge, inclusive=(True, False), reverse=True)
                if side == BID
                else book.asks.irange(minimum=edge, inclusive=(False, True)),
                1,
            )
        ]
        if not found:
            return
        price = max(found) if side == BID else min(found)
        size, count = _summed(books, side, price) or (0, 0)
        levels.append(self._level(price, size, count))
        prices.append(price)

    def _watch(self, books: list[OrderBook], side: int, prices: list[int]) -> None:
        """Have the books watch the prices of a side as captured: down to its last level when it is full."""
        full = len(prices) == self.depth
        for book in books:
            if full:
                book.changes(side).watch(prices[-1])
            else:
                book.changes(side).watch_all()

    def _consolidated_side(self, books: list[OrderBook], side: int, last: Side | None) -> Side:
        """One side across publishers, which noted a change: changed at the prices they noted, or read."""
        if last is None:
            return self._read(books, side)
        touched: list[int] = []
        for book in books:
            changes = book.changes(side)
            if changes.reread:
                return self._read(books, side)
            level = changes.take()
            if level is not None:
                touched.append(level.price)
        for price in touched:
            summed = _summed(books, side, price)
            if summed is None:
                last = self._removed(books, side, last, price)
            else:
                size, count = summed
                last = self._put(books, side, last, price, size, count)
        return last

    def _read(self, books: list[OrderBook], side: int) -> Side:
        """Read one side's top levels and watch them: reset the books' notes, set their watch limit."""
        levels: list[msgspec.Raw] = []
        prices: list[int] = []
        if len(books) == 1:  # the hottest read: one pass, no intermediate list of levels
            by_price = books[0].bids if side == BID else books[0].asks
            for price in best_prices(books[0], side, self.depth):
                level = by_price[price]
                size, count = level.size, len(level.orders)
                levels.append(self._level(price, size, count))
                prices.append(price)
        else:
            for price, size, count in merged_raw_levels(books, side, self.depth):
                levels.append(self._level(price, size, count))
                prices.append(price)
        for book in books:
            book.changes(side).reset()
        self._watch(books, side, prices)
        return levels, prices

    def _level(self, price: int, size: int, count: int) -> msgspec.Raw:
        """The JSON text of a level: made once per (price, size, count), then found in the cache."""
        key = (price, size, count)
        level = self._levels.get(key)
        if level is None:
            if len(self._levels) >= LEVEL_CACHE_LIMIT:
                self._levels.clear()
                self._price_texts.clear()
            text = self._price_texts.get(price)
            if text is None:  # a price comes back with many sizes: its text is made once
                text = self._price_texts[price] = format_price(price)
            level = self._levels[key] = encode_level(EventLevel(text, size, count))
        return level


def _summed(books: list[OrderBook], side: int, price: int) -> tuple[int, int] | None:
    """(size, count) of the level at ``price`` summed across the books, or None when no book has one."""
    size = count = 0
    exists = False
    for book in books:
        level = (book.bids if side == BID else book.asks).get(price)
        if level is not None:
            size, count, exists = size + level.size, count + len(level.orders), True
    return (size, count) if exists else None
