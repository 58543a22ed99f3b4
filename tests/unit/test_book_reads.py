"""A book read of any depth is cut from its depth bucket's answer: the result is the receiver's own answer
at that depth, on a real replayed book, and the receiver is asked only for the buckets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from orchestrator.book_reads import DEPTH_BUCKETS, BookReads, book_query, cut_to_depth, depth_bucket
from receiver.core.config import Settings
from receiver.ingest import Receiver
from receiver.main import create_app
from receiver.processing import Run
from tests.unit.test_real_books import GOOG, market_of

pytestmark = pytest.mark.realdata

DEPTHS = (1, 2, 9, 10, 11, 37, 50, 51, 99, 100, 180, 250, 251, 777, 999, 1000)


class ReceiverOverHttp:
    """The receiver's real HTTP app, in process, as the orchestrator's client would reach it."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.asked: list[dict[str, Any]] = []

    async def request_bytes(self, method: str, path: str, **kwargs: Any) -> bytes:
        self.asked.append(dict(kwargs["params"]))
        response = await self.client.request(method, path, **kwargs)
        response.raise_for_status()
        return response.content

    async def direct(self, query: dict[str, Any]) -> Any:
        """The receiver's answer to ``query``, asked as it is (not counted)."""
        response = await self.client.get("/order-book", params=query)
        response.raise_for_status()
        return response.json()


@pytest.fixture
async def receiver(dbeq: Path, tmp_path: Path) -> AsyncIterator[ReceiverOverHttp]:
    """A receiver whose current run holds the books of the whole DBEQ file (several publishers an
    instrument, so consolidated levels are merged across books)."""
    settings = Settings(output_dir=tmp_path, output_enabled=False)
    app = create_app(settings)
    app.state.receiver = Receiver(settings)
    run = app.state.receiver.run = Run(settings)
    run.market = market_of(dbeq)
    run.version += 1
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        yield ReceiverOverHttp(client)


def test_each_depth_goes_to_the_smallest_bucket_at_least_as_deep() -> None:
    assert [depth_bucket(depth) for depth in (1, 10, 11, 50, 51, 100, 101, 250, 251, 1000)] == [
        10, 10, 50, 50, 100, 100, 250, 250, 1000, 1000,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("instrument_id", "publisher_id", "per_publisher"),
    [(None, None, True), (GOOG, None, True), (GOOG, None, False), (GOOG, 40, False)],
)
async def test_a_read_of_any_depth_is_the_receivers_own_answer_at_that_depth(
    receiver: ReceiverOverHttp, instrument_id: int | None, publisher_id: int | None, per_publisher: bool
) -> None:
    books = BookReads(receiver, max_age_seconds=60)
    for depth in DEPTHS:
        query = book_query(depth, instrument_id, publisher_id, per_publisher)
        got = msgspec.json.decode(await books.read(query))
        direct = await receiver.direct(query)
        assert got == direct, f"depth {depth} ({query}): the cut answer differs from the receiver's"
        deepest = max(len(book[side]) for book in got["books"] for side in ("bids", "asks"))
        assert deepest <= depth, f"depth {depth}: a book came back with {deepest} levels on a side"
    asked_depths = {asked["depth"] for asked in receiver.asked}
    assert asked_depths <= set(DEPTH_BUCKETS), f"the receiver was asked for depths {sorted(asked_depths)}"


async def test_a_cut_answer_is_made_once_per_bucket_answer(receiver: ReceiverOverHttp) -> None:
    books = BookReads(receiver, max_age_seconds=60)
    query = book_query(37, GOOG, None, per_publisher=True)
    first = await books.read(query)
    assert await books.read(query) is first, "the same bucket answer must not be cut twice"
    assert len(receiver.asked) == 1


def test_the_cut_keeps_every_other_field_as_the_receiver_encoded_it() -> None:
    answer = (
        b'{"run_id":"r","state":"done","instruments":[],"books":[{"instrument_id":1,"imbalance":0.1,'
        b'"bids":[{"price":"2"},{"price":"1"}],"asks":[{"price":"3"}],"maybe_bad":false}]}'
    )
    assert cut_to_depth(answer, 1) == (
        b'{"run_id":"r","state":"done","instruments":[],"books":[{"instrument_id":1,"imbalance":0.1,'
        b'"bids":[{"price":"2"}],"asks":[{"price":"3"}],"maybe_bad":false}]}'
    )


async def test_ten_thousand_distinct_reads_keep_the_caches_at_their_bound() -> None:
    class Receiver:
        async def request_bytes(self, method: str, path: str, **kwargs: Any) -> bytes:
            return msgspec.json.encode({"run_id": "r", "books": [{"bids": [1, 2, 3], "asks": []}]})

    books = BookReads(Receiver(), max_age_seconds=60, max_entries=256)
    for key in range(10_000):
        await books.read(book_query(1 + key % 1000, key, None, per_publisher=True))
    assert len(books.cache) == 256
    assert books.entries == 2 * 256, f"{books.entries} answers kept for a bound of 256 each"
