"""The live feed: polls the services at screen pace and pushes one coalesced frame to each browser.

While at least one client is connected, each tick reads the book of every *distinct* subscription (through
the same book reads, and read cache, as ``GET /api/order-book``), the trade tape once and both services'
``/status`` once, then offers every client the frame of its subscription. A client keeps only the newest
frame it has not sent yet (latest wins), so a slow browser skips frames instead of slowing the feed or the
other clients, and no client gets more than ``updates_per_second`` frames a second. Failures of the services
go into the frame; the feed never stops for them.

Messages to the client (JSON text)::

    {"type": "frame", "seq": 42, "subscription": {...}, "run_id": "...", "book": {...} | null,
     "instruments": [...], "trades": [...] | null, "sender": {...} | null, "receiver": {...} | null,
     "health": {...as GET /api/microservices/status...}, "errors": {"book": {...} | null, "trades": ...}}
    {"type": "subscribed", "subscription": {"instrument_id": ..., "publisher_id": ..., "depth": ...}}
    {"type": "error", "detail": "..."}

Messages from the client: ``{"type": "subscribe", "instrument_id": int | null, "publisher_id": int | null,
"depth": int}``; a field left out takes its default (so the page learns the default depth from the frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from orchestrator.book_reads import BookReads, book_query
from orchestrator.clients import Service, ServiceRefused, ServiceUnavailable
from orchestrator.control import services_status

logger = logging.getLogger("orchestrator.live")

DEFAULT_DEPTH = 20
MAX_DEPTH = 100
TRADES_LIMIT = 30
SEND_TIMEOUT_SECONDS = 10.0
"""A client that takes longer than this to accept one message is dropped."""
FANOUT_GROUP = 10
"""Clients offered a tick's frame per turn of the event loop, so API reads are served between the groups."""

Send = Callable[[str], Awaitable[None]]
Receive = Callable[[], Awaitable[str]]

_encoder = msgspec.json.Encoder()
_client_messages = msgspec.json.Decoder(dict[str, Any])


class BookAnswer(msgspec.Struct):
    """What a frame takes of the receiver's ``GET /order-book`` answer; the book itself is passed on unparsed."""

    run_id: str | None = None
    instruments: msgspec.Raw = msgspec.Raw(b"[]")
    books: list[msgspec.Raw] = []


_book_answers = msgspec.json.Decoder(BookAnswer)


def _encode(message: dict[str, Any]) -> str:
    """A message to a client as WebSocket text."""
    return _encoder.encode(message).decode()


def _subscribe_message(text: str) -> dict[str, Any]:
    """A client's message, if it is a ``subscribe``; raises ValueError saying what was expected."""
    try:
        message = _client_messages.decode(text)
    except msgspec.ValidationError:  # JSON, but not an object
        message = {}
    if message.get("type") != "subscribe":
        raise ValueError('expected {"type": "subscribe", ...}')
    return message


def _optional_id(message: dict[str, Any], key: str) -> int | None:
    value = message.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be a non-negative integer or null, not {value!r}")
    return value


class Subscription(msgspec.Struct, frozen=True):
    """The book a client watches: one instrument (None: the first one), all publishers when ``publisher_id``
    is None (the consolidated book), ``depth`` levels per side."""

    instrument_id: int | None = None
    publisher_id: int | None = None
    depth: int = DEFAULT_DEPTH

    @classmethod
    def parse(cls, message: dict[str, Any]) -> Subscription:
        """The subscription a ``subscribe`` message asks for; raises ValueError naming the bad field."""
        instrument_id = _optional_id(message, "instrument_id")
        publisher_id = _optional_id(message, "publisher_id")
        if publisher_id is not None and instrument_id is None:
            raise ValueError("publisher_id needs an instrument_id")
        depth = message.get("depth", DEFAULT_DEPTH)
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
            raise ValueError(f"depth must be an integer from 1 to {MAX_DEPTH}, not {depth!r}")
        return cls(instrument_id, publisher_id, depth)

    def query(self) -> dict[str, Any]:
        """The book query of this subscription: its one book, not the per-publisher ones besides."""
        return book_query(self.depth, self.instrument_id, self.publisher_id, per_publisher=False)


