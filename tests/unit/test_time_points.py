"""Points in history: times as people write them, and how much of a record array the book at a point takes."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obm_shared.dbn import F_LAST
from obm_shared.records import MBO_DTYPE, MboArray
from receiver.history.points import (
    MAX_TIME_NS,
    AtEvent,
    AtTime,
    EventPoint,
    PrefixCut,
    last_event,
    parse_time,
    prefix_cut,
)

# --- parse_time --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("1715126400059961441", 1_715_126_400_059_961_441),
        (" 42 ", 42),
        ("+7", 7),
        (str(MAX_TIME_NS), MAX_TIME_NS),
        (str(MAX_TIME_NS + 1), MAX_TIME_NS),  # after every record all the same
        ("9999-12-31T23:59:59.999999999Z", MAX_TIME_NS),
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.000000001Z", 1),
        ("2025-09-24T21:47:19.747164115Z", 1_758_750_439_747_164_115),
        ("2025-09-24T21:47:19.747164115+00:00", 1_758_750_439_747_164_115),
        ("2024-05-08T00:00:00.5Z", 1_715_126_400_500_000_000),
        ("2024-05-08T00:00:00Z", 1_715_126_400_000_000_000),
    ],
)
def test_a_time_is_nanoseconds_or_iso_utc(text: str, ns: int) -> None:
    assert parse_time(text) == ns


@given(st.integers(min_value=0, max_value=253_402_300_799_999_999_999))  # up to 9999-12-31T23:59:59.999999999
@settings(max_examples=300)
def test_iso_text_of_any_nanosecond_reads_back_as_it(ns: int) -> None:
    seconds, fraction = divmod(ns, 1_000_000_000)
    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert parse_time(f"{whole}.{fraction:09d}Z") == min(ns, MAX_TIME_NS)
    assert parse_time(f"{whole}.{fraction:09d}".rstrip("0").rstrip(".") + "+00:00") == min(ns, MAX_TIME_NS)
    if ns < 2**63:  # NumPy's own reading of the same text agrees, where its int64 nanoseconds reach
        assert int(np.datetime64(f"{whole}.{fraction:09d}", "ns").astype(np.int64)) == ns


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("abc", "not a number"),
        ("1.5", "not a number"),
        ("1e9", "not a number"),
        ("", "not a number"),
        ("-1", "negative"),
        ("-1715126400000000000", "negative"),
        ("1969-12-31T23:59:59.999999999Z", "negative"),
        ("2024-05-08T13:30:00.1234567891Z", "10 decimals"),
        ("2024-05-08T13:30:00", "not an ISO-8601 UTC time"),
        ("2024-05-08 13:30:00Z", "not an ISO-8601 UTC time"),
        ("2024-05-08", "not an ISO-8601 UTC time"),
        ("2024-05-08T13:30:00.Z", "not an ISO-8601 UTC time"),
        ("2024-05-08T13:30:00+02:00", "not in UTC"),
        ("2024-05-08T13:30:00-00:00", "not in UTC"),
        ("2024-02-30T13:30:00Z", "not a valid date"),
    ],
)
def test_a_wrong_time_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_time(text)


# --- prefix_cut --------------------------------------------------------------------------------------------


def records(ts_recv: list[int], last: list[bool]) -> MboArray:
    """Records with these ts_recv and F_LAST marks (ts_event 1 ns before ts_recv)."""
    array = np.zeros(len(ts_recv), dtype=MBO_DTYPE)
    array["ts_recv"] = ts_recv
    array["ts_event"] = np.array(ts_recv, dtype=np.uint64) - np.uint64(1)
    array["flags"] = [F_LAST if is_last else 0 for is_last in last]
    return array


# events: [10, 20] ends at row 1 (ts 20), [30] at row 2, [30] at row 3, [40, 50, 60] at row 6
STREAM = records([10, 20, 30, 30, 40, 50, 60], [False, True, True, True, False, False, True])


@pytest.mark.parametrize(
    ("ns", "cut"),
    [
        (0, PrefixCut(0, False)),  # before the first record
        (10, PrefixCut(0, False)),  # inside the first event
        (19, PrefixCut(0, False)),
        (20, PrefixCut(2, False)),  # exactly on the first event's F_LAST
        (29, PrefixCut(2, False)),
        (30, PrefixCut(4, False)),  # both events at 30
        (45, PrefixCut(4, False)),  # between records of the last event
        (59, PrefixCut(4, False)),
        (60, PrefixCut(7, True)),  # the last event: the point may take more of the stream
        (MAX_TIME_NS, PrefixCut(7, True)),
    ],
)
def test_the_prefix_at_a_time_ends_on_the_last_event_at_or_before_it(ns: int, cut: PrefixCut) -> None:
    assert prefix_cut(STREAM, AtTime(ns), 0) == cut


@pytest.mark.parametrize(
    ("index", "events_before", "cut"),
    [
        (0, 0, PrefixCut(2, False)),
        (1, 0, PrefixCut(3, False)),
        (2, 0, PrefixCut(4, False)),
        (3, 0, PrefixCut(7, False)),
        (4, 0, PrefixCut(7, True)),
        (4, 10, PrefixCut(0, False)),  # the point was in an earlier array
        (9, 10, PrefixCut(0, False)),
        (10, 10, PrefixCut(2, False)),
        (13, 10, PrefixCut(7, False)),
        (14, 10, PrefixCut(7, True)),
    ],
)
def test_the_prefix_at_event_k_ends_on_the_kth_last_record(
    index: int, events_before: int, cut: PrefixCut
) -> None:
    assert prefix_cut(STREAM, AtEvent(index), events_before) == cut


def test_an_array_without_events_is_passed_over_whole() -> None:
    assert prefix_cut(records([5, 6], [False, False]), AtTime(100), 3) == PrefixCut(0, True)
    assert prefix_cut(records([], []), AtEvent(0), 0) == PrefixCut(0, True)


def test_the_event_a_prefix_ends_on() -> None:
    assert last_event(STREAM, 0, 0) is None
    assert last_event(STREAM, 2, 0) == EventPoint(0, 20, 19)
    assert last_event(STREAM, 4, 5) == EventPoint(7, 30, 29)
    assert last_event(STREAM, 7, 0) == EventPoint(3, 60, 59)


@st.composite
def streams(draw: st.DrawFn) -> tuple[MboArray, list[int]]:
    """Records in ts_recv order ending on F_LAST, and cut points at event boundaries (arrays as read)."""
    steps = draw(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=40))
    last = draw(st.lists(st.booleans(), min_size=len(steps), max_size=len(steps)))
    last[-1] = True
    array = records(list(np.cumsum(steps) + 1), last)
    ends = (np.flatnonzero(array["flags"] & F_LAST) + 1).tolist()
    cuts = sorted(draw(st.sets(st.sampled_from(ends))))
    return array, cuts


@given(streams(), st.integers(min_value=0, max_value=130), st.booleans())
@settings(max_examples=300)
def test_streaming_in_arrays_takes_the_prefix_of_the_whole(
    stream: tuple[MboArray, list[int]], value: int, by_event: bool
) -> None:
    array, cuts = stream
    point = AtEvent(value // 3) if by_event else AtTime(value)
    # the prefix by the definition, over the whole stream: after the last F_LAST at or before the point
    event_ends = np.flatnonzero(array["flags"] & F_LAST) + 1
    if by_event:
        expected = int(event_ends[value // 3]) if value // 3 < len(event_ends) else len(array)
    else:
        within = event_ends[array["ts_recv"][event_ends - 1] <= value]
        expected = int(within[-1]) if len(within) else 0
    taken = events = 0
    for start, end in zip([0, *cuts], [*cuts, len(array)], strict=True):
        piece = array[start:end]
        cut = prefix_cut(piece, point, events)
        taken += cut.length
        events += int(np.count_nonzero(piece["flags"] & F_LAST))
        if not cut.beyond:
            break
    assert taken == expected
