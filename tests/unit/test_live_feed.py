"""The live feed with fake services (no network): one poll per distinct subscription per tick, shared by
every client watching it; latest frame wins; failures land in the frame; dead clients are dropped."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import msgspec
import pytest

from orchestrator.book_reads import BookReads, book_query
from orchestrator.clients import ServiceRefused, ServiceUnavailable
from orchestrator.live import LiveFeed, Subscription

BOOK_READ_MAX_AGE_SECONDS = 0.05


class FakeService:
    """Answers like the receiver and sender would, and counts what it was asked."""

    def __init__(self, name: str, down: bool = False) -> None:
        self.name = name
        self.down = down
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        params = kwargs.get("params") or {}
        self.calls.append((path, params))
        if self.down:
            raise ServiceUnavailable(self.name, f"http://{self.name}", "connection refused")
        if path == "/order-book":
            instrument = params.get("instrument_id", 1)
            book = {
                "instrument_id": instrument,
                "publisher_id": params.get("publisher_id"),
                "depth": params["depth"],
            }
            instruments = [{"instrument_id": 1, "symbol": "CLX5", "publishers": [1, 2]}]
            return {"run_id": "r1", "state": "receiving", "instruments": instruments, "books": [book]}
        if path == "/trades":
            return [{"ts_event": 1, "side": "B", "price": "65.4", "size": 1}]
        raise AssertionError(f"unexpected request {path}")

    async def request_bytes(self, method: str, path: str, **kwargs: Any) -> bytes:
        return msgspec.json.encode(await self.request(method, path, **kwargs))

    async def probe(self) -> dict[str, object]:
        self.calls.append(("/status", {}))
        reachable = not self.down
        status = {"service": self.name, "state": "idle"} if reachable else None
        error = None if reachable else f"{self.name} unreachable at http://{self.name}: connection refused"
        return {
            "name": self.name,
            "url": f"http://{self.name}",
            "reachable": reachable,
            "latency_ms": 0.1,
            "status": status,
            "error": error,
        }

    def count(self, path: str) -> int:
        return sum(1 for called, _ in self.calls if called == path)


def live_feed(sender: FakeService, receiver: FakeService, updates_per_second: float) -> LiveFeed:
    """The feed as the app builds it: book reads through the read cache the API shares."""
    books = BookReads(receiver, BOOK_READ_MAX_AGE_SECONDS)
    return LiveFeed(sender, receiver, books, updates_per_second)


def frame_of(messages: list[str]) -> dict[str, Any]:
    frames: list[dict[str, Any]] = [
        json.loads(message) for message in messages if json.loads(message)["type"] == "frame"
    ]
    assert len(frames) == 1, f"expected exactly one frame waiting, got {len(frames)}"
    return frames[0]


@pytest.fixture
def services() -> tuple[FakeService, FakeService]:
    return FakeService("sender"), FakeService("receiver")


async def test_three_clients_two_subscriptions_cost_two_book_polls_per_tick(
    services: tuple[FakeService, FakeService],
) -> None:
    sender, receiver = services
    feed = live_feed(sender, receiver, updates_per_second=10)
    consolidated = [feed.add(Subscription(1, None, 10)) for _ in range(2)]
    one_publisher = feed.add(Subscription(1, 2, 10))

    assert await feed.tick() == 3

    assert receiver.count("/order-book") == 2, "two distinct subscriptions must cost two book polls"
    assert receiver.count("/trades") == 1
    assert receiver.count("/status") == 1 and sender.count("/status") == 1
    books = {(params.get("instrument_id"), params.get("publisher_id")) for _, params in receiver.calls}
    assert {(1, None), (1, 2)} <= books
    for subscriber in consolidated:
        frame = frame_of(subscriber.pending())
        assert frame["book"]["publisher_id"] is None
        assert frame["subscription"] == {"instrument_id": 1, "publisher_id": None, "depth": 10}
    frame = frame_of(one_publisher.pending())
    assert frame["book"]["publisher_id"] == 2
    assert frame["trades"][0]["price"] == "65.4"
    assert frame["sender"] == {"service": "sender", "state": "idle"}
    assert set(frame["health"]) == {"orchestrator", "sender", "receiver"}
    assert frame["errors"] == {"book": None, "trades": None}


async def test_hundred_clients_on_one_subscription_cost_one_poll(
    services: tuple[FakeService, FakeService],
) -> None:
    sender, receiver = services
    feed = live_feed(sender, receiver, updates_per_second=10)
    clients = [feed.add() for _ in range(100)]
    await feed.tick()
    assert receiver.count("/order-book") == 1
    assert all(frame_of(client.pending())["seq"] == 1 for client in clients)


async def test_the_feed_and_the_api_share_one_book_read(services: tuple[FakeService, FakeService]) -> None:
    sender, receiver = services
    feed = live_feed(sender, receiver, updates_per_second=10)
    client = feed.add(Subscription(1, None, 10))
    await feed.tick()
    answer = msgspec.json.decode(await feed.books.read(book_query(10, 1, None, per_publisher=False)))
    assert receiver.count("/order-book") == 1, "an API read of the feed's book must come from the same cache"
    assert frame_of(client.pending())["book"] == answer["books"][0]


async def test_a_slow_client_gets_only_the_latest_frame(services: tuple[FakeService, FakeService]) -> None:
    feed = live_feed(*services, updates_per_second=10)
    slow = feed.add()
    for _ in range(3):
        await feed.tick()
    assert frame_of(slow.pending())["seq"] == 3
    assert slow.frames_skipped == 2
    assert slow.pending() == [], "a frame is sent once"


async def test_no_clients_no_polls(services: tuple[FakeService, FakeService]) -> None:
    sender, receiver = services
    feed = live_feed(sender, receiver, updates_per_second=10)
    client = feed.add()
    feed.remove(client)
    assert await feed.tick() == 0
    assert receiver.calls == [] and sender.calls == []


async def test_services_down_are_reported_in_the_frame_not_raised() -> None:
    receiver = FakeService("receiver", down=True)
    feed = live_feed(FakeService("sender"), receiver, updates_per_second=10)
    client = feed.add()
    await feed.tick()
    frame = frame_of(client.pending())
    assert frame["book"] is None and frame["trades"] is None and frame["receiver"] is None
    assert frame["errors"]["book"]["service"] == "receiver"
    assert "unreachable" in frame["errors"]["book"]["message"]
    assert frame["health"]["receiver"]["reachable"] is False


async def test_an_http_error_keeps_its_detail(services: tuple[FakeService, FakeService]) -> None:
    sender, receiver = services

    async def no_run(method: str, path: str, **kwargs: Any) -> Any:
        raise ServiceRefused("receiver", 404, "no run yet")

    receiver.request = no_run  # type: ignore[method-assign]
    feed = live_feed(sender, receiver, updates_per_second=10)
    client = feed.add()
    await feed.tick()
    error = frame_of(client.pending())["errors"]["book"]
    assert error == {
        "service": "receiver",
        "status_code": 404,
        "detail": "no run yet",
        "message": "receiver answered 404: no run yet",
    }


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({"type": "subscribe", "depth": 0}, "depth"),
        ({"type": "subscribe", "depth": "20"}, "depth"),
        ({"type": "subscribe", "publisher_id": 1}, "publisher_id needs an instrument_id"),
        ({"type": "subscribe", "instrument_id": -1}, "instrument_id"),
        ({"type": "hello"}, "subscribe"),
    ],
)
async def test_bad_subscribe_messages_are_answered_in_words(
    services: tuple[FakeService, FakeService], message: dict[str, Any], problem: str
) -> None:
    feed = live_feed(*services, updates_per_second=10)
    client = feed.add()
    feed.handle_message(client, json.dumps(message))
    (reply,) = [json.loads(text) for text in client.pending()]
    assert reply["type"] == "error" and problem in reply["detail"]
    assert client.subscription == Subscription()


@pytest.mark.parametrize(("text", "problem"), [("[1, 2]", "subscribe"), ("{not json", "malformed")])
async def test_messages_that_are_no_json_object_are_answered_in_words(
    services: tuple[FakeService, FakeService], text: str, problem: str
) -> None:
    feed = live_feed(*services, updates_per_second=10)
    client = feed.add()
    feed.handle_message(client, text)
    (reply,) = [json.loads(message) for message in client.pending()]
    assert reply["type"] == "error" and problem in reply["detail"]


async def test_serve_subscribes_pushes_and_drops_a_dead_client(
    services: tuple[FakeService, FakeService],
) -> None:
    sender, receiver = services
    feed = live_feed(sender, receiver, updates_per_second=50)
    feed.start()
    inbox: asyncio.Queue[str] = asyncio.Queue()
    sent: list[dict[str, Any]] = []

    async def send(text: str) -> None:
        message = json.loads(text)
        if len(sent) >= 5:
            raise ConnectionError("browser tab closed")
        sent.append(message)

    await inbox.put(json.dumps({"type": "subscribe", "instrument_id": 1, "publisher_id": 2, "depth": 15}))
    try:
        await asyncio.wait_for(feed.serve(inbox.get, send), timeout=5)
    finally:
        await feed.stop()
    assert feed.subscribers == 0, "a client that cannot be written to is dropped"
    assert {
        "type": "subscribed",
        "subscription": {"instrument_id": 1, "publisher_id": 2, "depth": 15},
    } in sent
    last = [message for message in sent if message["type"] == "frame"][-1]
    assert last["subscription"] == {"instrument_id": 1, "publisher_id": 2, "depth": 15}
    assert (
        "/order-book",
        {"depth": 15, "per_publisher": "false", "instrument_id": 1, "publisher_id": 2},
    ) in (receiver.calls)


async def test_frames_are_paced_to_the_update_rate(services: tuple[FakeService, FakeService]) -> None:
    rate, seconds = 20.0, 0.5
    feed = live_feed(*services, updates_per_second=rate)
    client = feed.add()
    feed.start()
    received = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            received += len(await asyncio.wait_for(client.next_messages(), timeout=1))
    finally:
        await feed.stop()
    elapsed = time.monotonic() - started
    assert received <= rate * elapsed + 2, f"{received} frames in {elapsed:.2f} s is faster than {rate}/s"
    assert received >= 3, f"only {received} frames in {elapsed:.2f} s at {rate}/s"
