"""A snapshot session's records: the books at its start as Databento's MBO snapshot records, then the replay.

The session reads its instruments' records from the beginning of the data. Those before the start are applied
to the receiver's book (:class:`Market`) instead of being sent: the prefix is the project's book at a time (every
complete event whose F_LAST record has ``ts_recv <=`` the time), taken at one nanosecond before the start, so
the replay that follows is what the same subscription without a snapshot sends. Then, per (instrument,
publisher) book, Databento's live MBO snapshot: a Clear, an Add per resting order, every record flagged
F_SNAPSHOT and F_BAD_TS_RECV, F_LAST on the book's last one. Then every record after the prefix, so the
snapshot and the replay together make the books a replay from the beginning makes: when an event straddles
the start, the replay begins with its records before the start (they are not in the books).

Memory holds one batch of the files and the books, whatever the files' sizes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from obm_shared.dbn import (
    ADD,
    ASK,
    BID,
    CLEAR,
    F_BAD_TS_RECV,
    F_LAST,
    F_SNAPSHOT,
    F_TOB,
    MBO_RTYPE,
    NO_SIDE,
    UNDEF_PRICE,
)
from obm_shared.records import MBO_DTYPE, MBO_RECORD_SIZE, MboArray
from receiver.book.adapter import EventAligner, apply_records
from receiver.book.book import OrderBook
from receiver.book.level import PriceLevel
from receiver.book.market import Market
from receiver.history.points import AtTime, prefix_cut

SNAPSHOT_FLAGS = F_SNAPSHOT | F_BAD_TS_RECV
"""Databento's flags on every snapshot record: ts_recv is when the snapshot was made, not when a record came."""


def with_snapshot(batches: Iterator[MboArray], start_ns: int, records_per_batch: int) -> Iterator[MboArray]:
    """``batches`` (a session's records from the beginning of the data, in ts_recv order) as the session sends
    them: the records before ``start_ns`` (UNIX ns) as the snapshot of the books they make, then the others."""
    market = Market()
    aligner = EventAligner()
    # the book just before the start; a start at 0 has nothing before it
    point = AtTime(start_ns - 1) if start_ns else None
    last_event: MboArray | None = None
    for batch in batches:
        slices = aligner.slices(batch, records_per_batch)
        for index, events in enumerate(slices):
            cut = prefix_cut(events, point, 0) if point is not None else None
            taken = cut.length if cut is not None else 0
            if taken:
                apply_records(market, events[:taken])
                last_event = events[taken - 1]
            if cut is None or not cut.beyond:
                yield from _chunks(snapshot_records(market, last_event), records_per_batch)
                yield from _non_empty([events[taken:], *slices[index + 1 :], aligner.flush()])
                yield from batches
                return
    # every event is before the start; an unfinished last event never is
    yield from _chunks(snapshot_records(market, last_event), records_per_batch)
    yield from _non_empty([aligner.flush()])


def snapshot_records(market: Market, last_event: MboArray | None) -> MboArray:
    """Every book of ``market`` as snapshot records, by instrument then publisher, stamped with the ts_recv and
    ts_event of ``last_event`` (the F_LAST record the books were last changed by; none: no book to send)."""
    if last_event is None:
        return np.zeros(0, dtype=MBO_DTYPE)
    ts_recv, ts_event = int(last_event["ts_recv"]), int(last_event["ts_event"])
    books = [market.books[key] for key in sorted(market.books)]
    return np.concatenate([book_records(book, ts_recv, ts_event) for book in books])


def book_records(book: OrderBook, ts_recv: int, ts_event: int) -> MboArray:
    """One book as Databento's live MBO snapshot sends it: a Clear, then an Add per resting order, bids from
    the best level down and then asks from the best up, each level's orders front of the queue first; a
    top-of-book venue's level (a size without orders) as an F_TOB Add ahead of its side's orders.

    The book keeps no order's own ts_event or sequence: every record carries ``ts_event`` and sequence 0."""
    rows: list[_Row] = [(CLEAR, NO_SIDE, 0, UNDEF_PRICE, 0, SNAPSHOT_FLAGS)]
    _side_rows(rows, BID, reversed(book.bids.values()))
    _side_rows(rows, ASK, iter(book.asks.values()))
    actions, sides, order_ids, prices, sizes, flags = zip(*rows, strict=True)
    records = np.zeros(len(rows), dtype=MBO_DTYPE)
    records["length"] = MBO_RECORD_SIZE // 4
    records["rtype"] = MBO_RTYPE
    records["publisher_id"] = book.publisher_id
    records["instrument_id"] = book.instrument_id
    records["ts_event"] = ts_event
    records["ts_recv"] = ts_recv
    records["action"] = np.array(actions, dtype=np.uint8).view("S1")
    records["side"] = np.array(sides, dtype=np.uint8).view("S1")
    records["order_id"] = order_ids
    records["price"] = prices
    records["size"] = sizes
    records["flags"] = flags
    records["flags"][-1] |= F_LAST
    return records


_Row = tuple[int, int, int, int, int, int]
"""action, side, order_id, price, size, flags."""


def _side_rows(rows: list[_Row], side: int, levels: Iterator[PriceLevel]) -> None:
    """Append one side's rows, its levels in the order given."""
    orders: list[_Row] = []
    for level in levels:
        without_orders = level.size - sum(level.orders.values())
        if without_orders:  # an F_TOB Add replaces its whole side, so it goes first
            rows.append((ADD, side, 0, level.price, without_orders, SNAPSHOT_FLAGS | F_TOB))
        orders.extend(
            (ADD, side, order_id, level.price, size, SNAPSHOT_FLAGS)
            for order_id, size in level.orders.items()
        )
    rows.extend(orders)


def _chunks(records: MboArray, size: int) -> Iterator[MboArray]:
    for begin in range(0, len(records), size):
        yield records[begin : begin + size]


def _non_empty(pieces: list[MboArray | None]) -> Iterator[MboArray]:
    for piece in pieces:
        if piece is not None and len(piece):
            yield piece
