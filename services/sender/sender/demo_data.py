"""Deterministic demo MBO data: a realistic session of three instruments, written as a real DBN v3 file.

The session holds a crude-oil future, an equity-index future and a stock quoted by two publishers (so the
consolidated book means something). Each book opens with a Clear and a snapshot of resting orders
(F_SNAPSHOT, the last one also F_LAST), then lives: adds, full and partial cancels, modifies (a smaller size
keeps queue priority, a new price or a larger size loses it) and trades. A trade is one event: a Trade record
per price level (aggressor's side and order id), a Fill per resting order hit, then the Cancel of each order
filled in full, the Modify of one filled in part and now and then the Add of the aggressor's remainder; only
its last record carries F_LAST. A fair price per instrument walks a tick at a time and the books follow it.

The generator keeps its own copy of every book, so it never cancels or modifies an order that does not rest,
never cancels more than rests, and never quotes a price that locks or crosses the consolidated book. Records
are built and written ``CHUNK_RECORDS`` at a time (memory stays flat in ``records``), and the same arguments
give a byte-identical file.

Units: prices are fixed-point integers (1e-9); timestamps and latencies are UNIX nanoseconds.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate, count
from pathlib import Path

import numpy as np
import numpy.typing as npt
import zstandard
from databento_dbn import (
    F_LAST,
    F_SNAPSHOT,
    FIXED_PRICE_SCALE,
    UNDEF_PRICE,
    Action,
    Metadata,
    Schema,
    Side,
    SType,
)
from databento_dbn.metadata import MappingInterval

from obm_shared.dbn import MBO_RTYPE
from obm_shared.dbn_file import ZSTD_SUFFIX
from obm_shared.records import MBO_DTYPE, MBO_RECORD_SIZE, MboArray

DEFAULT_RECORDS = 200_000
DEFAULT_SEED = 20240508
CHUNK_RECORDS = 65_536
"""Records built and written at a time."""

DATASET = "DEMO.MBO"
DBN_VERSION = 3
SESSION_START_NS = 1_715_175_000_000_000_000
"""2024-05-08 13:30:00 UTC: the metadata's start; the first record comes one gap later."""

BID = ord(str(Side.BID))
ASK = ord(str(Side.ASK))
NO_SIDE = ord(str(Side.NONE))
ADD = ord(str(Action.ADD))
CANCEL = ord(str(Action.CANCEL))
MODIFY = ord(str(Action.MODIFY))
CLEAR = ord(str(Action.CLEAR))
TRADE = ord(str(Action.TRADE))
FILL = ord(str(Action.FILL))

GAP_MIN_NS = 1_000
GAP_MAX_NS = 5_000_000
"""Each record slot advances the clock by a log-uniform gap in [GAP_MIN_NS, GAP_MAX_NS)."""
LATENCY_MIN_NS = 20_000
LATENCY_JITTER_NS = 500
"""ts_recv - ts_event is LATENCY_MIN_NS plus up to this jitter; below GAP_MIN_NS, so ts_recv increases too."""
SEND_DELAY_MIN_NS = 2_000
SEND_DELAY_JITTER_NS = 6_000
"""The venue sends an event this long after ts_event; ts_in_delta is the rest of the latency."""

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


@dataclass(frozen=True)
class DemoInstrument:
    """One instrument of the demo session. ``open_price`` and ``tick`` are fixed-point (1e-9); order sizes
    are ``lot`` times 1 to ``max_lots``; ``activity`` is its share of the session's events."""

    symbol: str
    instrument_id: int
    channel_id: int
    open_price: int
    tick: int
    lot: int
    max_lots: int
    publishers: tuple[int, ...]
    activity: float


