"""The L3 order book of one instrument at one publisher, with Databento's MBO rules.

Prices are fixed-point integers (1e-9 units); sides are DBN side codes (``ord("B")``, ``ord("A")``).
A record that breaks a rule raises :class:`SkippedRecord` and leaves the book unchanged.
"""

from __future__ import annotations

from typing import Final, TypeAlias

from sortedcontainers import SortedDict

from obm_shared.dbn import ASK, BID, UNDEF_PRICE
from receiver.book.accounting import SkipReason
from receiver.book.crossing import Crossing
from receiver.book.level import PriceLevel
from receiver.book.side_changes import SideChanges

SIDES = frozenset((BID, ASK))
NO_BID: Final = -(2**63)
"""Best bid price of an empty bid side: below every price."""
NO_ASK: Final = UNDEF_PRICE
"""Best ask price of an empty ask side: above every price."""


class SkippedRecord(Exception):
    """A record that cannot be applied; the book is unchanged.

    Raised for every cancel of an order placed before a file starts (common in real files), so it is kept
    cheap: the reason is stored, and only turned into text when the exception is shown."""

    def __init__(self, reason: SkipReason) -> None:
        self.reason = reason

    def __str__(self) -> str:
        return self.reason.value


Levels: TypeAlias = SortedDict
"""price -> :class:`PriceLevel`, ascending."""


