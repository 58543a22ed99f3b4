"""Reading the receiver's books: the one way every reader (the API and the live feed) gets a book.

A read of any depth and any book costs about what a default read costs: the receiver is asked only for every
book at two depths (the smallest bucket at least as deep as the read), through the read cache, and the
orchestrator takes the books the read names and cuts their levels to the depth asked. A book's best ``n``
levels are the first ``n`` of its best ``m >= n``, nothing else in a book depends on the depth, and the
receiver lists an instrument's books as it answers a read of that instrument, so the answer made here is the
receiver's own. A read naming a book the receiver's answer does not hold (as at the start of a run) is asked
of the receiver at its depth bucket, once per answer for every book, so its refusal is the receiver's own too
and is as fresh as that answer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Protocol

import msgspec

from orchestrator.clients import ServiceRefused
from orchestrator.read_cache import DEFAULT_MAX_ENTRIES, ReadCache, remember

DEFAULT_BOOK_DEPTH = 10
"""Levels per side of a book read that names no depth."""
MAX_BOOK_DEPTH = 1000
"""Most levels per side a book read may ask for."""
DEPTH_BUCKETS = (DEFAULT_BOOK_DEPTH, MAX_BOOK_DEPTH)
"""The depths asked of the receiver: the default read's, which stays small, and the deepest for any other.
Each bucket is one more answer the receiver computes per cache window while it ingests, so there are few."""
LEVEL_LISTS = ("bids", "asks")
"""The fields of a book that hold its levels, best first."""

_answers = msgspec.json.Decoder(dict[str, msgspec.Raw])
_books = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
_levels = msgspec.json.Decoder(list[msgspec.Raw])
_book_id = msgspec.json.Decoder(int | None)
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


def point_query(
    query: dict[str, Any], at: str | None, at_event: str | None, run_id: str | None
) -> dict[str, Any] | None:
    """``query`` asked of a point in history (a time, an event, or an earlier run), or None for a live read.

    The point's values pass on as the caller wrote them, so a malformed one is refused in the receiver's words.
    """
    point = {
        name: value
        for name, value in (("at", at), ("at_event", at_event), ("run_id", run_id))
        if value is not None
    }
    return {**query, **point} if point else None


def depth_bucket(depth: int) -> int:
    """The depth to ask the receiver for a read of ``depth`` levels: the smallest bucket at least as deep."""
    return next((bucket for bucket in DEPTH_BUCKETS if bucket >= depth), MAX_BOOK_DEPTH)


def _wanted(book: dict[str, msgspec.Raw], query: dict[str, Any]) -> bool:
    """Whether the receiver's answer to ``query`` holds ``book``: the receiver reads ``publisher_id`` only
    with an ``instrument_id``, and then answers that one book whatever ``per_publisher`` says."""
    instrument_id = query.get("instrument_id")
    if instrument_id is not None and _book_id.decode(book["instrument_id"]) != instrument_id:
        return False
    publisher_id = _book_id.decode(book["publisher_id"])
    if instrument_id is not None and "publisher_id" in query:
        return bool(publisher_id == query["publisher_id"])
    return query["per_publisher"] == "true" or publisher_id is None


def select_books(every_book: bytes, query: dict[str, Any]) -> bytes | None:
    """The answer to ``query`` made from the receiver's answer for every book at a depth at least as deep;
    None when ``query`` names a book that answer does not hold. Every other field passes through as the
    receiver encoded it."""
    fields = _answers.decode(every_book)
    books = [book for book in _books.decode(fields["books"]) if _wanted(book, query)]
    if not books and "instrument_id" in query:
        return None
    for book in books:
        for side in LEVEL_LISTS:
            if side in book:
                book[side] = msgspec.Raw(_encoder.encode(_levels.decode(book[side])[: query["depth"]]))
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
        self._made: OrderedDict[Hashable, tuple[bytes, bytes]] = OrderedDict()
        """asked query -> (the answer for every book it was made from, the answer made), least recently read
        first"""
        self._refusals: OrderedDict[Hashable, tuple[bytes, ServiceRefused]] = OrderedDict()
        """a missing book's query at its depth bucket -> (the answer for every book without it, the receiver's
        refusal), least recently read first"""

    def forget(self) -> None:
        """Drop every answer kept: a new run has begun."""
        self.cache.forget()
        self._made.clear()
        self._refusals.clear()

    @property
    def entries(self) -> int:
        """Answers kept: the receiver's, those made from them, and its refusals."""
        return len(self.cache) + len(self._made) + len(self._refusals)

    async def read(self, query: dict[str, Any]) -> bytes:
        """The receiver's JSON answer to ``query``, as it would send it, made from its answer for every book
        at the query's depth bucket; raises the service errors."""
        key = tuple(query.items())
        asked_as_is: bytes | None = self.cache.fresh(key)  # e.g. by the live feed, which shares the cache
        if asked_as_is is not None:
            return asked_as_is
        every_book = book_query(depth_bucket(query["depth"]), None, None, per_publisher=True)
        if query == every_book:
            return await self.read_exact(query)
        source = await self.read_exact(every_book)
        kept = self._made.get(key)
        if kept is not None and kept[0] is source:
            self._made.move_to_end(key)
            return kept[1]
        answer = select_books(source, query)
        if answer is None:
            return await self._read_missing(source, query)
        remember(self._made, key, (source, answer), self.max_entries)
        return answer

    async def _read_missing(self, source: bytes, query: dict[str, Any]) -> bytes:
        """The answer to ``query``, whose book ``source`` does not hold: the receiver's refusal, asked at the
        query's depth bucket once per ``source``, or the book if it came meanwhile."""
        bucket = {**query, "depth": depth_bucket(query["depth"])}
        key = tuple(bucket.items())
        kept = self._refusals.get(key)
        if kept is not None and kept[0] is source:
            self._refusals.move_to_end(key)
            raise kept[1].with_traceback(None)  # raised afresh, so its traceback does not grow with each read
        try:
            answer = await self.read_exact(bucket)
        except ServiceRefused as refusal:
            remember(self._refusals, key, (source, refusal), self.max_entries)
            raise
        return select_books(answer, query) or answer

    async def read_exact(self, query: dict[str, Any]) -> bytes:
        """The receiver's JSON answer to ``query``, asked as it is: for a reader whose few queries are already
        shared (the live feed reads once per distinct subscription), and for a point in history, which no
        answer for every book holds."""
        answer: bytes = await self.cache.get(
            tuple(query.items()), lambda: self.receiver.request_bytes("GET", "/order-book", params=query)
        )
        return answer
