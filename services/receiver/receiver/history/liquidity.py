"""A bounded summary of each instrument's book over market time: the liquidity history a timeline draws.

Market time (ts_recv) from the run's first event is cut into buckets of ``bucket_ns``, at most ``max_buckets``
of them: when an event would need more, neighbours merge in pairs and the width doubles, so memory is bounded
whatever the run's length. Per instrument, a bucket keeps the consolidated book at its end (best bid and ask,
the top levels' sizes by price, crossed) and the trades within it (size summed by price and aggressor side).

The books are sampled once per bucket, never per record: :meth:`LiquidityHistory.parts` cuts the records where
events pass into a later bucket, and before handing over the first part of a new bucket it samples the books
of the instruments that had records in the bucket just ended. An instrument with no records in a bucket has no
entry for it: its book at that bucket's end is the one at the end of its last entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import msgspec
import numpy as np

from obm_shared.dbn import ASK, BID, F_LAST, TRADE_CODE, UNDEF_PRICE
from obm_shared.records import MboArray
from receiver.book.book import OrderBook
from receiver.book.market import Market
from receiver.book.views import best_prices, merged_raw_levels

DEFAULT_BUCKET_NS: Final = 1_000_000
"""First bucket width when the stream does not say when it ends: 1 ms, doubled as the run grows."""
MAX_TRADE_PRICES: Final = 64
"""(price, side) pairs of trades a bucket keeps, the largest by size: bounded in a burst of many prices."""

Trades = list[tuple[int, int, str]]
"""(price (1e-9 units), size, aggressor side "B", "A" or "N"), by price."""


class Bucket(msgspec.Struct, frozen=True, array_like=True):
    """One instrument's consolidated book at the end of a bucket, and the trades within it."""

    best_bid: int | None
    """Fixed-point price, 1e-9 units; None for an empty side."""
    best_ask: int | None
    crossed: bool
    """Crossed at the end of the bucket or of a bucket merged into it."""
    crossed_at_end: bool
    bids: list[tuple[int, int]]
    """(price, size) of the top levels, best first."""
    asks: list[tuple[int, int]]
    trades: Trades


EMPTY: Final = Bucket(None, None, False, False, [], [], [])


class HistoryState(msgspec.Struct, frozen=True):
    """A history as it can be saved, once the run has ended."""

    origin_ns: int | None
    bucket_ns: int
    buckets: int
    """Closed buckets: 0 .. buckets - 1."""
    instruments: dict[int, dict[int, Bucket]]
    """instrument_id -> bucket index -> the bucket, for the buckets the instrument had records in."""


class BucketView(msgspec.Struct, frozen=True):
    """A bucket as GET /timeline shows it."""

    start_ns: int
    end_ns: int
    """The bucket's last nanosecond: its book is the book at this time."""
    best_bid: int | None
    best_ask: int | None
    crossed: bool
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    trades: Trades


class HistoryView(msgspec.Struct, frozen=True):
    instrument_id: int
    bucket_ns: int
    price_scale: int
    buckets: list[BucketView]


