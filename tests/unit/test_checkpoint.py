"""A checkpoint of a whole market decodes to a market indistinguishable from it: same views, crossing,
accounting, queues, and the same books after the same further records."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest
from databento_dbn import F_LAST, F_TOB, UNDEF_PRICE, Action, Side
from hypothesis import given

from obm_shared.dbn import MBO_RTYPE
from obm_shared.dbn_file import open_mbo_file
from obm_shared.records import MboArray, MboRecord, records_to_array
from receiver.book.adapter import apply_records
from receiver.book.market import Market
from receiver.book.views import market_views
from receiver.history import checkpoint
from tests.unit.test_book_properties import PROPERTY_SETTINGS, batched_sequences

DEPTH = 1000
CUTS_PER_FILE = 8


def assert_same(original: Market, restored: Market, where: str) -> None:
    """Everything a reader or a further record can tell apart, with the first difference named."""
    assert restored.accounting.as_dict() == original.accounting.as_dict(), f"{where}: accounting differs"
    assert restored.symbols == original.symbols, f"{where}: symbols differ"
    views, restored_views = market_views(original, DEPTH), market_views(restored, DEPTH)
    assert len(restored_views) == len(views), f"{where}: {len(restored_views)} books, expected {len(views)}"
    for view, restored_view in zip(views, restored_views, strict=True):
        differing = {
            field: (getattr(restored_view, field), getattr(view, field))
            for field in view.__struct_fields__
            if getattr(restored_view, field) != getattr(view, field)
        }
        assert not differing, (
            f"{where}: book {view.symbol} publisher {view.publisher_id or 'consolidated'} differs "
            f"(field: (restored, original)): {differing}"
        )
    for key, book in original.books.items():
        twin = restored.books[key]
        assert (twin.best_bid_price, twin.best_ask_price, twin.best_changed, twin.maybe_bad) == (
            book.best_bid_price,
            book.best_ask_price,
            book.best_changed,
            book.maybe_bad,
        ), f"{where}: book {key}: best prices or marks differ"
        for side, levels in (("bid", book.bids), ("ask", book.asks)):
            for price, level in levels.items():
                queue = list((twin.bids if side == "bid" else twin.asks)[price].orders.items())
                assert queue == list(level.orders.items()), (
                    f"{where}: book {key} {side} queue at {price} differs"
                )
    assert restored.consolidated_crossings == original.consolidated_crossings, (
        f"{where}: consolidated crossing"
    )
    assert checkpoint.encode(restored) == checkpoint.encode(original), f"{where}: re-encoded bytes differ"


def round_trip(market: Market) -> Market:
    return checkpoint.decode(checkpoint.encode(market))


def test_an_empty_market_round_trips() -> None:
    market = Market(symbols={5602: "ESM4"})
    restored = round_trip(market)
    assert_same(market, restored, "empty market")
    assert restored.books == {} and restored.accounting.records == 0


def test_bytes_that_are_no_checkpoint_are_refused() -> None:
    with pytest.raises(msgspec.DecodeError):
        checkpoint.decode(b"\x93not a checkpoint")


@given(batched_sequences())
@PROPERTY_SETTINGS
def test_a_market_restored_between_batches_goes_on_as_the_original(batches: list[list[MboRecord]]) -> None:
    for cut in range(len(batches) + 1):
        original = Market()
        for batch in batches[:cut]:
            apply_records(original, records_to_array(batch))
        restored = round_trip(original)
        assert_same(original, restored, f"restored after batch {cut}")
        for batch in batches[cut:]:
            apply_records(original, records_to_array(batch))
            apply_records(restored, records_to_array(batch))
        assert_same(original, restored, f"restored after batch {cut}, then the rest applied")


def tob_record(side: str, price: int, size: int, publisher: int = 2, action: str = Action.ADD) -> MboRecord:
    """``side`` and ``action`` are databento_dbn members, typed ``str`` by its stub; ``str()`` gives the code."""
    return MboRecord(
        ts_recv=1,
        ts_event=1,
        rtype=MBO_RTYPE,
        publisher_id=publisher,
        instrument_id=7,
        action=str(action),
        side=str(side),
        price=price,
        size=size,
        channel_id=0,
        order_id=0,
        flags=F_LAST | F_TOB,
        ts_in_delta=0,
        sequence=0,
    )


def test_a_top_of_book_level_with_orders_joined_round_trips_with_its_size() -> None:
    joined = msgspec.structs.replace(
        tob_record(Side.BID, 100, 1), order_id=11, flags=F_LAST, action=str(Action.ADD)
    )
    records = [
        tob_record(Side.BID, 100, 5),
        tob_record(Side.ASK, 90, 3),  # crossed against the bid
        joined,
        msgspec.structs.replace(joined, order_id=12, price=99, size=4),
        tob_record(Side.BID, 100, 7, publisher=3),  # a second publisher: a consolidated book
    ]
    original = Market()
    apply_records(original, records_to_array(records))
    restored = round_trip(original)
    assert_same(original, restored, "top-of-book levels")
    assert restored.books[(7, 2)].bids[100].size == 6 and restored.books[(7, 2)].bids[100].count == 1
    further = [
        msgspec.structs.replace(joined, action=str(Action.CANCEL)),
        tob_record(Side.ASK, UNDEF_PRICE, 0),
        tob_record(Side.BID, 95, 2, publisher=3),
    ]
    for market in (original, restored):
        apply_records(market, records_to_array(further))
    assert_same(original, restored, "top-of-book levels, then further records")


def file_records(path: Path) -> tuple[dict[int, str], MboArray]:
    mbo_file = open_mbo_file(path)
    return dict(mbo_file.metadata().instruments), np.concatenate(list(mbo_file.batches(1 << 20)))


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["clx5", "esm4", "dbeq"])
def test_a_real_market_restored_at_cut_points_goes_on_as_the_original(
    name: str, request: pytest.FixtureRequest
) -> None:
    symbols, records = file_records(request.getfixturevalue(name))
    event_ends = np.flatnonzero(records["flags"] & F_LAST) + 1
    rng = np.random.default_rng(15)
    # the first event, event boundaries, and cuts inside events (between two records of one event)
    cuts = sorted(
        {
            int(event_ends[0]),
            *rng.choice(event_ends, CUTS_PER_FILE // 2).tolist(),
            *rng.integers(1, len(records), CUTS_PER_FILE // 2).tolist(),
            len(records),
        }
    )
    original = Market(symbols=symbols)
    apply_records(original, records[: cuts[0]])
    for cut, following in zip(cuts, [*cuts[1:], len(records)], strict=True):
        restored = round_trip(original)
        assert_same(original, restored, f"{name} restored after record {cut}")
        for market in (original, restored):
            apply_records(market, records[cut:following])
        assert_same(original, restored, f"{name} restored after record {cut}, then to record {following}")
