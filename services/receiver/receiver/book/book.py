"""The L3 order book of one instrument at one publisher, with Databento's MBO rules.

Prices are fixed-point integers (1e-9 units); sides are DBN side codes (``ord("B")``, ``ord("A")``).
A record that breaks a rule raises :class:`SkippedRecord` and leaves the book unchanged.
"""

from __future__ import annotations

from databento_dbn import UNDEF_PRICE, Side
from sortedcontainers import SortedDict

from receiver.book.accounting import SkipReason
from receiver.book.level import PriceLevel

BID = ord(Side.BID.value)
ASK = ord(Side.ASK.value)


class SkippedRecord(Exception):
    """A record that cannot be applied; the book is unchanged."""

    def __init__(self, reason: SkipReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


Levels = SortedDict  # price -> PriceLevel, ascending


class OrderBook:
    """Price levels per side in :class:`SortedDict` (ascending: best bid last, best ask first), each level a
    FIFO queue of orders, plus an index from order id to where the order rests."""

    __slots__ = ("instrument_id", "publisher_id", "bids", "asks", "orders", "maybe_bad")

    def __init__(self, instrument_id: int, publisher_id: int) -> None:
        self.instrument_id = instrument_id
        self.publisher_id = publisher_id
        self.bids: Levels = SortedDict()
        self.asks: Levels = SortedDict()
        self.orders: dict[int, tuple[Levels, int]] = {}
        """order_id -> (the side's levels, price)."""
        self.maybe_bad = False
        """Set by F_MAYBE_BAD_BOOK; cleared by the next Clear."""

    def levels(self, side: int) -> Levels:
        """The price levels of ``side``; a side other than bid or ask cannot rest in a book."""
        if side == BID:
            return self.bids
        if side == ASK:
            return self.asks
        raise SkippedRecord(SkipReason.INVALID_SIDE)

    def add(self, order_id: int, side: int, price: int, size: int) -> None:
        """A new order joins the back of its price level."""
        levels = self.levels(side)
        if price == UNDEF_PRICE:
            raise SkippedRecord(SkipReason.UNDEFINED_PRICE)
        if size <= 0:
            raise SkippedRecord(SkipReason.INVALID_SIZE)
        if order_id in self.orders:
            raise SkippedRecord(SkipReason.DUPLICATE_ORDER_ID)
        level = levels.get(price)
        if level is None:
            level = levels[price] = PriceLevel(price)
        level.append(order_id, size)
        self.orders[order_id] = (levels, price)

    def replace_top_of_book(self, side: int, price: int, size: int) -> None:
        """A top-of-book venue's add: the side becomes this one level (or empty for an undefined price)."""
        levels = self.levels(side)
        levels.clear()
        if price != UNDEF_PRICE:
            levels[price] = PriceLevel.top_of_book(price, size)

    def cancel(self, order_id: int, side: int, size: int) -> None:
        """Reduce an order by ``size``; it leaves the book at zero."""
        self.levels(side)
        entry = self.orders.get(order_id)
        if entry is None:
            raise SkippedRecord(SkipReason.CANCEL_UNKNOWN_ORDER)
        levels, price = entry
        level = levels[price]
        resting = level.orders[order_id]
        if size > resting:
            raise SkippedRecord(SkipReason.CANCEL_EXCEEDS_SIZE)
        if size < resting:
            level.resize(order_id, resting - size)
            return
        level.remove(order_id)
        del self.orders[order_id]
        if not level.count:
            del levels[price]

    def modify(self, order_id: int, side: int, price: int, size: int) -> bool:
        """Change an order's price or size. A new price or a larger size sends it to the back of the queue;
        a smaller size keeps its place. An unknown order is added. Returns True when it was added."""
        new_levels = self.levels(side)
        entry = self.orders.get(order_id)
        if entry is None:
            self.add(order_id, side, price, size)
            return True
        if price == UNDEF_PRICE:
            raise SkippedRecord(SkipReason.UNDEFINED_PRICE)
        if size <= 0:
            raise SkippedRecord(SkipReason.INVALID_SIZE)
        levels, old_price = entry
        level = levels[old_price]
        if new_levels is levels and price == old_price:
            if size > level.orders[order_id]:
                level.remove(order_id)
                level.append(order_id, size)
            else:
                level.resize(order_id, size)
            return False
        level.remove(order_id)
        if not level.count:
            del levels[old_price]
        new_level = new_levels.get(price)
        if new_level is None:
            new_level = new_levels[price] = PriceLevel(price)
        new_level.append(order_id, size)
        self.orders[order_id] = (new_levels, price)
        return False

    def clear(self) -> None:
        """Remove every order and level."""
        self.bids.clear()
        self.asks.clear()
        self.orders.clear()
        self.maybe_bad = False

    def best_bid(self) -> PriceLevel | None:
        """The highest bid level, if any."""
        return self.bids.peekitem(-1)[1] if self.bids else None

    def best_ask(self) -> PriceLevel | None:
        """The lowest ask level, if any."""
        return self.asks.peekitem(0)[1] if self.asks else None
