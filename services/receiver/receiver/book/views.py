"""Read-only views of books: depth, BBO, spread, mid, imbalance, queues, and the consolidated book.

Views are plain msgspec Structs with prices both raw (fixed-point 1e-9) and as exact decimal strings, the
one place where prices are converted for people to read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from itertools import islice

import msgspec

from obm_shared.dbn import ASK, BID, PRICE_SCALE
from receiver.book.book import OrderBook
from receiver.book.level import PriceLevel
from receiver.book.market import Market


def format_price(raw: int) -> str:
    """Exact decimal text of a fixed-point price: 65400000000 -> "65.4"."""
    whole, fraction = divmod(abs(raw), PRICE_SCALE)
    sign = "-" if raw < 0 else ""
    if not fraction:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:09d}".rstrip("0")


class LevelView(msgspec.Struct, frozen=True):
    """One price level: aggregate size and order count (0 for a top-of-book venue's level)."""

    price: str
    price_raw: int
    size: int
    count: int


class QueuedOrder(msgspec.Struct, frozen=True):
    """An order in a level's queue, front first."""

    order_id: int
    size: int


class QueuePosition(msgspec.Struct, frozen=True):
    """Where one order waits: its level, its place (0 = front) and the size queued ahead of it."""

    order_id: int
    side: str
    price: str
    position: int
    size_ahead: int
    size: int


class BookView(msgspec.Struct, frozen=True):
    """A book at an event boundary. ``publisher_id`` is None for the consolidated book of an instrument."""

    instrument_id: int
    symbol: str
    publisher_id: int | None
    orders: int
    bid_levels: int
    ask_levels: int
    crossed: bool
    locked: bool
    crossed_since_ns: int | None
    maybe_bad: bool
    best_bid: LevelView | None
    best_ask: LevelView | None
    spread: str | None
    mid: str | None
    imbalance: float | None
    """(bid size - ask size) / (bid size + ask size) at the best prices, in [-1, 1]."""
    bids: list[LevelView]
    asks: list[LevelView]


def level_view(level: PriceLevel) -> LevelView:
    """A level as a view."""
    return LevelView(format_price(level.price), level.price, level.size, level.count)


def best_prices(book: OrderBook, side: int, depth: int) -> Iterator[int]:
    """The best ``depth`` prices of one side, best first.

    Iterates the SortedDict itself, never indexing it or its views: positional access rebuilds the
    SortedDict's position tree after every change, which costs more than the whole event.
    """
    if side == BID:
        return islice(reversed(book.bids), depth)
    return islice(iter(book.asks), depth)


def merged_raw_levels(books: Sequence[OrderBook], side: int, depth: int) -> list[tuple[int, int, int]]:
    """Best ``depth`` (price, size, count) across books, sizes and counts summed where prices are equal."""
    sizes: dict[int, int] = {}
    counts: dict[int, int] = {}
    for book in books:
        levels = book.bids if side == BID else book.asks
        for price in best_prices(book, side, depth):
            level = levels[price]
            if price in sizes:
                sizes[price] += level.size
                counts[price] += len(level.orders)
            else:
                sizes[price] = level.size
                counts[price] = len(level.orders)
    prices = sorted(sizes, reverse=side == BID)[:depth]
    return [(price, sizes[price], counts[price]) for price in prices]


def merged_levels(books: Sequence[OrderBook], side: int, depth: int) -> list[LevelView]:
    """Best ``depth`` levels across books, sizes and counts summed where prices are equal."""
    return [
        LevelView(format_price(p), p, size, count) for p, size, count in merged_raw_levels(books, side, depth)
    ]


def _spread_mid_imbalance(
    bid: LevelView | None, ask: LevelView | None
) -> tuple[str | None, str | None, float | None]:
    if bid is None or ask is None:
        return None, None, None
    spread = format_price(ask.price_raw - bid.price_raw)
    mid = format((Decimal(bid.price_raw + ask.price_raw) / 2 / PRICE_SCALE).normalize(), "f")
    total = bid.size + ask.size
    imbalance = (bid.size - ask.size) / total if total else None
    return spread, mid, imbalance


def _distinct_prices(books: Iterable[OrderBook], side: int) -> int:
    prices: set[int] = set()
    for book in books:
        prices.update((book.bids if side == BID else book.asks).keys())
    return len(prices)


def book_view(market: Market, instrument_id: int, publisher_id: int | None, depth: int) -> BookView:
    """One publisher's book, or the consolidated book of the instrument when ``publisher_id`` is None."""
    books = market.instrument_books(instrument_id)
    if publisher_id is not None:
        books = [book for book in books if book.publisher_id == publisher_id]
    if not books:
        raise KeyError((instrument_id, publisher_id))
    bids = merged_levels(books, BID, max(depth, 1))
    asks = merged_levels(books, ASK, max(depth, 1))
    best_bid = bids[0] if bids else None
    best_ask = asks[0] if asks else None
    spread, mid, imbalance = _spread_mid_imbalance(best_bid, best_ask)
    crossing = market.crossing(instrument_id, publisher_id)
    return BookView(
        instrument_id=instrument_id,
        symbol=market.symbol(instrument_id),
        publisher_id=publisher_id,
        orders=sum(len(book.orders) for book in books),
        bid_levels=_distinct_prices(books, BID) if len(books) > 1 else len(books[0].bids),
        ask_levels=_distinct_prices(books, ASK) if len(books) > 1 else len(books[0].asks),
        crossed=crossing.crossed,
        locked=crossing.locked,
        crossed_since_ns=crossing.since_ns,
        maybe_bad=any(book.maybe_bad for book in books),
        best_bid=best_bid,
        best_ask=best_ask,
        spread=spread,
        mid=mid,
        imbalance=imbalance,
        bids=bids[:depth],
        asks=asks[:depth],
    )


def market_views(
    market: Market, depth: int, per_publisher: bool = True, only: int | None = None
) -> list[BookView]:
    """For each instrument (or ``only`` that one): its consolidated book, then optionally each publisher's.
    Raises KeyError for an instrument without a book."""
    if only is not None and only not in market.by_instrument:
        raise KeyError(only)
    views = []
    for instrument_id in market.instruments() if only is None else [only]:
        views.append(book_view(market, instrument_id, None, depth))
        if per_publisher:
            for book in market.instrument_books(instrument_id):
                views.append(book_view(market, instrument_id, book.publisher_id, depth))
    return views


def books_document(
    market: Market, depth: int, instrument_id: int | None, publisher_id: int | None, per_publisher: bool
) -> dict[str, object]:
    """The books a read names (every instrument's, one instrument's, or one publisher's book of one) and the
    market's instruments with their publishers; raises KeyError for a book the market does not have."""
    if instrument_id is None:
        books = market_views(market, depth, per_publisher)
    elif publisher_id is None:
        books = market_views(market, depth, per_publisher, only=instrument_id)
    else:
        books = [book_view(market, instrument_id, publisher_id, depth)]
    instruments = [
        {
            "instrument_id": iid,
            "symbol": market.symbol(iid),
            "publishers": [book.publisher_id for book in market.instrument_books(iid)],
        }
        for iid in market.instruments()
    ]
    return {"instruments": instruments, "books": books}


def level_orders(book: OrderBook, side: int, price: int) -> list[QueuedOrder]:
    """The orders queued at one price, front of the queue first."""
    level = book.levels(side).get(price)
    if level is None:
        return []
    return [QueuedOrder(order_id, size) for order_id, size in level.orders.items()]


def queue_position(book: OrderBook, order_id: int) -> QueuePosition:
    """Where an order waits in its level's queue. Raises KeyError for an unknown order."""
    level = book.orders[order_id]
    ahead = list(islice(level.orders.values(), level.queue_position(order_id)))
    return QueuePosition(
        order_id=order_id,
        side="B" if level.is_bid else "A",
        price=format_price(level.price),
        position=len(ahead),
        size_ahead=sum(ahead),
        size=level.orders[order_id],
    )
