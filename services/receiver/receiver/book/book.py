"""The L3 order book of one instrument at one publisher, with Databento's MBO rules.

Prices are fixed-point integers (1e-9 units); sides are DBN side codes (``ord("B")``, ``ord("A")``).
A record that breaks a rule raises :class:`SkippedRecord` and leaves the book unchanged.
"""

from __future__ import annotations

from databento_dbn import UNDEF_PRICE, Side
from sortedcontainers import SortedDict

from receiver.book.accounting import SkipReason
from receiver.book.crossing import Crossing
from receiver.book.level import PriceLevel

BID = ord(Side.BID.value)
ASK = ord(Side.ASK.value)
NO_BID = -(2**63)
"""Best bid price of an empty bid side: below every price."""
NO_ASK = UNDEF_PRICE
"""Best ask price of an empty ask side: above every price."""


class SkippedRecord(Exception):
    """A record that cannot be applied; the book is unchanged."""

    def __init__(self, reason: SkipReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


Levels = SortedDict  # price -> PriceLevel, ascending


class OrderBook:
    """Price levels per side in :class:`SortedDict` (ascending: best bid last, best ask first), each level a
    FIFO queue of orders, plus an index from order id to where the order rests.

    The best prices are kept as running values (updated when a better level appears or the best level
    empties), so checking for a crossed book after each event costs two attribute reads.
    """

    __slots__ = (
        "asks",
        "best_ask_price",
        "best_bid_price",
        "bids",
        "crossing",
        "instrument_id",
        "maybe_bad",
        "orders",
        "publisher_id",
    )

    def __init__(self, instrument_id: int, publisher_id: int) -> None:
        self.instrument_id = instrument_id
        self.publisher_id = publisher_id
        self.bids: Levels = SortedDict()
        self.asks: Levels = SortedDict()
        self.orders: dict[int, tuple[Levels, int]] = {}
        """order_id -> (the side's levels, price)."""
        self.best_bid_price = NO_BID
        self.best_ask_price = NO_ASK
        self.crossing = Crossing()
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
        levels = self.bids if side == BID else self.asks if side == ASK else self.levels(side)
        if price == UNDEF_PRICE:
            raise SkippedRecord(SkipReason.UNDEFINED_PRICE)
        if size <= 0:
            raise SkippedRecord(SkipReason.INVALID_SIZE)
        if order_id in self.orders:
            raise SkippedRecord(SkipReason.DUPLICATE_ORDER_ID)
        self._rest(order_id, levels, price, size)

    def _rest(self, order_id: int, levels: Levels, price: int, size: int) -> None:
        """Put an order at the back of its level, creating the level (and a new best price) if needed."""
        level = levels.get(price)
        if level is None:
            level = levels[price] = PriceLevel(price)
            if levels is self.bids:
                if price > self.best_bid_price:
                    self.best_bid_price = price
            elif price < self.best_ask_price:
                self.best_ask_price = price
        level.append(order_id, size)
        self.orders[order_id] = (levels, price)

    def _drop_level(self, levels: Levels, price: int) -> None:
        """Remove an empty level; if it was the best, the next level becomes the best."""
        del levels[price]
        if levels is self.bids:
            if price == self.best_bid_price:
                self.best_bid_price = levels.keys()[-1] if levels else NO_BID
        elif price == self.best_ask_price:
            self.best_ask_price = levels.keys()[0] if levels else NO_ASK

    def replace_top_of_book(self, side: int, price: int, size: int) -> None:
        """A top-of-book venue's add: the side becomes this one level (or empty for an undefined price)."""
        levels = self.levels(side)
        levels.clear()
        if price != UNDEF_PRICE:
            levels[price] = PriceLevel.top_of_book(price, size)
        if side == BID:
            self.best_bid_price = NO_BID if price == UNDEF_PRICE else price
        else:
            self.best_ask_price = NO_ASK if price == UNDEF_PRICE else price

    def cancel(self, order_id: int, side: int, size: int) -> None:
        """Reduce an order by ``size``; it leaves the book at zero."""
        if side != BID and side != ASK:
            raise SkippedRecord(SkipReason.INVALID_SIDE)
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
            self._drop_level(levels, price)

    def modify(self, order_id: int, side: int, price: int, size: int) -> bool:
        """Change an order's price or size. A new price or a larger size sends it to the back of the queue;
        a smaller size keeps its place. An unknown order is added. Returns True when it was added."""
        new_levels = self.bids if side == BID else self.asks if side == ASK else self.levels(side)
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
            self._drop_level(levels, old_price)
        self._rest(order_id, new_levels, price, size)
        return False

    def clear(self) -> None:
        """Remove every order and level."""
        self.bids.clear()
        self.asks.clear()
        self.orders.clear()
        self.best_bid_price = NO_BID
        self.best_ask_price = NO_ASK
        self.maybe_bad = False

    def best_bid(self) -> PriceLevel | None:
        """The highest bid level, if any."""
        return self.bids.get(self.best_bid_price)

    def best_ask(self) -> PriceLevel | None:
        """The lowest ask level, if any."""
        return self.asks.get(self.best_ask_price)
