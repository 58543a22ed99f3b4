"""Per-event lines: every captured line equals the consolidated book read afresh at that event, although the
capturer re-reads a side only when the books flag a change within its top levels."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given

from obm_shared.dbn_file import open_mbo_file
from obm_shared.records import MboArray, MboRecord, records_to_array
from receiver.book.adapter import apply_records
from receiver.book.book import OrderBook
from receiver.book.market import Market
from receiver.book.views import LevelView, book_view
from receiver.event_lines import EventCapturer, EventLevel, EventLine, encode_level, encode_lines
from tests.unit.observers import CallbackObserver
from tests.unit.test_book_properties import PROPERTY_SETTINGS, batched_sequences


def as_rows(levels: list[LevelView] | list[EventLevel]) -> list[tuple[str, int, int]]:
    return [(level.price, level.size, level.count) for level in levels]


def decoded(levels: list[msgspec.Raw]) -> list[EventLevel]:
    """A line's levels, from the JSON text it holds."""
    return [msgspec.json.decode(level, type=EventLevel) for level in levels]


def replay_checking_every_event(market: Market, batches: list[MboArray], depth: int) -> int:
    """Apply ``batches``, comparing each event's captured line with a fresh view; returns the events seen."""
    capturer = EventCapturer(market, depth)
    events = 0

    def check(book: OrderBook, ts_event: int, ts_recv: int, sequence: int) -> None:
        nonlocal events
        events += 1
        capturer.on_event(book, ts_event, ts_recv, sequence)
        (line,) = capturer.take()
        fresh = book_view(market, book.instrument_id, None, depth)
        where = f"event {events} (sequence {sequence}, instrument {book.instrument_id})"
        assert as_rows(decoded(line.bids)) == as_rows(fresh.bids), f"{where}: stale bids"
        assert as_rows(decoded(line.asks)) == as_rows(fresh.asks), f"{where}: stale asks"
        assert (line.orders, line.crossed, line.locked) == (fresh.orders, fresh.crossed, fresh.locked), where
        assert line.best_bid == (line.bids[0] if line.bids else None)
        assert line.best_ask == (line.asks[0] if line.asks else None)

    for batch in batches:
        apply_records(market, batch, CallbackObserver(check))
    return events


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "depth", "record_limit"), [("clx5", 10, None), ("clx5", 3, None), ("dbeq", 10, 120_000)]
)
def test_every_line_of_a_real_file_is_the_book_at_its_event(
    request: pytest.FixtureRequest, name: str, depth: int, record_limit: int | None
) -> None:
    path: Path = request.getfixturevalue(name)
    mbo_file = open_mbo_file(path)
    batches, total = [], 0
    for batch in mbo_file.batches(8_192):
        batches.append(batch)
        total += len(batch)
        if record_limit is not None and total >= record_limit:
            break
    market = Market(symbols=mbo_file.metadata().instruments)
    events = replay_checking_every_event(market, batches, depth)
    assert events == market.accounting.events > 1_000


@PROPERTY_SETTINGS
@given(batched_sequences())
def test_every_line_is_the_book_at_its_event(batches: list[list[MboRecord]]) -> None:
    # depth 2 with three prices per side: the watched window is often full, so changes outside it occur
    replay_checking_every_event(Market(), [records_to_array(batch) for batch in batches], depth=2)


def test_lines_are_json_with_decimal_prices() -> None:
    level = encode_level(EventLevel("65.4", 3, 2))
    line = EventLine(1, 2, 3, 7, "CLX5", level, None, [level], [], False, False, 2)
    encoded = encode_lines([line, line])
    assert encoded.endswith(b"\n") and encoded.count(b"\n") == 2
    assert json.loads(encoded.splitlines()[0]) == {
        "ts_event": 1,
        "ts_recv": 2,
        "sequence": 3,
        "instrument_id": 7,
        "symbol": "CLX5",
        "best_bid": {"price": "65.4", "size": 3, "count": 2},
        "best_ask": None,
        "bids": [{"price": "65.4", "size": 3, "count": 2}],
        "asks": [],
        "crossed": False,
        "locked": False,
        "orders": 2,
    }