class Subscriber:
    """One connected client: what it watches, and a mailbox holding at most one frame (latest wins)."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.frames_offered = 0
        self.frames_skipped = 0
        """Frames replaced by a newer one before this client could be sent them."""
        self._frame: str | None = None
        self._notices: list[str] = []
        self._ready = asyncio.Event()

    def offer(self, frame: str) -> None:
        """Leave ``frame`` for the client, replacing one it has not been sent yet."""
        if self._frame is not None:
            self.frames_skipped += 1
        self._frame = frame
        self.frames_offered += 1
        self._ready.set()

    def notify(self, message: str) -> None:
        """Queue a reply (never coalesced); it goes out before the next frame."""
        self._notices.append(message)
        self._ready.set()

    def pending(self) -> list[str]:
        """Take what is waiting to be sent: replies first, then the newest frame."""
        messages = self._notices + ([self._frame] if self._frame is not None else [])
        self._notices, self._frame = [], None
        self._ready.clear()
        return messages

    async def next_messages(self) -> list[str]:
        """Wait until something is waiting, then take it."""
        await self._ready.wait()
        return self.pending()


def _failure(error: Exception) -> dict[str, Any]:
    """A failed poll as the frame carries it: which service, what it said, in words."""
    if isinstance(error, ServiceRefused):
        return {
            "service": error.service,
            "status_code": error.status_code,
            "detail": error.detail,
            "message": str(error),
        }
    if isinstance(error, ServiceUnavailable):
        return {"service": error.service, "status_code": None, "detail": str(error), "message": str(error)}
    return {"service": None, "status_code": None, "detail": repr(error), "message": f"live feed: {error!r}"}


class LiveFeed:
    """Polls once per tick for all connected clients and offers each the frame of its subscription."""

    def __init__(
        self,
        sender: Service,
        receiver: Service,
        books: BookReads,
        updates_per_second: float,
        started_at: float | None = None,
        trades_limit: int = TRADES_LIMIT,
    ) -> None:
        if updates_per_second <= 0:
            raise ValueError("updates_per_second must be positive")
        self.sender = sender
        self.receiver = receiver
        self.books = books
        self.period_seconds = 1.0 / updates_per_second
        self.started_at = time.monotonic() if started_at is None else started_at
        self.trades_limit = trades_limit
        self.ticks = 0
        self.frames_offered = 0
        """Frames offered to clients over the feed's life (each client's share of every tick)."""
        self.clients_dropped = 0
        self._subscribers: set[Subscriber] = set()
        self._has_subscribers = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def start(self) -> None:
        """Start the polling loop (it idles while no client is connected)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="live-feed")

    async def stop(self) -> None:
        """Stop the polling loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def add(self, subscription: Subscription | None = None) -> Subscriber:
        """Register a client; the loop wakes if it is the first."""
        subscriber = Subscriber(subscription or Subscription())
        self._subscribers.add(subscriber)
        self._has_subscribers.set()
        return subscriber

    def remove(self, subscriber: Subscriber) -> None:
        """Forget a client; the loop idles once none is left."""
        self._subscribers.discard(subscriber)
        if not self._subscribers:
            self._has_subscribers.clear()

    def handle_message(self, subscriber: Subscriber, text: str) -> None:
        """Apply a client's message: a ``subscribe`` changes what it watches; anything else gets an error."""
        try:
            subscriber.subscription = Subscription.parse(_subscribe_message(text))
        except ValueError as error:
            subscriber.notify(_encode({"type": "error", "detail": f"bad message: {error}"}))
            return
        subscriber.notify(_encode({"type": "subscribed", "subscription": subscriber.subscription}))

    async def serve(self, receive: Receive, send: Send) -> None:
        """Run one client until it goes away or cannot be written to; returns when it is dropped."""
        subscriber = self.add()
        reader = asyncio.create_task(self._read(subscriber, receive))
        writer = asyncio.create_task(self._write(subscriber, send))
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            self.remove(subscriber)
            self.clients_dropped += 1

    async def _read(self, subscriber: Subscriber, receive: Receive) -> None:
        while True:
            self.handle_message(subscriber, await receive())

    async def _write(self, subscriber: Subscriber, send: Send) -> None:
        while True:
            for message in await subscriber.next_messages():
                async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                    await send(message)

    async def _run(self) -> None:
        while True:
            await self._has_subscribers.wait()
            started = time.monotonic()
            try:
                await self.tick()
            except Exception:  # the feed outlives any one bad tick
                logger.exception("live feed tick failed")
            await asyncio.sleep(max(0.0, self.period_seconds - (time.monotonic() - started)))

    async def tick(self) -> int:
        """Poll once for every connected client and offer each its frame; returns the clients served."""
        watching = [(subscriber, subscriber.subscription) for subscriber in self._subscribers]
        if not watching:
            return 0
        subscriptions = list(dict.fromkeys(subscription for _, subscription in watching))
        self.ticks += 1
        self.frames_offered += len(watching)
        trades, health, *books = await asyncio.gather(
            self._poll_trades(),
            self._poll_health(),
            *(self._poll_book(subscription) for subscription in subscriptions),
        )
        shared = {
            "seq": self.ticks,
            "trades": trades[0],
            "sender": health["sender"].get("status"),
            "receiver": health["receiver"].get("status"),
            "health": health,
        }
        frames = {
            subscription: _encode(
                {
                    "type": "frame",
                    "subscription": subscription,
                    **book,
                    **shared,
                    "errors": {"book": book_error, "trades": trades[1]},
                }
            )
            for subscription, (book, book_error) in zip(subscriptions, books)
        }
        for group_start in range(0, len(watching), FANOUT_GROUP):
            for subscriber, subscription in watching[group_start : group_start + FANOUT_GROUP]:
                subscriber.offer(frames[subscription])
            await asyncio.sleep(0)  # this group's sends run before the next is offered
        return len(watching)

    async def _poll_book(self, subscription: Subscription) -> tuple[dict[str, Any], dict[str, Any] | None]:
        try:
            answer = _book_answers.decode(await self.books.read_exact(subscription.query()))
        except Exception as error:
            return {"run_id": None, "book": None, "instruments": []}, _failure(error)
        return {
            "run_id": answer.run_id,
            "book": answer.books[0] if answer.books else None,
            "instruments": answer.instruments,
        }, None

    async def _poll_trades(self) -> tuple[list[Any] | None, dict[str, Any] | None]:
        try:
            return await self.receiver.request("GET", "/trades", params={"limit": self.trades_limit}), None
        except Exception as error:
            return None, _failure(error)

    async def _poll_health(self) -> dict[str, Any]:
        return await services_status([self.sender, self.receiver], self.started_at)
