"""The simulated market: a copy of every (instrument, publisher) book and the events that change them,
recorded on a tape of plain ints (see :class:`Tape`) that :mod:`demo_market.records` turns into DBN records."""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Callable, Iterator
from itertools import accumulate, count

import numpy as np
import numpy.typing as npt

from demo_market.instruments import DEMO_INSTRUMENTS, DemoInstrument
from obm_shared.dbn import ADD, ASK, BID, CANCEL, CLEAR, F_LAST, F_SNAPSHOT, FILL, MODIFY, NO_SIDE, TRADE

DEPTH_LEVELS = 15
"""New quotes rest up to this many ticks behind the fair price."""
SNAPSHOT_LEVELS = (10, 20)
SNAPSHOT_ORDERS_PER_LEVEL = 4
FIRST_ORDER_ID = 6_400_000_000_001
TABLE_BITS = 7
"""Skewed draws index tables of 2**TABLE_BITS values with as many random bits (cheaper than float maths)."""
PICK_BITS = 24
"""Random bits reduced modulo a count for a uniform pick (bias below 1e-4 for counts up to 1,000)."""
TARGET_ORDERS = 90
"""Resting orders per book that the add/cancel mix steers towards."""
FAIR_STEP_PROBABILITY = 0.01
MIN_FAIR_TICKS = 2 * DEPTH_LEVELS + 2
"""The fair price reflects here, so no quote ever reaches zero."""
NO_BID = -1
NO_ASK = 1 << 62
"""Best price (ticks) of an empty side."""
EMPTY_TOPS = {BID: NO_BID, ASK: NO_ASK}
TRADE_PROBABILITY = 0.04
STALE_TRADE_PROBABILITY = 0.15
"""Trade probability when the book's mid is a tick or more away from the fair mid."""
ADD_PROBABILITY_THIN = 0.55
ADD_PROBABILITY_FULL = 0.35
"""Add probability below and above TARGET_ORDERS resting orders."""
MODIFY_PROBABILITY = 0.10
PARTIAL_CANCEL_PROBABILITY = 0.15


def _draw_table(quantile: Callable[[float], int]) -> list[int]:
    """``quantile`` at 2**TABLE_BITS evenly spaced probabilities: an index of TABLE_BITS random bits draws
    from its distribution."""
    size = 1 << TABLE_BITS
    return [quantile((index + 0.5) / size) for index in range(size)]


DEPTHS = _draw_table(lambda p: int(DEPTH_LEVELS * p * p))
"""Ticks behind the fair price of a new quote: mostly near, up to DEPTH_LEVELS - 1."""


class Tape:
    """Records in generation order, seven ints each: book index, action, side, price (ticks), size, order id,
    flags. A Clear's price is 0 here; its record carries UNDEF_PRICE."""

    def __init__(self) -> None:
        self.flat: list[int] = []
        self.flushed = 0

    @property
    def total(self) -> int:
        """Records generated so far."""
        return self.flushed + len(self.flat) // 7

    def emit(
        self, book: int, action: int, side: int, price: int, size: int, order_id: int, flags: int = 0
    ) -> None:
        """Append one record."""
        self.flat.extend((book, action, side, price, size, order_id, flags))

    def end_event(self) -> None:
        """Mark the last record as the end of its event."""
        self.flat[-1] |= F_LAST

    def take(self, count: int) -> npt.NDArray[np.int64]:
        """The first ``count`` pending records as seven columns, removed from the tape."""
        ints = count * 7
        columns = np.array(self.flat[:ints], dtype=np.int64).reshape(count, 7).T
        del self.flat[:ints]
        self.flushed += count
        return columns


