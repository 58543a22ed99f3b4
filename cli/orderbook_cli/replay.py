"""Replay a DBN file through the order book, offline, in one process."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import msgspec
from tqdm import tqdm

from obm_shared.dbn_file import MboFile, open_mbo_file
from obm_shared.records import MboArray
from receiver.book.adapter import EventAligner, apply_records
from receiver.book.market import Market
from receiver.book.views import market_views
from receiver.event_lines import EventCapturer, encode_lines
from receiver.history.points import EventPoint, Point, last_event, prefix_cut

RECORDS_PER_BATCH = 65_536


class _Replay:
    """A fresh market for one file, and the per-event lines of what is applied to it, when asked for."""

    def __init__(self, mbo_file: MboFile, depth: int, events_out: IO[bytes] | None) -> None:
        self.market = Market(symbols=mbo_file.metadata().instruments)
        self.events_out = events_out
        self.capturer = EventCapturer(self.market, depth) if events_out is not None else None

    def apply(self, records: MboArray) -> None:
        apply_records(self.market, records, self.capturer)
        if self.capturer is not None and self.events_out is not None:
            self.events_out.write(encode_lines(self.capturer.take()))


def replay_file(path: Path, depth: int, events_out: IO[bytes] | None = None, progress: bool = True) -> Market:
    """Apply every record of ``path`` to a fresh market; optionally write one JSON line per event."""
    mbo_file = open_mbo_file(path)
    replay = _Replay(mbo_file, depth, events_out)
    total = mbo_file.count_records()  # also refuses a file cut short
    with tqdm(total=total, unit="rec", unit_scale=True, disable=not progress, desc=path.name) as bar:
        for records in mbo_file.batches(RECORDS_PER_BATCH):
            replay.apply(records)
            bar.update(len(records))
    return replay.market


def replay_until(
    path: Path, point: Point, depth: int, events_out: IO[bytes] | None = None, progress: bool = True
) -> tuple[Market, EventPoint | None]:
    """Apply the prefix of ``path`` that makes the book at ``point``, and say which event it ends on (None
    before the first); the lines written are that prefix's. Reading stops at the first event past the point."""
    mbo_file = open_mbo_file(path)
    replay = _Replay(mbo_file, depth, events_out)
    aligner = EventAligner()
    reached: EventPoint | None = None
    with tqdm(unit="rec", unit_scale=True, disable=not progress, desc=path.name) as bar:
        for records in mbo_file.batches(RECORDS_PER_BATCH):
            for events in aligner.slices(records, RECORDS_PER_BATCH):
                events_before = replay.market.accounting.events
                cut = prefix_cut(events, point, events_before)
                replay.apply(events[: cut.length])
                reached = last_event(events, cut.length, events_before) or reached
                if not cut.beyond:
                    return replay.market, reached
            bar.update(len(records))
    # past the last event: a partial event left at the end of the file is never part of a point
    return replay.market, reached


def replay_document(market: Market, depth: int) -> dict[str, object]:
    """The final books and the accounting as one JSON-ready document."""
    return {
        "accounting": market.accounting.as_dict(),
        "books": [msgspec.to_builtins(view) for view in market_views(market, depth)],
    }


def point_document(market: Market, reached: EventPoint | None, depth: int) -> dict[str, object]:
    """The books at a point as :func:`replay_document` has them, after the event they answer for (null before
    the first event)."""
    return {"point": msgspec.to_builtins(reached), **replay_document(market, depth)}
