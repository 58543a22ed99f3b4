"""Turns DBN MBO records into book operations on a :class:`Market`.

This is the hot path. Records arrive as a NumPy array in DBN layout; each column is converted to a Python
list once per batch (C speed) and the loop then does a handful of int comparisons and dict operations per
record. Event boundaries (F_LAST) are where crossing state is evaluated and observers are called.
"""

from __future__ import annotations

import numpy as np
from mypy_extensions import mypyc_attr

from obm_shared.dbn import (
    ADD,
    CANCEL,
    CLEAR,
    CLEAR_CODE,
    F_LAST,
    F_MAYBE_BAD_BOOK,
    F_TOB,
    FILL,
    MODIFY,
    NO_ACTION,
    TRADE,
)
from obm_shared.records import MboArray
from receiver.book.accounting import SkipReason
from receiver.book.book import OrderBook, SkippedRecord
from receiver.book.market import Market

IGNORED_ACTIONS = frozenset((TRADE, FILL, NO_ACTION))
"""Trade, Fill and None: they leave the book as it is."""


@mypyc_attr(allow_interpreted_subclasses=True)
class EventObserver:
    """Told of each complete event while records are applied: subclass it and override :meth:`on_event`.

    A class, not a callable, so that the compiled hot path calls a compiled observer natively, its ints
    unboxed, rather than through Python's calling convention."""

    def on_event(self, book: OrderBook, ts_event: int, ts_recv: int, sequence: int) -> None:
        """Called after the event's F_LAST record, with the book it ended on and the record's fields."""
        raise NotImplementedError


def apply_records(market: Market, records: MboArray, observer: EventObserver | None = None) -> None:
    """Apply every record in order, counting each one in ``market.accounting``."""
    accounting = market.accounting
    skipped = accounting.skipped
    ignored = as_add = skips = 0
    book: OrderBook  # set by the first record: no book key is -1
    book_key = -1
    # key -> (book, the book again if other publishers quote its instrument, else None), as this call meets them
    books: dict[int, tuple[OrderBook, OrderBook | None]] = {}
    shared: OrderBook | None = None
    end_event = market.end_event
    event_rows = np.flatnonzero(records["flags"] & F_LAST)
    next_event = 0  # the observer's index into its extra fields
    if observer is not None:  # the observer's extra fields, for event rows only
        event_ts: list[int] = records["ts_event"][event_rows].tolist()
        event_sequences: list[int] = records["sequence"][event_rows].tolist()

    # one int per record says which book it is for: (instrument_id << 16) | publisher_id. The columns are
    # indexed, not zipped: a zip would make a tuple per record
    book_keys = (records["instrument_id"].astype(np.int64) << 16) | records["publisher_id"]
    keys: list[int] = book_keys.tolist()
    actions: list[int] = records["action"].view(np.uint8).tolist()
    sides: list[int] = records["side"].view(np.uint8).tolist()
    order_ids: list[int] = records["order_id"].tolist()
    prices: list[int] = records["price"].tolist()
    sizes: list[int] = records["size"].tolist()
    all_flags: list[int] = records["flags"].tolist()
    all_ts_recv: list[int] = records["ts_recv"].tolist()
    for row in range(len(keys)):
        key = keys[row]
        action = actions[row]
        flags = all_flags[row]
        if key != book_key:
            if shared is not None and shared.best_changed:  # an event went on to another book: see below
                market.share_best_change(shared)
            book_key = key
            known = books.get(key)
            if known is None:
                count = len(market.books)
                book = market.book(key >> 16, key & 0xFFFF)
                if len(market.books) != count:  # a new book: its siblings are now shared too
                    books.clear()
                known = books[key] = (
                    book,
                    book if len(market.by_instrument[book.instrument_id]) > 1 else None,
                )
            book, shared = known
        try:
            if action == ADD:
                if flags & F_TOB:
                    book.replace_top_of_book(sides[row], prices[row], sizes[row])
                else:
                    book.add(order_ids[row], sides[row], prices[row], sizes[row])
            elif action == CANCEL:
                book.cancel(order_ids[row], sides[row], sizes[row])
            elif action == MODIFY:
                if book.modify(order_ids[row], sides[row], prices[row], sizes[row]):
                    as_add += 1
            elif action == CLEAR:
                book.clear()
            elif action in IGNORED_ACTIONS:
                ignored += 1
            else:
                raise SkippedRecord(SkipReason.UNKNOWN_ACTION)
        except SkippedRecord as skip:
            skipped[skip.reason] += 1
            skips += 1
        if flags & F_LAST:
            # Crossing depends on best prices only: it can change after an event that moved them, and then
            # only if the book is crossed now, or was, or another publisher quotes the instrument. So the
            # common event costs one attribute read here. An event that spans publishers of an instrument
            # ends on one of them: the others' moves are shared with it (share_best_change).
            if book.best_changed:
                book.best_changed = False
                if (
                    shared is not None
                    or book.best_bid_price >= book.best_ask_price
                    or book.crossing.since_ns is not None
                ):
                    end_event(book, all_ts_recv[row])
            if observer is not None:
                observer.on_event(book, event_ts[next_event], all_ts_recv[row], event_sequences[next_event])
                next_event += 1
    # the next call may end the event on another publisher's book
    if shared is not None and shared.best_changed:
        market.share_best_change(shared)
    _mark_maybe_bad(market, records, book_keys)
    accounting.records += len(records)
    accounting.applied += len(records) - ignored - skips
    accounting.ignored += ignored
    accounting.modify_unknown_as_add += as_add
    accounting.events += len(event_rows)