class Book:
    """The generator's copy of one (instrument, publisher) book.

    ``levels``: per side, price (ticks) -> order ids in queue order; ``tops``: per side, the best price (NO_BID
    or NO_ASK when empty); ``orders``: order id -> [side, price, size, index in ``ids``]; ``ids``: the resting
    orders, for random picks.
    """

    __slots__ = ("ids", "index", "instrument", "levels", "orders", "publisher_id", "tops")

    def __init__(self, index: int, publisher_id: int, instrument: Instrument) -> None:
        self.index = index
        self.publisher_id = publisher_id
        self.instrument = instrument
        self.levels: dict[int, dict[int, dict[int, None]]] = {BID: {}, ASK: {}}
        self.tops = dict(EMPTY_TOPS)
        self.orders: dict[int, list[int]] = {}
        self.ids: list[int] = []

    def add(self, order_id: int, side: int, price: int, size: int) -> None:
        """A new order at the back of its level."""
        levels = self.levels[side]
        queue = levels.get(price)
        if queue is None:
            queue = levels[price] = {}
            if price > self.tops[side] if side == BID else price < self.tops[side]:
                self.tops[side] = price
        queue[order_id] = None
        self.orders[order_id] = [side, price, size, len(self.ids)]
        self.ids.append(order_id)

    def remove(self, order_id: int) -> None:
        """The order leaves the book."""
        side, price, _, position = self.orders.pop(order_id)
        last = self.ids.pop()
        if last != order_id:
            self.ids[position] = last
            self.orders[last][3] = position
        levels = self.levels[side]
        queue = levels[price]
        del queue[order_id]
        if not queue:
            del levels[price]
            if price == self.tops[side]:
                self.tops[side] = max(levels, default=NO_BID) if side == BID else min(levels, default=NO_ASK)

    def requeue(self, order_id: int, price: int, size: int) -> None:
        """The order moves to the back of the level at ``price`` with ``size`` (it loses priority)."""
        side = self.orders[order_id][0]
        self.remove(order_id)
        self.add(order_id, side, price, size)


class Instrument:
    """One instrument's fair price (ticks) and its books, one per publisher."""

    def __init__(self, spec: DemoInstrument) -> None:
        self.spec = spec
        self.fair = spec.open_price // spec.tick
        self.books: list[Book] = []
        self.sizes = _draw_table(lambda p: spec.lot * (1 + int(spec.max_lots * p**3)))
        """New order sizes: mostly one lot, now and then up to ``max_lots``."""

    def best(self, side: int) -> int:
        """Consolidated best price of ``side`` across publishers (NO_BID or NO_ASK when empty)."""
        if len(self.books) == 1:
            return self.books[0].tops[side]
        prices = [book.tops[side] for book in self.books]
        return max(prices) if side == BID else min(prices)

    def step(self, up: bool) -> None:
        """Move the fair price one tick, reflecting at MIN_FAIR_TICKS."""
        self.fair += 1 if up or self.fair <= MIN_FAIR_TICKS else -1