class LiquidityHistory:
    """Buckets over market time per instrument, filled while records are applied (see the module's note)."""

    def __init__(self, max_buckets: int, levels: int) -> None:
        self.max_buckets = max_buckets
        self.levels = levels
        """Price levels per side kept at the end of each bucket."""
        self.bucket_ns = DEFAULT_BUCKET_NS
        self.origin_ns: int | None = None
        """UNIX ns where bucket 0 starts: the first event's ts_recv."""
        self.current = 0
        """The open bucket: every one before it is closed."""
        self.end_hint_ns: int | None = None
        """When the stream says it ends, to size the first buckets for a whole run."""
        self._buckets: dict[int, dict[int, Bucket]] = {}
        self._touched: set[int] = set()
        """Instruments with records in the open bucket."""
        self._trades: dict[int, dict[tuple[int, str], int]] = {}
        """instrument_id -> (price, side) -> size traded in the open bucket."""

    @classmethod
    def restore(cls, state: HistoryState, levels: int) -> LiquidityHistory:
        """A history holding ``state`` (an ended run's)."""
        history = cls(max(state.buckets, 2), levels)
        history.bucket_ns, history.origin_ns, history.current = (
            state.bucket_ns,
            state.origin_ns,
            state.buckets,
        )
        history._buckets = {iid: dict(buckets) for iid, buckets in state.instruments.items()}
        return history

    def state(self) -> HistoryState:
        """The closed buckets, as they can be saved."""
        return HistoryState(self.origin_ns, self.bucket_ns, self.current, self._buckets)

    def buckets(self) -> int:
        """Closed buckets."""
        return self.current

    def instruments(self) -> list[int]:
        """Instruments the history has buckets of, ascending."""
        return sorted(self._buckets)

    def parts(self, records: MboArray, market: Market) -> Iterator[MboArray]:
        """``records`` (cut at event boundaries) in parts whose events end in one bucket, for the caller to apply
        to ``market`` one after the other. Before the first part of a later bucket, the open bucket closes on
        the books as ``market`` holds them then: after every event that ends in it."""
        event_rows = np.flatnonzero(records["flags"] & F_LAST)
        event_ts = records["ts_recv"][event_rows].astype(np.int64)
        if self.origin_ns is None and len(event_rows):
            self._start(int(event_ts[0]))
        # a part starts with each event in another bucket than the event before: cut at today's width, the
        # cuts hold after a merge too (a wider bucket's bounds are among a narrower one's)
        firsts = np.flatnonzero(np.diff((event_ts - (self.origin_ns or 0)) // self.bucket_ns)) + 1
        bounds: list[int] = [0, *(event_rows[firsts - 1] + 1).tolist(), len(records)]
        first_ts: list[int] = event_ts[np.concatenate([[0], firsts])].tolist() if len(event_rows) else []
        # every instrument of the records counts as touched in each of their buckets: one sampled when it did
        # not change is sampled as it is, and this costs one pass over the records, not one per part
        touched = _instruments(records["instrument_id"])
        trades = _Trades(records, bounds)
        for part in range(len(bounds) - 1):
            # records that end no event (a stream's unfinished tail) stay in the open bucket
            if part < len(first_ts):
                self._advance(first_ts[part], market)
            self._touched |= touched
            yield records[bounds[part] : bounds[part + 1]]
            trades.add_to(self._trades, part)

    def finish(self, market: Market) -> None:
        """The stream has ended: close the open bucket on the books as they are."""
        if self.origin_ns is not None:
            self._close(market)
            self.current += 1

    def view(self, instrument_id: int) -> HistoryView:
        """Every closed bucket of one instrument, its book carried over the buckets it had no records in."""
        entries = self._buckets.get(instrument_id, {})
        shown: list[BucketView] = []
        last = EMPTY
        for index in range(self.current):
            entry = entries.get(index)
            crossed = last.crossed_at_end
            if entry is not None:
                last, crossed = entry, entry.crossed
            start = self._start_ns(index)
            shown.append(
                BucketView(
                    start,
                    start + self.bucket_ns - 1,
                    last.best_bid,
                    last.best_ask,
                    crossed,
                    last.bids,
                    last.asks,
                    entry.trades if entry is not None else [],
                )
            )
        return HistoryView(instrument_id, self.bucket_ns, 1_000_000_000, shown)

    def _start(self, origin_ns: int) -> None:
        self.origin_ns = origin_ns
        if self.end_hint_ns is not None and self.end_hint_ns > origin_ns:
            self.bucket_ns = -(-(self.end_hint_ns - origin_ns) // self.max_buckets)

    def _start_ns(self, bucket: int) -> int:
        assert self.origin_ns is not None
        return self.origin_ns + bucket * self.bucket_ns

    def _bucket_of(self, ts_recv: int) -> int:
        assert self.origin_ns is not None
        return max((ts_recv - self.origin_ns) // self.bucket_ns, self.current)

    def _advance(self, ts_recv: int, market: Market) -> None:
        """Make the bucket of ``ts_recv`` the open one, closing the open one first if it is another."""
        if self._bucket_of(ts_recv) == self.current:
            return
        self._close(market)
        while self._bucket_of(ts_recv) >= self.max_buckets:
            self._merge()
        self.current = self._bucket_of(ts_recv)

    def _close(self, market: Market) -> None:
        """Sample the books of the instruments with records in the open bucket: its end."""
        for instrument_id in self._touched:
            books = market.instrument_books(instrument_id)
            bids = _top_levels(books, BID, self.levels)
            asks = _top_levels(books, ASK, self.levels)
            crossed = bool(books) and market.crossing(instrument_id, None).crossed
            bucket = Bucket(
                bids[0][0] if bids else None,
                asks[0][0] if asks else None,
                crossed,
                crossed,
                bids,
                asks,
                _largest(self._trades.pop(instrument_id, {})),
            )
            buckets = self._buckets.setdefault(instrument_id, {})
            earlier = buckets.get(self.current)  # a merge made the open bucket one that had closed
            buckets[self.current] = bucket if earlier is None else _combine(earlier, bucket)
        self._touched.clear()

    def _merge(self) -> None:
        """Neighbours in pairs: half as many buckets, twice as wide."""
        self.bucket_ns *= 2
        self.current //= 2
        for instrument_id, buckets in self._buckets.items():
            merged: dict[int, Bucket] = {}
            for index in sorted(buckets):
                earlier = merged.get(index // 2)
                merged[index // 2] = buckets[index] if earlier is None else _combine(earlier, buckets[index])
            self._buckets[instrument_id] = merged


def _top_levels(books: list[OrderBook], side: int, depth: int) -> list[tuple[int, int]]:
    """(price, size) of the consolidated book's best ``depth`` levels of ``side``, best first."""
    if len(books) == 1:  # the common case, without merging
        levels = books[0].bids if side == BID else books[0].asks
        return [(price, levels[price].size) for price in best_prices(books[0], side, depth)]
    return [(price, size) for price, size, _ in merged_raw_levels(books, side, depth)]


def _instruments(instrument_ids: np.ndarray) -> set[int]:
    if not len(instrument_ids):
        return set()
    first = instrument_ids[0]
    if (instrument_ids == first).all():  # the common case, without np.unique's sort
        return {int(first)}
    return set(np.unique(instrument_ids).tolist())


class _Trades:
    """The trades among some records cut in parts, summed into the open bucket part by part."""

    def __init__(self, records: MboArray, bounds: list[int]) -> None:
        rows = np.flatnonzero((records["action"] == TRADE_CODE) & (records["price"] != UNDEF_PRICE))
        self.bounds: list[int] = np.searchsorted(rows, bounds).tolist()
        """Index of the first trade of each part, and their number."""
        self.instrument_ids: list[int] = records["instrument_id"][rows].tolist()
        self.prices: list[int] = records["price"][rows].tolist()
        self.sizes: list[int] = records["size"][rows].tolist()
        self.sides: list[bytes] = records["side"][rows].tolist()

    def add_to(self, open_trades: dict[int, dict[tuple[int, str], int]], part: int) -> None:
        """Sum the trades of one part into ``open_trades``."""
        for index in range(self.bounds[part], self.bounds[part + 1]):
            traded = open_trades.setdefault(self.instrument_ids[index], {})
            key = (self.prices[index], self.sides[index].decode("ascii"))
            traded[key] = traded.get(key, 0) + self.sizes[index]
            if len(traded) > 2 * MAX_TRADE_PRICES:
                open_trades[self.instrument_ids[index]] = {
                    (price, side): size for price, size, side in _largest(traded)
                }


def _largest(traded: dict[tuple[int, str], int]) -> Trades:
    """The MAX_TRADE_PRICES largest (price, side) sizes, by price."""
    kept = sorted(traded.items(), key=lambda item: item[1], reverse=True)[:MAX_TRADE_PRICES]
    return sorted((price, size, side) for (price, side), size in kept)


def _combine(earlier: Bucket, later: Bucket) -> Bucket:
    """Two buckets one after the other as one: the later one's end, the trades of both."""
    traded: dict[tuple[int, str], int] = {}
    for price, size, side in (*earlier.trades, *later.trades):
        traded[(price, side)] = traded.get((price, side), 0) + size
    return msgspec.structs.replace(later, crossed=earlier.crossed or later.crossed, trades=_largest(traded))
