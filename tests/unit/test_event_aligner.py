"""EventAligner cuts record arrays into slices of whole events, about a target size each."""

from __future__ import annotations

from databento_dbn import Side

from obm_shared.records import MboRecord, records_to_array
from receiver.book.adapter import EventAligner
from tests.unit.test_book_rules import add


def event(first_order_id: int, records: int) -> list[MboRecord]:
    """One event of ``records`` adds: F_LAST on its last record only."""
    return [
        add(Side.BID, "10", 1, order_id, flags=0)
        for order_id in range(first_order_id, first_order_id + records - 1)
    ] + [add(Side.BID, "10", 1, first_order_id + records - 1)]


def slice_sizes(aligner: EventAligner, records: list[MboRecord], target: int) -> list[int]:
    return [len(part) for part in aligner.slices(records_to_array(records), target)]


def test_events_are_grouped_up_to_the_target() -> None:
    records = event(1, 2) + event(3, 2) + event(5, 2) + event(7, 1)
    assert slice_sizes(EventAligner(), records, 4) == [4, 3]


def test_a_first_event_longer_than_the_target_is_a_slice_of_its_own() -> None:
    """Not the whole array in one slice: API reads get in after the long event."""
    records = event(1, 5) + event(6, 1) + event(7, 1) + event(8, 1) + event(9, 1)
    assert slice_sizes(EventAligner(), records, 2) == [5, 2, 2]


def test_a_later_event_longer_than_the_target_is_a_slice_of_its_own() -> None:
    records = event(1, 1) + event(2, 4) + event(6, 1)
    assert slice_sizes(EventAligner(), records, 2) == [1, 4, 1]


def test_an_unfinished_event_waits_for_the_next_array() -> None:
    aligner = EventAligner()
    first, rest = event(1, 3)[:2], event(1, 3)[2:]
    assert slice_sizes(aligner, event(10, 1) + first, 8) == [1]
    assert slice_sizes(aligner, rest, 8) == [3]
    assert aligner.flush() is None
