"""Many readers, few upstream calls: identical reads share one request to a service, and no reader waits on it.

Every request the receiver serves costs it ingest time, so the orchestrator absorbs the readers: a read asked
again within ``max_age_seconds`` gets the same answer. For as long again after that, the next read starts one
refresh and is answered from the previous answer meanwhile (stale-while-revalidate), so readers never queue
behind an upstream round trip; an older answer is never served. A failed refresh drops the old answer: the
next read asks again and sees the failure.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class ReadCache:
    """Coalesces identical reads and keeps each answer for ``max_age_seconds``."""

    def __init__(self, max_age_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self.upstream_calls = 0
        self._answers: dict[Hashable, tuple[float, Any]] = {}
        """key -> (when its fetch started, the answer)"""
        self._fetches: dict[Hashable, asyncio.Future[Any]] = {}

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The answer for ``key``: fresh from the cache, the last one while a newer is fetched, or fetched now."""
        fetched_at, answer = self._answers.get(key, (-math.inf, None))
        age = self.clock() - fetched_at
        if age <= self.max_age_seconds:
            return answer
        in_flight = self._fetches.get(key) or self._start_fetch(key, fetch)
        if age <= 2 * self.max_age_seconds:
            return answer
        return await asyncio.shield(in_flight)

    def _start_fetch(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> asyncio.Future[Any]:
        started = self.clock()
        in_flight = asyncio.ensure_future(fetch())
        self._fetches[key] = in_flight
        self.upstream_calls += 1

        def settle(done: asyncio.Future[Any]) -> None:
            del self._fetches[key]
            if done.cancelled() or done.exception() is not None:
                self._answers.pop(key, None)  # failures are not kept, nor is the answer they were to replace
            else:
                self._answers[key] = (started, done.result())

        in_flight.add_done_callback(settle)
        return in_flight
