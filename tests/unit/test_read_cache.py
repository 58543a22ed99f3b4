"""The orchestrator's read cache: identical reads share one upstream call within the window, and once the
window has passed readers get the last answer while one refresh is fetched."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from orchestrator.read_cache import ReadCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def upstream(*outcomes: bytes | Exception) -> Callable[[], Awaitable[bytes]]:
    """A fetch that answers, or fails with, each outcome in turn."""
    remaining = iter(outcomes)

    async def fetch() -> bytes:
        outcome = next(remaining)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return fetch


async def background_work_finishes() -> None:
    """A few event-loop turns: a started fetch runs, then its completion callback does."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_concurrent_identical_reads_share_one_upstream_call() -> None:
    cache = ReadCache(0.05)
    release = asyncio.Event()
    calls = 0

    async def fetch() -> bytes:
        nonlocal calls
        calls += 1
        await release.wait()
        return b"book"

    readers = [asyncio.create_task(cache.get(("depth", 10), fetch)) for _ in range(100)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*readers) == [b"book"] * 100
    assert calls == 1, f"100 readers cost {calls} upstream calls"


async def test_an_answer_is_reused_within_the_window_and_refreshed_after() -> None:
    clock = Clock()
    cache = ReadCache(0.05, clock=clock)
    fetch = upstream(b"first", b"second")
    assert await cache.get("k", fetch) == b"first"
    clock.now += 0.04
    assert await cache.get("k", fetch) == b"first"
    clock.now += 0.02
    assert await cache.get("k", fetch) == b"first", "a stale answer is served while the refresh runs"
    await background_work_finishes()
    assert await cache.get("k", fetch) == b"second"
    assert cache.upstream_calls == 2


async def test_readers_of_a_stale_answer_do_not_wait_and_share_one_refresh() -> None:
    clock = Clock()
    cache = ReadCache(0.05, clock=clock)
    release = asyncio.Event()
    calls = 0

    async def fetch() -> bytes:
        nonlocal calls
        calls += 1
        if calls > 1:
            await release.wait()
        return f"answer {calls}".encode()

    assert await cache.get("k", fetch) == b"answer 1"
    clock.now += 0.08
    stale = [await cache.get("k", fetch) for _ in range(50)]  # would hang if a reader waited on the refresh
    assert stale == [b"answer 1"] * 50
    release.set()
    await background_work_finishes()
    assert await cache.get("k", fetch) == b"answer 2"
    assert calls == 2, f"50 readers of a stale answer cost {calls - 1} refreshes"


async def test_an_answer_older_than_twice_the_window_is_never_served() -> None:
    clock = Clock()
    cache = ReadCache(0.05, clock=clock)
    fetch = upstream(b"run 1 book", b"run 2 book")
    assert await cache.get("k", fetch) == b"run 1 book"
    clock.now += 0.11
    assert await cache.get("k", fetch) == b"run 2 book", (
        "a reader long after the last one waits for the fresh book"
    )


async def test_a_failure_is_not_kept() -> None:
    cache = ReadCache(10)
    fetch = upstream(ConnectionError("receiver down"), b"book")
    with pytest.raises(ConnectionError):
        await cache.get("k", fetch)
    assert await cache.get("k", fetch) == b"book", "a failed read must not be served from the cache"


async def test_a_failed_refresh_drops_the_stale_answer_so_the_next_reader_sees_the_failure() -> None:
    clock = Clock()
    cache = ReadCache(0.05, clock=clock)
    fetch = upstream(b"book", ConnectionError("receiver down"), ConnectionError("receiver down"))
    assert await cache.get("k", fetch) == b"book"
    clock.now += 0.08
    assert await cache.get("k", fetch) == b"book"  # answered stale; the refresh fails in the background
    await background_work_finishes()
    with pytest.raises(ConnectionError):
        await cache.get("k", fetch)


async def test_ten_thousand_distinct_keys_keep_the_cache_at_its_bound() -> None:
    cache = ReadCache(60, max_entries=256)
    for key in range(10_000):
        assert await cache.get(("depth", key), upstream(b"book %d" % key)) == b"book %d" % key
    assert len(cache) == 256, f"{len(cache)} answers kept for a bound of 256"
    assert cache.upstream_calls == 10_000


async def test_the_least_recently_read_answer_goes_first() -> None:
    cache = ReadCache(60, max_entries=2)
    assert await cache.get("watched", upstream(b"watched book")) == b"watched book"
    await cache.get("once", upstream(b"once"))
    assert await cache.get("watched", upstream(AssertionError("refetched"))) == b"watched book"
    await cache.get("new", upstream(b"new"))  # evicts "once", read longer ago than "watched"
    assert await cache.get("watched", upstream(AssertionError("refetched"))) == b"watched book"
    assert await cache.get("once", upstream(b"once again")) == b"once again", "an evicted key is fetched anew"


async def test_after_forget_no_answer_of_before_is_served_not_even_one_then_in_flight() -> None:
    cache = ReadCache(10.0)
    assert await cache.get("k", upstream(b"last run")) == b"last run"
    release = asyncio.Event()

    async def slow_fetch() -> bytes:
        await release.wait()
        return b"last run, late"

    cache.forget()
    assert await cache.get("k", upstream(b"new run")) == b"new run", "an answer of before was served"
    cache.forget()
    waiting = asyncio.create_task(cache.get("other", slow_fetch))
    await asyncio.sleep(0)
    cache.forget()
    release.set()
    assert await waiting == b"last run, late", "a reader waiting on a fetch gets its answer"
    assert await cache.get("other", upstream(b"new run")) == b"new run", "a fetch of before was kept"