class Session:
    """The books of every (instrument, publisher), the random source and the tape of records so far."""

    def __init__(self, seed: int) -> None:
        rnd = random.Random(seed)
        self.uniform, self.bits = rnd.random, rnd.getrandbits
        self.tape = Tape()
        self.order_ids = count(FIRST_ORDER_ID)
        self.books: list[Book] = []
        weights: list[float] = []
        for spec in DEMO_INSTRUMENTS:
            instrument = Instrument(spec)
            for publisher_id in spec.publishers:
                book = Book(len(self.books), publisher_id, instrument)
                instrument.books.append(book)
                self.books.append(book)
                weights.append(spec.activity / len(spec.publishers))
        shares = [weight / sum(weights) for weight in accumulate(weights)]
        self.book_draws = [self.books[index] for index in _draw_table(lambda p: bisect(shares, p))]
        """Books by their share of events, for one draw of TABLE_BITS random bits."""
        for book in self.books:
            self._snapshot(book)

    @property
    def book_keys(self) -> list[tuple[DemoInstrument, int]]:
        """(instrument, publisher id) of each book, in the order of the tape's book indexes."""
        return [(book.instrument.spec, book.publisher_id) for book in self.books]

    def chunks(self, records: int, chunk_records: int) -> Iterator[npt.NDArray[np.int64]]:
        """Generate live events until ``records`` records exist, yielding the tape's columns
        (:meth:`Tape.take`) ``chunk_records`` at a time as they fill."""
        tape, flat, event = self.tape, self.tape.flat, self._event
        while remaining := records - tape.flushed - len(flat) // 7:
            event(remaining)
            if len(flat) >= chunk_records * 7:
                yield tape.take(chunk_records)
        while tape.flat:
            yield tape.take(min(chunk_records, len(tape.flat) // 7))

    def _below(self, limit: int) -> int:
        """A random int in [0, limit)."""
        return self.bits(PICK_BITS) % limit

    def _snapshot(self, book: Book) -> None:
        """Clear the book, then rest 10-20 levels per side around the fair price, all one F_SNAPSHOT event."""
        tape, instrument = self.tape, book.instrument
        tape.emit(book.index, CLEAR, NO_SIDE, 0, 0, 0, F_SNAPSHOT)
        low, high = SNAPSHOT_LEVELS
        for side in (BID, ASK):
            for depth in range(low + self._below(high - low + 1)):
                price = instrument.fair - depth if side == BID else instrument.fair + 1 + depth
                for _ in range(1 + self._below(SNAPSHOT_ORDERS_PER_LEVEL)):
                    order_id, size = next(self.order_ids), instrument.sizes[self.bits(TABLE_BITS)]
                    book.add(order_id, side, price, size)
                    tape.emit(book.index, ADD, side, price, size, order_id, F_SNAPSHOT)
        tape.end_event()

    def _event(self, budget: int) -> None:
        """One live event on a random book, at most ``budget`` records long."""
        uniform = self.uniform
        book = self.book_draws[self.bits(TABLE_BITS)]
        instrument = book.instrument
        if uniform() < FAIR_STEP_PROBABILITY:
            instrument.step(uniform() < 0.5)
        tops = book.tops
        lag = 2 * instrument.fair + 1 - tops[BID] - tops[ASK]
        trade_probability = STALE_TRADE_PROBABILITY if lag >= 2 or lag <= -2 else TRADE_PROBABILITY
        add_probability = ADD_PROBABILITY_THIN if len(book.ids) < TARGET_ORDERS else ADD_PROBABILITY_FULL
        draw = uniform()
        if draw < trade_probability:
            done = self._trade(book, lag, budget)
        elif draw < trade_probability + add_probability:
            done = False  # the add below
        elif draw < 1.0 - MODIFY_PROBABILITY:
            done = self._cancel(book)
        else:
            self._modify(book)
            done = True
        if not done:
            self._add(book)

    def _quote_price(self, instrument: Instrument, side: int) -> int:
        """A passive price up to DEPTH_LEVELS behind the fair price, never locking the consolidated book."""
        depth = DEPTHS[self.bits(TABLE_BITS)]
        if side == BID:
            return min(instrument.fair - depth, instrument.best(ASK) - 1)
        return max(instrument.fair + 1 + depth, instrument.best(BID) + 1)

    def _add(self, book: Book) -> None:
        side = BID if self.bits(1) else ASK
        price = self._quote_price(book.instrument, side)
        order_id, size = next(self.order_ids), book.instrument.sizes[self.bits(TABLE_BITS)]
        book.add(order_id, side, price, size)
        self.tape.emit(book.index, ADD, side, price, size, order_id, F_LAST)

    def _cancel(self, book: Book) -> bool:
        """Cancel in full or in part the further from the fair price of two random orders (far orders go
        first); False when that would empty its side."""
        ids, orders = book.ids, book.orders
        first, second = ids[self._below(len(ids))], ids[self._below(len(ids))]
        fair_mid = 2 * book.instrument.fair + 1  # half ticks
        far = abs(2 * orders[first][1] - fair_mid) >= abs(2 * orders[second][1] - fair_mid)
        order_id = first if far else second
        side, price, size, _ = orders[order_id]
        if size > 1 and self.uniform() < PARTIAL_CANCEL_PROBABILITY:
            cancelled = 1 + self._below(size - 1)
            orders[order_id][2] = size - cancelled
        elif len(levels := book.levels[side]) == 1 and len(levels[price]) == 1:
            return False  # the last order of its side
        else:
            cancelled = size
            book.remove(order_id)
        self.tape.emit(book.index, CANCEL, side, price, cancelled, order_id, F_LAST)
        return True

    def _modify(self, book: Book) -> None:
        """Shrink an order in place, or move it to a new price or a larger size at the back of a queue."""
        order_id = book.ids[self._below(len(book.ids))]
        side, price, size, _ = book.orders[order_id]
        draw = self.uniform()
        if draw < 0.5 and size > 1:
            size = 1 + self._below(size - 1)
            book.orders[order_id][2] = size
        elif draw < 0.8:
            new_price = self._quote_price(book.instrument, side)
            price = new_price if new_price != price else price - 1 if side == BID else price + 1
            book.requeue(order_id, price, size)
        else:
            size += book.instrument.sizes[self.bits(TABLE_BITS)]
            book.requeue(order_id, price, size)
        self.tape.emit(book.index, MODIFY, side, price, size, order_id, F_LAST)

    def _trade(self, book: Book, lag: int, budget: int) -> bool:
        """An aggressor sweeps one to three levels of the other side, mostly buying when the book is below the
        fair price (``lag`` > 0, in half ticks) and selling when above, and may rest what is left; False
        when that side is too thin or the event could exceed ``budget`` records."""
        uniform = self.uniform
        side = BID if uniform() < (0.5 if not lag else 0.8 if lag > 0 else 0.2) else ASK
        resting_side = ASK if side == BID else BID
        levels = book.levels[resting_side]
        if len(levels) < 3:
            return False
        draw = uniform()
        swept = min(1 + (draw > 0.9) + (draw > 0.98), len(levels) - 2)
        prices = sorted(levels, reverse=resting_side == BID)[:swept]
        if swept + 2 * sum(len(levels[price]) for price in prices) + 1 > budget:
            return False
        aggressor = next(self.order_ids)
        self._settle(book, resting_side, self._sweep(book, side, prices, aggressor))
        price = prices[-1]
        opposite = book.instrument.best(resting_side)
        if (
            price not in levels
            and uniform() < 0.3
            and (price < opposite if side == BID else price > opposite)
        ):
            size = book.instrument.sizes[self.bits(TABLE_BITS)]
            book.add(aggressor, side, price, size)
            self.tape.emit(book.index, ADD, side, price, size, aggressor)
        self.tape.end_event()
        return True

    def _sweep(self, book: Book, side: int, prices: list[int], aggressor: int) -> list[tuple[int, int, int]]:
        """Emit a Trade per level and a Fill per resting order hit: all of each level but the last, and of
        the last all of it or the front of its queue. Returns (order id, price, size left) of each order hit."""
        emit, orders, index = self.tape.emit, book.orders, book.index
        resting_side = ASK if side == BID else BID
        levels = book.levels[resting_side]
        hits = []
        for price in prices:
            queue = levels[price]
            wanted = total = sum(orders[order_id][2] for order_id in queue)
            if price == prices[-1] and total > 1 and self.uniform() < 0.8:
                wanted = 1 + int(self.uniform() ** 2 * (total - 1))
            emit(index, TRADE, side, price, wanted, aggressor)
            for order_id in queue:
                size = orders[order_id][2]
                filled = min(size, wanted)
                emit(index, FILL, resting_side, price, filled, order_id)
                hits.append((order_id, price, size - filled))
                wanted -= filled
                if not wanted:
                    break
        return hits

    def _settle(self, book: Book, side: int, hits: list[tuple[int, int, int]]) -> None:
        """After the fills: Cancel each order filled in full, Modify one filled in part to what is left."""
        emit, orders, index = self.tape.emit, book.orders, book.index
        for order_id, price, left in hits:
            if left:
                orders[order_id][2] = left
                emit(index, MODIFY, side, price, left, order_id)
            else:
                emit(index, CANCEL, side, price, orders[order_id][2], order_id)
                book.remove(order_id)
