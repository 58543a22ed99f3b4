"""Per-event JSON lines: the consolidated top levels of an instrument after each event (F_LAST boundary).

On the ingest path, :class:`EventCapturer` turns the book into an :class:`EventLine` struct; off it, the
writer encodes a batch of them with msgspec, in C. Capturing is kept cheap three ways:
- a side is read again only when the event changed its top levels (the books flag such changes, see
  :class:`~receiver.book.book.OrderBook`); an unchanged side is the previous line's (immutable) list;
- each level is an immutable struct with its decimal price already formatted, cached by (price, size, count);
- the line is JSON text only once, in the writer thread.

A line: ``{"ts_event", "ts_recv", "sequence", "instrument_id", "symbol", "best_bid", "best_ask",
"bids": [{"price": "65.4", "size": 1, "count": 1}, ...], "asks": [...], "crossed", "locked", "orders"}``,
with ``best_bid``/``best_ask`` null when that side is empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice

import msgspec

from receiver.book.book import ASK, BID, NO_ASK, NO_BID, OrderBook
from receiver.book.market import Market
from receiver.book.views import format_price, merged_raw_levels

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
    best_bid: EventLevel | None
    best_ask: EventLevel | None
    bids: list[EventLevel]
    asks: list[EventLevel]
    crossed: bool
    locked: bool
    orders: int


_encoder = msgspec.json.Encoder()


def encode_lines(lines: Sequence[EventLine]) -> bytes:
    """Newline-delimited JSON, one line per event."""
    return _encoder.encode_lines(lines)


class EventCapturer:
    """Captures the :class:`EventLine` of each event of one market, top ``depth`` levels per side."""

    def __init__(self, market: Market, depth: int) -> None:
        self.market = market
        self.depth = depth
        self._bids: dict[int, list[EventLevel]] = {}
        self._asks: dict[int, list[EventLevel]] = {}
        """instrument_id -> the side's levels at its last capture."""
        self._levels: dict[tuple[int, int, int], EventLevel] = {}

    def capture(self, book: OrderBook, ts_event: int, ts_recv: int, sequence: int) -> EventLine:
        """The instrument's consolidated top levels after an event on ``book``."""
        instrument_id = book.instrument_id
        books = self.market.by_instrument[instrument_id]
        if len(books) == 1:
            bids_changed, asks_changed = book.bids_top_changed, book.asks_top_changed
            orders = len(book.orders)
            crossing = book.crossing
        else:
            bids_changed = any([sibling.bids_top_changed for sibling in books])
            asks_changed = any([sibling.asks_top_changed for sibling in books])
            orders = sum(len(sibling.orders) for sibling in books)
            crossing = self.market.crossing(instrument_id, None)
        bids = self._bids.get(instrument_id)
        if bids is None or bids_changed:
            bids = self._bids[instrument_id] = self._read(books, BID)
        asks = self._asks.get(instrument_id)
        if asks is None or asks_changed:
            asks = self._asks[instrument_id] = self._read(books, ASK)
        return EventLine(
            ts_event,
            ts_recv,
            sequence,
            instrument_id,
            self.market.symbol(instrument_id),
            bids[0] if bids else None,
            asks[0] if asks else None,
            bids,
            asks,
            crossing.crossed,
            crossing.locked,
            orders,
        )

    def _read(self, books: Sequence[OrderBook], side: int) -> list[EventLevel]:
        """Read one side's top levels and watch them: reset the books' flags, set their watch limit."""
        cached, new = self._levels.get, self._new_level
        levels: list[EventLevel] = []
        last_price = 0
        if len(books) == 1:  # one pass over the SortedDict itself, as in views.top_levels: the hottest read
            by_price = books[0].bids if side == BID else books[0].asks
            for last_price in islice(reversed(by_price) if side == BID else iter(by_price), self.depth):
                level = by_price[last_price]
                key = (last_price, level.size, level.count)
                levels.append(cached(key) or new(key))
        else:
            for key in merged_raw_levels(books, side, self.depth):
                last_price = key[0]
                levels.append(cached(key) or new(key))
        full = len(levels) == self.depth
        for book in books:
            if side == BID:
                book.bid_watch_floor = last_price if full else NO_BID
                book.bids_top_changed = False
            else:
                book.ask_watch_ceiling = last_price if full else NO_ASK
                book.asks_top_changed = False
        return levels

    def _new_level(self, key: tuple[int, int, int]) -> EventLevel:
        if len(self._levels) >= LEVEL_CACHE_LIMIT:
            self._levels.clear()
        price, size, count = key
        level = self._levels[key] = EventLevel(format_price(price), size, count)
        return level
