"""Many readers, few upstream calls: identical reads share one request to a service, and no reader waits on it.

Every request the receiver serves costs it ingest time, so the orchestrator absorbs the readers: a read asked
again within ``max_age_seconds`` gets the same answer. For as long again after that, the next read starts one
refresh and is answered from the previous answer meanwhile (stale-while-revalidate), so readers never queue
behind an upstream round trip; an older answer is never served. A failed refresh drops the old answer: the
next read asks again and sees the failure.

Keys come from client queries, so the cache keeps at most ``max_entries`` answers and forgets the least
recently read first.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_MAX_ENTRIES = 256
"""Answers kept: every distinct book a screenful of clients watches, far fewer than clients can invent."""


def remember(entries: OrderedDict[K, V], key: K, value: V, max_entries: int) -> None:
    """Keep ``value`` as the most recently read entry, forgetting the least recently read beyond the bound."""
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > max_entries:
        entries.popitem(last=False)


class ReadCache:
    """Coalesces identical reads and keeps each answer for ``max_age_seconds``, at most ``max_entries``."""

    def __init__(
        self,
        max_age_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self.max_entries = max_entries
        self.upstream_calls = 0
        self._answers: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        """key -> (when its fetch started, the answer), least recently read first"""
        self._fetches: dict[Hashable, asyncio.Future[Any]] = {}
        self._generation = 0
        """Bumped by :meth:`forget`, so a fetch started before it keeps nothing it answers."""

    def __len__(self) -> int:
        """Answers kept."""
        return len(self._answers)

    def forget(self) -> None:
        """Drop every answer, and whatever fetches now in flight bring (a new run has begun: they were the last
        run's); readers waiting on those fetches still get them."""
        self._answers.clear()
        self._fetches.clear()
        self._generation += 1

    def fresh(self, key: Hashable) -> Any | None:
        """The answer for ``key`` if one is kept and younger than ``max_age_seconds``; None otherwise."""
        fetched_at, answer = self._answers.get(key, (-math.inf, None))
        return answer if self.clock() - fetched_at <= self.max_age_seconds else None

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The answer for ``key``: fresh from the cache, the last one while a newer is fetched, or fetched now."""
        fetched_at, answer = self._answers.get(key, (-math.inf, None))
        if fetched_at > -math.inf:
            self._answers.move_to_end(key)
        age = self.clock() - fetched_at
        if age <= self.max_age_seconds:
            return answer
        in_flight = self._fetches.get(key) or self._start_fetch(key, fetch)
        if age <= 2 * self.max_age_seconds:
            return answer
        return await asyncio.shield(in_flight)

    def _start_fetch(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> asyncio.Future[Any]:
        started, generation = self.clock(), self._generation
        in_flight = asyncio.ensure_future(fetch())
        self._fetches[key] = in_flight
        self.upstream_calls += 1

        def settle(done: asyncio.Future[Any]) -> None:
            if generation != self._generation:
                return
            del self._fetches[key]
            if done.cancelled() or done.exception() is not None:
                self._answers.pop(key, None)  # failures are not kept, nor is the answer they were to replace
                return
            remember(self._answers, key, (started, done.result()), self.max_entries)

        in_flight.add_done_callback(settle)
        return in_flight
