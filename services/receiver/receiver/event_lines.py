"""Per-event JSON lines: the consolidated top levels of an instrument after each event (F_LAST boundary).

On the ingest path, :class:`EventCapturer` turns the book into an :class:`EventLine` struct; off it, the
writer encodes a batch of them with msgspec, in C. Capturing is kept cheap three ways:
- the books note what changed within the levels a line shows (see :class:`~receiver.book.book.OrderBook`):
  an untouched side is the previous line's (immutable) list, a side where levels changed size or count in
  place gets just those levels replaced, and only a level appearing or going makes the side be read again;
- each level is JSON text once: encoded when first seen and cached by (price, size, count), the count read as
  ``len(level.orders)`` (the ``PriceLevel.count`` property would add a call per level); a line holds its
  levels as ``msgspec.Raw``, so encoding it copies them (this cut encoding from 1.05 to 0.40 us a record);
- the line is JSON text only once, in the writer thread.

A line: ``{"ts_event", "ts_recv", "sequence", "instrument_id", "symbol", "best_bid", "best_ask",
"bids": [{"price": "65.4", "size": 1, "count": 1}, ...], "asks": [...], "crossed", "locked", "orders"}``,
with ``best_bid``/``best_ask`` null when that side is empty.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from receiver.book.book import ASK, BID, NO_ASK, NO_BID, OrderBook
from receiver.book.market import Market
from receiver.book.views import best_prices, format_price, merged_raw_levels

LEVEL_CACHE_LIMIT = 1 << 20
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


class EventCapturer:
    """Captures the :class:`EventLine` of each event of one market, top ``depth`` levels per side."""

    def __init__(self, market: Market, depth: int) -> None:
        self.market = market
        self.depth = depth
        self._bids: dict[int, Side] = {}
        self._asks: dict[int, Side] = {}
        """instrument_id -> the side at its last capture."""
        self._levels: dict[tuple[int, int, int], msgspec.Raw] = {}
        self._price_texts: dict[int, str] = {}
        self._symbols: dict[int, str] = {}
        self._captured: list[EventLine] = []

    def capture(self, book: OrderBook, ts_event: int, ts_recv: int, sequence: int) -> EventLine:
        """The instrument's consolidated top levels after an event on ``book``; also kept for :meth:`take`."""
        instrument_id = book.instrument_id
        books = self.market.by_instrument[instrument_id]
        bids = self._bids.get(instrument_id)
        asks = self._asks.get(instrument_id)
        if len(books) == 1:  # a side the event left alone costs two reads here, not a call
            if bids is None or book.bids_top_changed or book.bids_touched is not None:
                bids = self._bids[instrument_id] = self._own_side(book, BID, bids)
            if asks is None or book.asks_top_changed or book.asks_touched is not None:
                asks = self._asks[instrument_id] = self._own_side(book, ASK, asks)
            orders = len(book.orders)
            crossing = book.crossing
        else:
            bids = self._bids[instrument_id] = self._consolidated_side(books, BID, bids)
            asks = self._asks[instrument_id] = self._consolidated_side(books, ASK, asks)
            orders = sum(len(sibling.orders) for sibling in books)
            crossing = self.market.crossing(instrument_id, None)
        symbol = self._symbols.get(instrument_id)
        if symbol is None:  # named by the stream's metadata, which comes before its records
            symbol = self._symbols[instrument_id] = self.market.symbol(instrument_id)
        bid_levels, ask_levels = bids[0], asks[0]
        line = EventLine(
            ts_event,
            ts_recv,
            sequence,
            instrument_id,
            symbol,
            bid_levels[0] if bid_levels else None,
            ask_levels[0] if ask_levels else None,
            bid_levels,
            ask_levels,
            crossing.crossed,
            crossing.locked,
            orders,
        )
        self._captured.append(line)
        return line

    def take(self) -> list[EventLine]:
        """The lines captured since the last take, oldest first."""
        lines, self._captured = self._captured, []
        return lines

    def _patched(self, side: Side, key: tuple[int, int, int]) -> Side:
        """The side with the level at this (price, size, count) replaced; it was, and still is, in the side."""
        levels, prices = side
        patched = levels.copy()
        patched[prices.index(key[0])] = self._levels.get(key) or self._new_level(key)
        return patched, prices

    def _own_side(self, book: OrderBook, side: int, last: Side | None) -> Side:
        """One side of an instrument's only book: as last captured, patched at the level changed, or read."""
        top_changed, touched = (
            (book.bids_top_changed, book.bids_touched)
            if side == BID
            else (book.asks_top_changed, book.asks_touched)
        )
        if last is None or top_changed:
            return self._read([book], side)
        if touched is None:
            return last
        if side == BID:
            book.bids_touched = None
        else:
            book.asks_touched = None
        return self._patched(last, (touched.price, touched.size, len(touched.orders)))

    def _consolidated_side(self, books: list[OrderBook], side: int, last: Side | None) -> Side:
        """One side across publishers: as last captured, patched at the prices changed in place, or read."""
        if last is None:
            return self._read(books, side)
        touched: list[int] = []
        for book in books:
            if book.bids_top_changed if side == BID else book.asks_top_changed:
                return self._read(books, side)
            level = book.bids_touched if side == BID else book.asks_touched
            if level is not None:
                touched.append(level.price)
        if not touched:
            return last
        for book in books:
            if side == BID:
                book.bids_touched = None
            else:
                book.asks_touched = None
        patched = last
        for price in touched:  # the level each book changed, summed across the books at its price
            size = count = 0
            for book in books:
                level = (book.bids if side == BID else book.asks).get(price)
                if level is not None:
                    size, count = size + level.size, count + len(level.orders)
            patched = self._patched(patched, (price, size, count))
        return patched

    def _read(self, books: Sequence[OrderBook], side: int) -> Side:
        """Read one side's top levels and watch them: reset the books' notes, set their watch limit."""
        cached, new = self._levels.get, self._new_level
        levels: list[msgspec.Raw] = []
        prices: list[int] = []
        if len(books) == 1:  # the hottest read: one pass, no intermediate list of levels
            by_price = books[0].bids if side == BID else books[0].asks
            for price in best_prices(books[0], side, self.depth):
                level = by_price[price]
                key = (price, level.size, len(level.orders))
                levels.append(cached(key) or new(key))
                prices.append(price)
        else:
            for key in merged_raw_levels(books, side, self.depth):
                levels.append(cached(key) or new(key))
                prices.append(key[0])
        limit = prices[-1] if len(prices) == self.depth else None
        for book in books:
            if side == BID:
                book.bid_watch_floor = NO_BID if limit is None else limit
                book.bids_top_changed, book.bids_touched = False, None
            else:
                book.ask_watch_ceiling = NO_ASK if limit is None else limit
                book.asks_top_changed, book.asks_touched = False, None
        return levels, prices

    def _new_level(self, key: tuple[int, int, int]) -> msgspec.Raw:
        if len(self._levels) >= LEVEL_CACHE_LIMIT:
            self._levels.clear()
            self._price_texts.clear()
        price, size, count = key
        text = self._price_texts.get(price)
        if text is None:  # a price comes back with many sizes: its text is made once
            text = self._price_texts[price] = format_price(price)
        level = self._levels[key] = encode_level(EventLevel(text, size, count))
        return level