def _mark_maybe_bad(market: Market, records: MboArray, book_keys: np.ndarray) -> None:
    """Set ``maybe_bad`` on each book that had an F_MAYBE_BAD_BOOK record after its last Clear in ``records``.

    Done once per slice rather than per record (only views read the mark, and only between slices); a Clear
    in the loop has already reset the mark of a book it cleared."""
    flagged = np.flatnonzero(records["flags"] & F_MAYBE_BAD_BOOK)
    if not len(flagged):
        return
    clears = np.flatnonzero(records["action"] == CLEAR_CODE)
    for key in np.unique(book_keys[flagged]).tolist():
        last_flagged = flagged[book_keys[flagged] == key][-1]
        key_clears = clears[book_keys[clears] == key]
        if not len(key_clears) or key_clears[-1] <= last_flagged:  # a flagged Clear leaves it marked
            market.book(key >> 16, key & 0xFFFF).maybe_bad = True


class EventAligner:
    """Cuts record arrays at event boundaries, so a book is only ever observed between complete events.

    Records after the last F_LAST of an array are held back and prepended to the next array.
    """

    def __init__(self) -> None:
        self._pending: MboArray | None = None

    def slices(self, records: MboArray, target: int) -> list[MboArray]:
        """Complete events only, in slices of about ``target`` records (an event is never split)."""
        if self._pending is not None and len(self._pending):
            records = np.concatenate([self._pending, records])
        event_ends = np.flatnonzero(records["flags"] & F_LAST) + 1
        complete = int(event_ends[-1]) if len(event_ends) else 0
        self._pending = records[complete:]
        slices = []
        start = 0
        while start < complete:
            within = np.searchsorted(event_ends, start + target, side="right") - 1  # last end within target
            first = np.searchsorted(event_ends, start, side="right")  # end of the event starting here
            cut = int(event_ends[max(within, first)])  # that event alone when it is longer than target
            slices.append(records[start:cut])
            start = cut
        return slices

    def flush(self) -> MboArray | None:
        """The records of an unfinished last event (applied as they are at the end of a stream)."""
        pending, self._pending = self._pending, None
        return pending if pending is not None and len(pending) else None
