"""Reading the receiver's books: the one way every reader (the API and the live feed) gets a book."""

from __future__ import annotations

from typing import Any, Protocol

from orchestrator.read_cache import ReadCache

DEFAULT_BOOK_DEPTH = 10
"""Levels per side of a book read that names no depth."""
MAX_BOOK_DEPTH = 1000
"""Most levels per side a book read may ask for."""


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


class BookReads:
    """The receiver's answers to book queries, through one read cache shared by every reader."""

    def __init__(self, receiver: BookSource, max_age_seconds: float) -> None:
        self.receiver = receiver
        self.cache = ReadCache(max_age_seconds)

    async def read(self, query: dict[str, Any]) -> bytes:
        """The receiver's JSON answer to ``query``, as it sent it; raises the service errors."""
        body: bytes = await self.cache.get(
            tuple(query.items()), lambda: self.receiver.request_bytes("GET", "/order-book", params=query)
        )
        return body
