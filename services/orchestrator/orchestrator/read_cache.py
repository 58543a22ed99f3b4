"""Many readers, few upstream calls: identical reads within a short window share one request to a service.

While the receiver ingests at full speed, every request it serves costs ingest time. The orchestrator
absorbs the readers instead: a read asked again within ``max_age_seconds`` (or while the first is in flight)
gets the same answer, so a hundred clients cost the receiver a few requests a second. The book served is at
most that old, and always one the receiver returned whole, at an event boundary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class ReadCache:
    """Coalesces identical reads and keeps each answer for ``max_age_seconds``."""

    def __init__(self, max_age_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self.upstream_calls = 0
        self._entries: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The answer for ``key``: fresh from the cache, shared with a read in flight, or fetched now."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] <= self.max_age_seconds:
            return await asyncio.shield(entry[1])
        task = asyncio.ensure_future(fetch())
        self._entries[key] = (now, task)
        self.upstream_calls += 1
        try:
            return await asyncio.shield(task)
        except Exception:
            if self._entries.get(key, (now, None))[1] is task:  # failures are not kept
                del self._entries[key]
            raise