class OrderBook:
    """Price levels per side in :class:`SortedDict` (ascending: best bid last, best ask first), each level a
    FIFO queue of orders, plus an index from order id to where the order rests.

    The best prices are kept as running values (updated when a better level appears or the best level
    empties), and ``best_changed`` notes that they moved, so crossing state is only re-evaluated after the
    events that can change it (whoever evaluates it resets the note).

    Each side keeps a :class:`SideChanges` that the book notes every change in, for an observer of its top
    levels (the per-event output) to read: see :meth:`changes`.
    """

    __slots__ = (
        "ask_changes",
        "asks",
        "best_ask_price",
        "best_bid_price",
        "best_changed",
        "bid_changes",
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
        self.orders: dict[int, PriceLevel] = {}
        """order_id -> the level it rests in."""
        self.best_bid_price = NO_BID
        self.best_ask_price = NO_ASK
        self.best_changed = True  # never evaluated
        self.crossing = Crossing()
        self.maybe_bad = False
        """Set by F_MAYBE_BAD_BOOK; cleared by the next Clear."""
        self.bid_changes = SideChanges(True, NO_BID)
        self.ask_changes = SideChanges(False, NO_ASK)

    def levels(self, side: int) -> Levels:
        """The price levels of ``side``; a side other than bid or ask cannot rest in a book."""
        if side == BID:
            return self.bids
        if side == ASK:
            return self.asks
        raise SkippedRecord(SkipReason.INVALID_SIDE)

    def changes(self, side: int) -> SideChanges:
        """What changed on ``side`` since the observer of its top levels last read it."""
        return self.bid_changes if side == BID else self.ask_changes

    # The methods below are the hot path: add and cancel each keep level totals, best prices and the
    # change notes up to date inline; modify is a cancel and an add when the order moves.

    def add(self, order_id: int, side: int, price: int, size: int) -> None:
        """A new order joins the back of its price level, creating the level (and a new best) if needed."""
        levels = self.bids if side == BID else self.asks if side == ASK else self.levels(side)
        if price == UNDEF_PRICE:
            raise SkippedRecord(SkipReason.UNDEFINED_PRICE)
        if size <= 0:
            raise SkippedRecord(SkipReason.INVALID_SIZE)
        if order_id in self.orders:
            raise SkippedRecord(SkipReason.DUPLICATE_ORDER_ID)
        level = levels.get(price)
        if level is None:
            level = levels[price] = PriceLevel(price, side == BID)
            if level.is_bid:
                if price > self.best_bid_price:
                    self.best_bid_price = price
                    self.best_changed = True
            elif price < self.best_ask_price:
                self.best_ask_price = price
                self.best_changed = True
        (self.bid_changes if level.is_bid else self.ask_changes).note(level)
        level.orders[order_id] = size
        level.size += size
        self.orders[order_id] = level

    def cancel(self, order_id: int, side: int, size: int) -> None:
        """Reduce an order by ``size``; at zero it leaves, an emptied level goes, and the next may be best."""
        if side not in SIDES:
            raise SkippedRecord(SkipReason.INVALID_SIDE)
        level = self.orders.get(order_id)
        if level is None:
            raise SkippedRecord(SkipReason.CANCEL_UNKNOWN_ORDER)
        resting = level.orders[order_id]
        if size > resting:
            raise SkippedRecord(SkipReason.CANCEL_EXCEEDS_SIZE)
        level.size -= size
        (self.bid_changes if level.is_bid else self.ask_changes).note(level)
        if size < resting:
            level.orders[order_id] = resting - size
            return
        del self.orders[order_id]
        del level.orders[order_id]
        if level.orders:
            return
        price = level.price
        if level.is_bid:
            del self.bids[price]
            if price == self.best_bid_price:
                self.best_bid_price = self.bids.keys()[-1] if self.bids else NO_BID
                self.best_changed = True
        else:
            del self.asks[price]
            if price == self.best_ask_price:
                self.best_ask_price = self.asks.keys()[0] if self.asks else NO_ASK
                self.best_changed = True

    def replace_top_of_book(self, side: int, price: int, size: int) -> None:
        """A top-of-book venue's add: the side becomes this one level (or empty for an undefined price)."""
        levels = self.levels(side)
        for level in levels.values():
            for order_id in level.orders:
                del self.orders[order_id]
        levels.clear()
        if price != UNDEF_PRICE:
            levels[price] = PriceLevel.top_of_book(price, side == BID, size)
        if side == BID:
            self.best_bid_price = NO_BID if price == UNDEF_PRICE else price
        else:
            self.best_ask_price = NO_ASK if price == UNDEF_PRICE else price
        self.changes(side).note_replaced()
        self.best_changed = True

    def modify(self, order_id: int, side: int, price: int, size: int) -> bool:
        """Change an order's price or size. A new price or a larger size sends it to the back of the queue;
        a smaller size keeps its place. An unknown order is added. Returns True when it was added."""
        new_levels = self.bids if side == BID else self.asks if side == ASK else self.levels(side)
        level = self.orders.get(order_id)
        if level is None:
            self.add(order_id, side, price, size)
            return True
        if price == UNDEF_PRICE:
            raise SkippedRecord(SkipReason.UNDEFINED_PRICE)
        if size <= 0:
            raise SkippedRecord(SkipReason.INVALID_SIZE)
        resting = level.orders[order_id]
        if price == level.price and level.is_bid == (new_levels is self.bids):
            if size > resting:  # loses priority: to the back of the same queue
                del level.orders[order_id]
            level.orders[order_id] = size
            level.size += size - resting
            (self.bid_changes if level.is_bid else self.ask_changes).note(level)
            return False
        self.cancel(order_id, BID if level.is_bid else ASK, resting)
        self.add(order_id, side, price, size)
        return False

    def clear(self) -> None:
        """Remove every order and level."""
        self.bids.clear()
        self.asks.clear()
        self.orders.clear()
        self.best_bid_price = NO_BID
        self.best_ask_price = NO_ASK
        self.best_changed = True
        self.maybe_bad = False
        self.bid_changes.note_replaced()
        self.ask_changes.note_replaced()

    # Restoring: a book rebuilt from saved state (a checkpoint) gets its levels and marks through these two.

    def restore_level(self, side: int, price: int, size: int, orders: dict[int, int]) -> None:
        """Rest a whole level as it was saved: ``orders`` (order_id -> size) in queue order, front first, and
        the level's ``size``, which exceeds theirs when a top-of-book venue's level is part of it."""
        levels = self.levels(side)
        level = levels[price] = PriceLevel(price, side == BID)
        level.orders = orders
        level.size = size
        self.orders.update(dict.fromkeys(orders, level))
        if level.is_bid:
            self.best_bid_price = max(self.best_bid_price, price)
        else:
            self.best_ask_price = min(self.best_ask_price, price)
        self.changes(side).note_replaced()

    def restore_marks(self, crossing: Crossing, maybe_bad: bool, best_changed: bool) -> None:
        """Restore what the book's past left besides its levels: its crossing state, the maybe-bad mark, and
        whether its best prices moved since its crossing was last evaluated."""
        self.crossing = crossing
        self.maybe_bad = maybe_bad
        self.best_changed = best_changed

    def best_bid(self) -> PriceLevel | None:
        """The highest bid level, if any."""
        level: PriceLevel | None = self.bids.get(self.best_bid_price)
        return level

    def best_ask(self) -> PriceLevel | None:
        """The lowest ask level, if any."""
        level: PriceLevel | None = self.asks.get(self.best_ask_price)
        return level
