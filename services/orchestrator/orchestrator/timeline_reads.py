"""Reading the receiver's timeline of a run (market time range, events, checkpoints, liquidity history): the
history view's map, which every page polls while a run is received, so identical reads share one request."""

from __future__ import annotations

from typing import Any

from orchestrator.book_reads import BookSource
from orchestrator.read_cache import ReadCache

TIMELINE_MAX_ENTRIES = 16
"""Timelines kept: one per instrument and run a screenful of pages looks at; each is up to a few MB."""


def timeline_query(instrument_id: int | None, run_id: str | None) -> dict[str, Any]:
    """The receiver's ``GET /timeline`` query (also the cache's key, so its order is fixed)."""
    query: dict[str, Any] = {}
    if instrument_id is not None:
        query["instrument_id"] = instrument_id
    if run_id is not None:
        query["run_id"] = run_id
    return query


class TimelineReads:
    """The receiver's timelines, through a bounded read cache of their own (they are large and change slowly)."""

    def __init__(self, receiver: BookSource, max_age_seconds: float) -> None:
        self.receiver = receiver
        self.cache = ReadCache(max_age_seconds, max_entries=TIMELINE_MAX_ENTRIES)

    def forget(self) -> None:
        """Drop every timeline kept: a new run has begun."""
        self.cache.forget()

    async def read(self, instrument_id: int | None, run_id: str | None) -> bytes:
        """The receiver's JSON answer, as it sent it; raises the service errors."""
        query = timeline_query(instrument_id, run_id)
        answer: bytes = await self.cache.get(
            tuple(query.items()), lambda: self.receiver.request_bytes("GET", "/timeline", params=query)
        )
        return answer
