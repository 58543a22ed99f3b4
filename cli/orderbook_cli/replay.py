"""Replay a DBN file through the order book, offline, in one process."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import msgspec
from tqdm import tqdm

from obm_shared.dbn_file import open_mbo_file
from receiver.book.adapter import apply_records
from receiver.book.market import Market
from receiver.book.views import market_views
from receiver.event_lines import EventCapturer, encode_lines

RECORDS_PER_BATCH = 65_536


def replay_file(path: Path, depth: int, events_out: IO[bytes] | None = None, progress: bool = True) -> Market:
    """Apply every record of ``path`` to a fresh market; optionally write one JSON line per event."""
    mbo_file = open_mbo_file(path)
    market = Market(symbols=mbo_file.metadata().instruments)
    capturer = EventCapturer(market, depth) if events_out is not None else None
    total = mbo_file.count_records()  # also refuses a file cut short
    with tqdm(total=total, unit="rec", unit_scale=True, disable=not progress, desc=path.name) as bar:
        for records in mbo_file.batches(RECORDS_PER_BATCH):
            apply_records(market, records, capturer)
            if capturer is not None and events_out is not None:
                events_out.write(encode_lines(capturer.take()))
            bar.update(len(records))
    return market


def replay_document(market: Market, depth: int) -> dict[str, object]:
    """The final books and the accounting as one JSON-ready document."""
    return {
        "accounting": market.accounting.as_dict(),
        "books": [msgspec.to_builtins(view) for view in market_views(market, depth)],
    }