DEMO_INSTRUMENTS = (
    DemoInstrument("CLX5", 10001, 1, 65 * FIXED_PRICE_SCALE, FIXED_PRICE_SCALE // 100, 1, 12, (1,), 0.30),
    DemoInstrument("ESM4", 10002, 2, 5200 * FIXED_PRICE_SCALE, FIXED_PRICE_SCALE // 4, 1, 25, (1,), 0.45),
    DemoInstrument("AAPL", 10003, 3, 150 * FIXED_PRICE_SCALE, FIXED_PRICE_SCALE // 100, 100, 8, (1, 2), 0.25),
)
"""The session's instruments; their ids are the demo's own, not any venue's."""


@dataclass
class _Interval:
    """A symbol's mapping over a date range, as ``databento_dbn.Metadata`` takes it."""

    start_date: dt.date
    end_date: dt.date
    symbol: str


@dataclass
class _Mapping:
    """A raw symbol and its mapping intervals, as ``databento_dbn.Metadata`` takes them."""

    raw_symbol: str
    intervals: Sequence[MappingInterval]


def write_demo_file(path: Path | str, records: int = DEFAULT_RECORDS, seed: int = DEFAULT_SEED) -> int:
    """Write ``records`` demo MBO records to ``path`` (zstd when it ends in ``.zst``); returns the count.

    Raises ValueError when ``records`` cannot hold the opening snapshot (a few hundred records).
    """
    path = Path(path)
    chunks = demo_records(records, seed)
    header = demo_metadata(records, seed).encode()
    with _open_output(path) as write:
        write(header)
        for chunk in chunks:
            write(chunk.tobytes())
    return records


def demo_records(records: int = DEFAULT_RECORDS, seed: int = DEFAULT_SEED) -> Iterator[MboArray]:
    """The demo session as arrays of :data:`MBO_DTYPE`, ``CHUNK_RECORDS`` records each (the last shorter).

    Raises ValueError when ``records`` cannot hold the opening snapshot.
    """
    session = _Session(seed)
    if session.tape.total > records:
        raise ValueError(f"{records} records cannot hold the opening snapshot of {session.tape.total}")
    return session.chunks(records)


def demo_metadata(records: int = DEFAULT_RECORDS, seed: int = DEFAULT_SEED) -> Metadata:
    """DBN v3 metadata of the demo file: MBO, raw symbols mapped to instrument ids, ``end`` after the last
    record's ts_recv."""
    end = _session_end_ns(records, seed)
    first_day = _utc_date(SESSION_START_NS)
    after_last_day = _utc_date(end) + dt.timedelta(days=1)
    return Metadata(
        dataset=DATASET,
        start=SESSION_START_NS,
        end=end,
        # Calling the enum gives mypy its type: databento_dbn's stubs declare the members as plain str.
        stype_in=SType(SType.RAW_SYMBOL),
        stype_out=SType(SType.INSTRUMENT_ID),
        schema=Schema(Schema.MBO),
        symbols=[instrument.symbol for instrument in DEMO_INSTRUMENTS],
        partial=[],
        not_found=[],
        mappings=[
            _Mapping(i.symbol, [_Interval(first_day, after_last_day, str(i.instrument_id))])
            for i in DEMO_INSTRUMENTS
        ],
        ts_out=False,
        version=DBN_VERSION,
    )


def _utc_date(ts_ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, dt.UTC).date()


def _chunk_sizes(records: int) -> Iterator[int]:
    full, rest = divmod(records, CHUNK_RECORDS)
    yield from [CHUNK_RECORDS] * full
    if rest:
        yield rest


def _session_end_ns(records: int, seed: int) -> int:
    """One past the latest possible ts_recv: the clock run over every record slot, plus the longest latency."""
    clock = _Clock(seed)
    for size in _chunk_sizes(records):
        clock.slots(size)
    return clock.now_ns + LATENCY_MIN_NS + LATENCY_JITTER_NS


@contextmanager
def _open_output(path: Path) -> Iterator[Callable[[bytes], object]]:
    """The write function of ``path``, through a zstd stream when its name ends in ``.zst``."""
    with path.open("wb") as raw:
        if not path.name.endswith(ZSTD_SUFFIX):
            yield raw.write
            return
        with zstandard.ZstdCompressor().stream_writer(raw, closefd=False) as compressed:
            yield compressed.write


class _Clock:
    """Time by record position: each record slot advances the clock by a log-uniform gap; an event takes the
    ts_event, latency and send delay of its first slot, so ts_event and ts_recv increase from event to event."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng([seed, 1])
        self.now_ns = SESSION_START_NS

    def slots(self, count: int) -> tuple[npt.NDArray[np.int64], ...]:
        """ts_event, ts_recv and ts_in_delta of the next ``count`` slots."""
        uniform = self._rng.random((count, 3)).T  # three draws per slot, whatever the chunking
        log_gap = math.log(GAP_MIN_NS) + math.log(GAP_MAX_NS / GAP_MIN_NS) * uniform[0]
        ts_event = self.now_ns + np.cumsum(np.ceil(np.exp(log_gap)).astype(np.int64))
        self.now_ns = int(ts_event[-1])
        latency = LATENCY_MIN_NS + (uniform[1] * LATENCY_JITTER_NS).astype(np.int64)
        send_delay = SEND_DELAY_MIN_NS + (uniform[2] * SEND_DELAY_JITTER_NS).astype(np.int64)
        return ts_event, ts_event + latency, latency - send_delay


class _Tape:
    """Records in generation order, seven ints each: book index, action, side, price (ticks), size, order id,
    flags. A Clear's price is written as UNDEF_PRICE."""

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


class _Book:
    """The generator's copy of one (instrument, publisher) book.

    ``levels``: per side, price (ticks) -> order ids in queue order; ``tops``: per side, the best price (NO_BID
    or NO_ASK when empty); ``orders``: order id -> [side, price, size, index in ``ids``]; ``ids``: the resting
    orders, for random picks.
    """

    __slots__ = ("ids", "index", "instrument", "levels", "orders", "publisher_id", "tops")

    def __init__(self, index: int, publisher_id: int, instrument: _Instrument) -> None:
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


class _Instrument:
    """One instrument's fair price (ticks) and its books, one per publisher."""

    def __init__(self, spec: DemoInstrument) -> None:
        self.spec = spec
        self.fair = spec.open_price // spec.tick
        self.books: list[_Book] = []
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


class _Session:
    """The books of every (instrument, publisher), the random source and the tape of records so far."""

    def __init__(self, seed: int) -> None:
        rnd = random.Random(seed)
        self.uniform, self.bits = rnd.random, rnd.getrandbits
        self.tape = _Tape()
        self.order_ids = count(FIRST_ORDER_ID)
        self.books: list[_Book] = []
        weights: list[float] = []
        for spec in DEMO_INSTRUMENTS:
            instrument = _Instrument(spec)
            for publisher_id in spec.publishers:
                book = _Book(len(self.books), publisher_id, instrument)
                instrument.books.append(book)
                self.books.append(book)
                weights.append(spec.activity / len(spec.publishers))
        shares = [weight / sum(weights) for weight in accumulate(weights)]
        self.book_draws = [self.books[index] for index in _draw_table(lambda p: bisect(shares, p))]
        """Books by their share of events, for one draw of TABLE_BITS random bits."""
        self.builder = _RecordBuilder(self.books, seed)
        for book in self.books:
            self._snapshot(book)

    def chunks(self, records: int) -> Iterator[MboArray]:
        """Generate live events until ``records`` records exist, yielding full chunks as they fill."""
        tape, flat, event = self.tape, self.tape.flat, self._event
        while remaining := records - tape.flushed - len(flat) // 7:
            event(remaining)
            if len(flat) >= CHUNK_RECORDS * 7:
                yield self.builder.build(tape.take(CHUNK_RECORDS))
        while tape.flat:
            yield self.builder.build(tape.take(min(CHUNK_RECORDS, len(tape.flat) // 7)))

    def _below(self, limit: int) -> int:
        """A random int in [0, limit)."""
        return self.bits(PICK_BITS) % limit

    def _snapshot(self, book: _Book) -> None:
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

    def _quote_price(self, instrument: _Instrument, side: int) -> int:
        """A passive price up to DEPTH_LEVELS behind the fair price, never locking the consolidated book."""
        depth = DEPTHS[self.bits(TABLE_BITS)]
        if side == BID:
            return min(instrument.fair - depth, instrument.best(ASK) - 1)
        return max(instrument.fair + 1 + depth, instrument.best(BID) + 1)

    def _add(self, book: _Book) -> None:
        side = BID if self.bits(1) else ASK
        price = self._quote_price(book.instrument, side)
        order_id, size = next(self.order_ids), book.instrument.sizes[self.bits(TABLE_BITS)]
        book.add(order_id, side, price, size)
        self.tape.emit(book.index, ADD, side, price, size, order_id, F_LAST)

    def _cancel(self, book: _Book) -> bool:
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

    def _modify(self, book: _Book) -> None:
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

    def _trade(self, book: _Book, lag: int, budget: int) -> bool:
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

    def _sweep(self, book: _Book, side: int, prices: list[int], aggressor: int) -> list[tuple[int, int, int]]:
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

    def _settle(self, book: _Book, side: int, hits: list[tuple[int, int, int]]) -> None:
        """After the fills: Cancel each order filled in full, Modify one filled in part to what is left."""
        emit, orders, index = self.tape.emit, book.orders, book.index
        for order_id, price, left in hits:
            if left:
                orders[order_id][2] = left
                emit(index, MODIFY, side, price, left, order_id)
            else:
                emit(index, CANCEL, side, price, orders[order_id][2], order_id)
                book.remove(order_id)


class _RecordBuilder:
    """Turns tape columns into DBN MBO records: ids, channel and fixed-point price from the book, timestamps
    from the clock, and a sequence per book that counts its events."""

    def __init__(self, books: Sequence[_Book], seed: int) -> None:
        specs = [book.instrument.spec for book in books]
        self.publisher_ids = np.array([book.publisher_id for book in books], dtype=np.int64)
        self.instrument_ids = np.array([spec.instrument_id for spec in specs], dtype=np.int64)
        self.channel_ids = np.array([spec.channel_id for spec in specs], dtype=np.int64)
        self.ticks = np.array([spec.tick for spec in specs], dtype=np.int64)
        self.sequences = np.zeros(len(books), dtype=np.int64)
        """Last sequence number written per book."""
        self.clock = _Clock(seed)
        self.event_stamps = np.zeros(3, dtype=np.int64)
        """ts_event, ts_recv and ts_in_delta of the last event written (it may go on in the next chunk)."""
        self.at_event_start = True

    def build(self, columns: npt.NDArray[np.int64]) -> MboArray:
        """Records from the seven tape columns."""
        book, action, side, ticks, size, order_id, flags = columns
        out = np.zeros(len(book), dtype=MBO_DTYPE)
        out["length"] = MBO_RECORD_SIZE // 4
        out["rtype"] = MBO_RTYPE
        out["publisher_id"] = self.publisher_ids[book]
        out["instrument_id"] = self.instrument_ids[book]
        out["channel_id"] = self.channel_ids[book]
        out["action"].view(np.uint8)[:] = action
        out["side"].view(np.uint8)[:] = side
        out["price"] = np.where(action == CLEAR, UNDEF_PRICE, ticks * self.ticks[book])
        out["size"] = size
        out["order_id"] = order_id
        out["flags"] = flags
        starts = np.empty(len(book), dtype=bool)
        starts[0] = self.at_event_start
        starts[1:] = (flags[:-1] & F_LAST) != 0
        self.at_event_start = bool(flags[-1] & F_LAST)
        self._stamp(out, starts)
        self._sequence(out, book, starts)
        return out

    def _stamp(self, out: MboArray, starts: npt.NDArray[np.bool_]) -> None:
        """Give every record the stamps of its event's first slot (the previous chunk's, for an event that
        began there)."""
        slots = np.stack(self.clock.slots(len(starts)))
        first = np.maximum.accumulate(np.where(starts, np.arange(1, len(starts) + 1), 0))
        stamps = np.concatenate([self.event_stamps[:, None], slots], axis=1)[:, first]
        out["ts_event"], out["ts_recv"], out["ts_in_delta"] = stamps
        self.event_stamps = stamps[:, -1]

    def _sequence(self, out: MboArray, book: npt.NDArray[np.int64], starts: npt.NDArray[np.bool_]) -> None:
        """Number each book's events 1, 2, ...; the records of one event share its number."""
        sequence = out["sequence"]
        for index in range(len(self.sequences)):
            mine = book == index
            counts = np.cumsum(starts & mine)
            sequence[mine] = self.sequences[index] + counts[mine]
            self.sequences[index] += counts[-1]
