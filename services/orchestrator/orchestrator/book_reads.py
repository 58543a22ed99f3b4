"""Reading the receiver's books: the one way every reader (the API and the live feed) gets a book.

A read of any depth costs about what a default read costs: the receiver is asked only for a few depths (the
smallest bucket at least as deep as the read), through the read cache, and the answer is cut to the depth
asked. A book's best ``n`` levels are the first ``n`` of its best ``m >= n``, and nothing else in a book
depends on the depth, so the cut answer is the receiver's own answer at that depth.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Protocol

import msgspec

from orchestrator.read_cache import DEFAULT_MAX_ENTRIES, ReadCache, remember

DEFAULT_BOOK_DEPTH = 10
"""Levels per side of a book read that names no depth."""
MAX_BOOK_DEPTH = 1000
"""Most levels per side a book read may ask for."""
DEPTH_BUCKETS = (DEFAULT_BOOK_DEPTH, 50, 100, 250, MAX_BOOK_DEPTH)
"""The depths asked of the receiver: few enough that readers of any depth share their answers."""
LEVEL_LISTS = ("bids", "asks")
"""The fields of a book that hold its levels, best first."""

_answers = msgspec.json.Decoder(dict[str, msgspec.Raw])
_books = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
_levels = msgspec.json.Decoder(list[msgspec.Raw])
_encoder = msgspec.json.Encoder()


class BookSource(Protocol):
    """What a book read needs of the receiver (a :class:`~orchestrator.clients.ServiceClient`)."""

    async def request_bytes(self, method: str, path: str, **kwargs: Any) -> bytes: ...


def book_query(
    depth: int, instrument_id: int | None, publisher_id: int | None, per_publisher: bool
) -> dict[str, Any]:
    """The receiver's ``GET /order-book`` query (also the read cache's key, so its order is fixed)."""
    query: dict[str, Any] = {"depth": depth, "per_publisher": "true" if per_publisher else "false"}
    if instrument_id is not None:
        query["instrument_id"] = instrument_id
    if publisher_id is not None:
        query["publisher_id"] = publisher_id
    return query


def depth_bucket(depth: int) -> int:
    """The depth to ask the receiver for a read of ``depth`` levels: the smallest bucket at least as deep."""
    return next((bucket for bucket in DEPTH_BUCKETS if bucket >= depth), MAX_BOOK_DEPTH)


def cut_to_depth(answer: bytes, depth: int) -> bytes:
    """The receiver's ``GET /order-book`` answer with at most ``depth`` levels per side in every book; every
    other field passes through as the receiver encoded it."""
    fields = _answers.decode(answer)
    books = _books.decode(fields["books"])
    for book in books:
        for side in LEVEL_LISTS:
            if side in book:
                book[side] = msgspec.Raw(_encoder.encode(_levels.decode(book[side])[:depth]))
    fields["books"] = msgspec.Raw(_encoder.encode(books))
    return _encoder.encode(fields)


class BookReads:
    """The receiver's answers to book queries, through one read cache shared by every reader."""

    def __init__(
        self, receiver: BookSource, max_age_seconds: float, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        self.receiver = receiver
        self.cache = ReadCache(max_age_seconds, max_entries=max_entries)
        self.max_entries = max_entries
        self._cut: OrderedDict[Hashable, tuple[bytes, bytes]] = OrderedDict()
        """asked query -> (the bucket's answer it was cut from, the cut answer), least recently read first"""

    @property
    def entries(self) -> int:
        """Answers kept: the receiver's, and those cut from them."""
        return len(self.cache) + len(self._cut)

    async def read(self, query: dict[str, Any]) -> bytes:
        """The receiver's JSON answer to ``query``, as it would send it, cut from the answer of the query's
        depth bucket; raises the service errors."""
        depth: int = query["depth"]
        bucket = depth_bucket(depth)
        answer = await self.read_exact({**query, "depth": bucket})
        if bucket == depth:
            return answer
        return self._cut_answer(tuple(query.items()), answer, depth)

    async def read_exact(self, query: dict[str, Any]) -> bytes:
        """The receiver's JSON answer to ``query``, asked at the query's own depth: for a reader whose few
        depths are already shared (the live feed reads once per distinct subscription)."""
        answer: bytes = await self.cache.get(
            tuple(query.items()), lambda: self.receiver.request_bytes("GET", "/order-book", params=query)
        )
        return answer

    def _cut_answer(self, key: Hashable, answer: bytes, depth: int) -> bytes:
        """``answer`` cut to ``depth``, made once per answer the bucket's cache hands out."""
        kept = self._cut.get(key)
        if kept is not None and kept[0] is answer:
            self._cut.move_to_end(key)
            return kept[1]
        cut = cut_to_depth(answer, depth)
        remember(self._cut, key, (answer, cut), self.max_entries)
        return cut
