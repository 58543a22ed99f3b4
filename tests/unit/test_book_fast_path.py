"""The orchestrator's book-read fast path takes only plain, valid queries, and builds the route's query for them."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.book_fast_path import parse_book_query
from orchestrator.book_reads import book_query


@pytest.mark.parametrize(
    ("query_string", "expected"),
    [
        (b"", book_query(10, None, None, True)),
        (b"depth=10&per_publisher=false", book_query(10, None, None, False)),
        (b"instrument_id=432669&depth=3", book_query(3, 432669, None, True)),
        (b"depth=1000&instrument_id=7&publisher_id=2&per_publisher=true", book_query(1000, 7, 2, True)),
    ],
)
def test_plain_queries_are_taken_as_the_route_would_read_them(
    query_string: bytes, expected: dict[str, Any]
) -> None:
    query = parse_book_query(query_string)
    assert query == expected
    assert query is not None and list(query) == list(expected), "the order is part of the cache key"


@pytest.mark.parametrize(
    "query_string",
    [
        b"depth=0",
        b"depth=1001",
        b"depth=ten",
        b"depth=-1",
        b"depth=%C2%B2",  # a digit to str.isdigit, not to int()
        b"depth=3&depth=4",
        b"per_publisher=1",
        b"instrument_id=",
        b"publisher_id=x",
        b"colour=blue",
    ],
)
def test_anything_else_is_left_to_the_route(query_string: bytes) -> None:
    assert parse_book_query(query_string) is None
