"""A book read of any depth and any book is made from the receiver's answer for every book at the read's
depth bucket: the result is the receiver's own answer to the read, on a real replayed book, and the receiver
is asked only for every book at the buckets (or, for a book it does not have, the read itself)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from orchestrator.book_reads import DEPTH_BUCKETS, BookReads, book_query, depth_bucket, select_books
from orchestrator.clients import ServiceRefused
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
    assert [depth_bucket(depth) for depth in (1, 10, 11, 500, 1000)] == [10, 10, 1000, 1000, 1000]


@pytest.mark.parametrize(
    ("instrument_id", "publisher_id", "per_publisher"),
    [
        (None, None, True),
        (None, None, False),
        (None, 40, False),  # the receiver reads a publisher only with an instrument
        (GOOG, None, True),
        (GOOG, None, False),
        (GOOG, 40, False),
        (GOOG, 40, True),
    ],
)
async def test_a_read_of_any_depth_and_book_is_the_receivers_own_answer(
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
    every_book = [book_query(depth, None, None, per_publisher=True) for depth in DEPTH_BUCKETS]
    asked = [query for query in receiver.asked if query not in every_book]
    assert not asked, f"the receiver was asked {asked}, not only for every book at a bucket's depth"


async def test_a_read_of_a_book_the_receiver_lacks_gets_the_receivers_refusal(
    receiver: ReceiverOverHttp,
) -> None:
    books = BookReads(receiver, max_age_seconds=60)
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await books.read(book_query(5, GOOG, 999, per_publisher=False))
    assert refused.value.response.status_code == 404
    assert "no book for instrument 7151 publisher 999" in refused.value.response.text


async def test_reads_of_a_missing_book_at_any_depth_ask_the_receiver_at_its_depth_buckets_only(
    receiver: ReceiverOverHttp,
) -> None:
    books = BookReads(receiver, max_age_seconds=60)
    for depth in DEPTHS:
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await books.read(book_query(depth, GOOG, 999, per_publisher=False))
        assert "no book for instrument 7151 publisher 999" in refused.value.response.text
    asked_depths = {query["depth"] for query in receiver.asked}
    assert asked_depths <= set(DEPTH_BUCKETS), (
        f"a missing book was asked of the receiver at depths {sorted(asked_depths)}: each read would be a request"
    )


async def test_a_missing_book_is_asked_of_the_receiver_once_per_answer_for_every_book() -> None:
    every_book = b'{"run_id":"r","state":"receiving","instruments":[],"books":[]}'
    asked: list[dict[str, Any]] = []

    class Receiver:
        async def request_bytes(self, method: str, path: str, **kwargs: Any) -> bytes:
            asked.append(kwargs["params"])
            if "instrument_id" in kwargs["params"]:
                raise ServiceRefused("receiver", 404, "no book for instrument 7 publisher None")
            return every_book

    books = BookReads(Receiver(), max_age_seconds=60)
    for depth in DEPTHS:
        with pytest.raises(ServiceRefused, match="no book for instrument 7"):
            await books.read(book_query(depth, 7, None, per_publisher=True))
    refused = [query for query in asked if "instrument_id" in query]
    assert len(refused) == len(DEPTH_BUCKETS), (
        f"{len(refused)} requests for a missing book read at {len(DEPTHS)} depths: one per depth bucket expected"
    )


async def test_a_cut_answer_is_made_once_per_bucket_answer(receiver: ReceiverOverHttp) -> None:
    books = BookReads(receiver, max_age_seconds=60)
    query = book_query(37, GOOG, None, per_publisher=True)
    first = await books.read(query)
    assert await books.read(query) is first, "the same answer for every book must not be cut twice"
    assert len(receiver.asked) == 1


def test_the_answer_made_keeps_every_other_field_as_the_receiver_encoded_it() -> None:
    every_book = (
        b'{"run_id":"r","state":"done","instruments":[],"books":['
        b'{"instrument_id":1,"publisher_id":null,"imbalance":0.1,"bids":[{"p":"2"},{"p":"1"}],"asks":[]},'
        b'{"instrument_id":1,"publisher_id":7,"imbalance":0.1,"bids":[{"p":"2"},{"p":"1"}],"asks":[]}]}'
    )
    assert select_books(every_book, book_query(1, 1, None, per_publisher=False)) == (
        b'{"run_id":"r","state":"done","instruments":[],"books":['
        b'{"instrument_id":1,"publisher_id":null,"imbalance":0.1,"bids":[{"p":"2"}],"asks":[]}]}'
    )
    assert select_books(every_book, book_query(1, 2, None, per_publisher=True)) is None, "no instrument 2"


async def test_ten_thousand_distinct_reads_keep_the_caches_at_their_bound() -> None:
    every_book = msgspec.json.encode(
        {
            "run_id": "r",
            "books": [
                {"instrument_id": instrument, "publisher_id": publisher, "bids": [1, 2, 3], "asks": []}
                for instrument in range(10)
                for publisher in (None, 1, 2)
            ],
        }
    )

    class Receiver:
        async def request_bytes(self, method: str, path: str, **kwargs: Any) -> bytes:
            return every_book

    books = BookReads(Receiver(), max_age_seconds=60, max_entries=256)
    for key in range(10_000):
        await books.read(book_query(1 + key % 1000, key // 1000, None, per_publisher=True))
    assert books.entries <= 256 + len(DEPTH_BUCKETS), f"{books.entries} answers kept for a bound of 256"
