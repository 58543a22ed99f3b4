"""``GET /api/order-book`` without the framework's per-request work, for the read that comes by the hundred.

This ASGI wrapper answers the plain, valid form of that request itself, through the same book reads as the
route in ``api/routes.py``, which stays the documented one. Everything else goes to the app: other paths, a
query this parser does not fully accept (so FastAPI's validation errors stay the only ones; a point in
history, ``at``, ``at_event`` or ``run_id``, is such a query, read by the route as it is), a request
without the token when reads need one (so the app's guard answers 401), and a failed read (so the app's
error handlers answer it, in their shapes).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from obm_shared.auth import token_matches
from orchestrator.book_reads import DEFAULT_BOOK_DEPTH, MAX_BOOK_DEPTH, BookReads, book_query
from orchestrator.clients import ServiceRefused, ServiceUnavailable
from orchestrator.core.config import Settings

BOOK_PATH = "/api/order-book"
QUERY_FIELDS = frozenset(("depth", "instrument_id", "publisher_id", "per_publisher"))


def _natural(value: str) -> int | None:
    """A plain decimal number (ASCII digits only), else None: anything else is left to the route."""
    return int(value) if value.isascii() and value.isdigit() else None


def parse_book_query(query_string: bytes) -> dict[str, Any] | None:
    """The receiver query of a plain, valid book request; None for anything the route should see itself."""
    fields: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in fields or name not in QUERY_FIELDS:
            return None
        fields[name] = value
    depth = _natural(fields["depth"]) if "depth" in fields else DEFAULT_BOOK_DEPTH
    if depth is None or not 1 <= depth <= MAX_BOOK_DEPTH:
        return None
    ids: dict[str, int] = {}
    for name in ("instrument_id", "publisher_id"):
        if name in fields:
            if (number := _natural(fields[name])) is None:
                return None
            ids[name] = number
    per_publisher = fields.get("per_publisher", "true")
    if per_publisher not in ("true", "false"):
        return None
    return book_query(depth, ids.get("instrument_id"), ids.get("publisher_id"), per_publisher == "true")


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if the request has one."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme.lower() == "bearer" else None
    return None


def may_read(settings: Settings, scope: Scope) -> bool:
    """What the app's read guard would let through: anyone, or only the token's holder."""
    return settings.read_auth == "open" or token_matches(settings.api_token, bearer_token(scope))


class BookReadFastPath:
    """Wraps the orchestrator app; see the module's docstring."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == BOOK_PATH:
            query = parse_book_query(scope["query_string"])
            if query is not None and may_read(self.app.state.settings, scope):
                books: BookReads = self.app.state.books
                try:
                    body = await books.read(query)
                except (ServiceUnavailable, ServiceRefused):
                    pass  # answered by the app below
                else:
                    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)
