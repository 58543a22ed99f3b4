"""The books at a point of a recorded run: the nearest checkpoint before it, then the recorded records up to it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, NamedTuple, TypeVar

from receiver.book.adapter import apply_records
from receiver.book.market import Market
from receiver.history.points import AtTime, EventPoint, Point, last_event, prefix_cut
from receiver.history.recording import Progress, Recording

READ_RECORDS: Final = 65_536
"""Records read from the recording at a time (3.5 MiB)."""

_T = TypeVar("_T")


class BeyondReceived(Exception):
    """The point is past what a run still being received has recorded."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(
            f"the point is beyond what has arrived: {progress.events} events, the last received at "
            f"{progress.last_ts_recv} ns"
        )
        self.progress = progress


class PointBooks(NamedTuple):
    """The market after a point's prefix, the event it ends on (None before the first), and its length."""

    market: Market
    event: EventPoint | None
    records: int


def books_at(recording: Recording, point: Point) -> PointBooks:
    """The books after ``point``'s prefix of the recorded stream. Raises :class:`BeyondReceived` when the run is
    still being received and what has arrived does not yet decide the prefix. Reads files: call it in a thread."""
    if not recording.finished:
        _check_received(recording.progress(), point)
    start_point = recording.nearest_checkpoint(point)
    market = recording.market_at(start_point)
    start, events = start_point.record_index, start_point.events
    event = (
        EventPoint(events - 1, start_point.ts_recv, start_point.ts_event)
        if events and start_point.ts_recv is not None and start_point.ts_event is not None
        else None
    )
    size = READ_RECORDS
    while True:
        records = recording.read(start, size)
        cut = prefix_cut(records, point, events)
        if cut.length:
            apply_records(market, records[: cut.length])
            event = last_event(records, cut.length, events) or event
            events = event.event_index + 1 if event is not None else events
            start += cut.length
        if not cut.beyond or (len(records) < size and not cut.length):
            return PointBooks(market, event, start)
        if not cut.length:  # one event longer than a read
            size *= 2


def _check_received(progress: Progress, point: Point) -> None:
    """Raises :class:`BeyondReceived` unless later records cannot change the point's prefix."""
    if isinstance(point, AtTime):
        # records arrive in ts_recv order: one received after the point ends its prefix before it
        decided = progress.last_ts_recv is not None and progress.last_ts_recv > point.ns
    else:
        decided = progress.events > point.index
    if not decided:
        raise BeyondReceived(progress)


class Seeks:
    """Runs seeks in threads, at most ``limit`` at once: each holds a market of its own while it runs."""

    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)

    async def run(self, work: Callable[[], _T]) -> _T:
        async with self._slots:
            return await asyncio.to_thread(work)
