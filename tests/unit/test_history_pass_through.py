"""The orchestrator passes points in history and timelines through to the receiver: the query as the caller
wrote it, the receiver's answer as it sent it, its refusals (404, 409 with how far the run has got, 422) with
the same status and its reason; a point is read by its full query, never from the answer for every book."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import SecretStr

from orchestrator.book_fast_path import BookReadFastPath, parse_book_query
from orchestrator.core.config import Settings
from orchestrator.main import create_app
from scripts.local_stack import free_port

TOKEN = secrets.token_urlsafe(32)
EVENTS_RECEIVED = 1234
LAST_TS_RECV = 1_727_213_239_747_164_115
"""Beyond the u53 a float holds exactly: it must come back digit for digit."""


class FakeReceiver:
    """A receiver that answers a point by the query it was asked, and remembers every query."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, str]]] = []
        self.app = FastAPI()
        self.app.add_api_route("/order-book", self.order_book)
        self.app.add_api_route("/timeline", self.timeline)

    async def order_book(self, request: Request) -> JSONResponse:
        query = dict(request.query_params)
        self.asked.append(("/order-book", query))
        at = query.get("at")
        if at == "not-a-time":
            return JSONResponse({"detail": "'not-a-time' is not a number nor an ISO-8601 UTC time"}, 422)
        if query.get("run_id") == "gone":
            return JSONResponse({"detail": "no recording of run gone"}, 404)
        if at is not None and at.isdigit() and int(at) > LAST_TS_RECV:
            refusal = {
                "detail": "the point is beyond what the run has received",
                "events_received": EVENTS_RECEIVED,
                "last_ts_recv": LAST_TS_RECV,
            }
            return JSONResponse(refusal, 409)
        return JSONResponse({"run_id": "r1", "books": [], "point": {"asked": query}})

    async def timeline(self, request: Request) -> JSONResponse:
        query = dict(request.query_params)
        self.asked.append(("/timeline", query))
        return JSONResponse({"run_id": "r1", "asked": query, "end_ns": LAST_TS_RECV})


@pytest.fixture
def served() -> Iterator[tuple[TestClient, FakeReceiver]]:
    """The orchestrator as it is served (with its fast path), its receiver the fake one."""
    receiver = FakeReceiver()
    unreachable = f"http://127.0.0.1:{free_port()}"
    settings = Settings(
        sender_url=unreachable, receiver_url=unreachable, api_token=SecretStr(TOKEN), read_auth="token"
    )
    app = create_app(settings)
    with TestClient(BookReadFastPath(app), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        transport = httpx.ASGITransport(app=receiver.app)
        app.state.receiver._client = httpx.AsyncClient(transport=transport, base_url="http://receiver")
        yield client, receiver


@pytest.mark.parametrize(
    "query_string",
    [b"at=1727213239747164115", b"at_event=3", b"run_id=r0", b"depth=5&at=2025-09-24T21:47:19Z"],
)
def test_the_fast_path_leaves_points_to_the_route(query_string: bytes) -> None:
    assert parse_book_query(query_string) is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"at": "2025-09-24T21:47:19.747164115Z"}, {"at": "2025-09-24T21:47:19.747164115Z"}),
        ({"at_event": "41", "depth": "3"}, {"at_event": "41", "depth": "3"}),
        (
            {"at": "17", "run_id": "r0", "instrument_id": "7"},
            {"at": "17", "run_id": "r0", "instrument_id": "7"},
        ),
    ],
)
def test_a_point_reaches_the_receiver_as_asked(
    served: tuple[TestClient, FakeReceiver], params: dict[str, str], expected: dict[str, str]
) -> None:
    client, receiver = served
    answer = client.get("/api/order-book", params=params)
    assert answer.status_code == 200, answer.text
    asked = answer.json()["point"]["asked"]
    assert {name: asked[name] for name in expected} == expected, f"the receiver was asked {asked}"
    assert receiver.asked == [("/order-book", asked)], "one request, the point's own, not every book's"


def test_points_are_cached_by_their_whole_query(served: tuple[TestClient, FakeReceiver]) -> None:
    client, receiver = served
    for at in ("100", "100", "101", "100"):
        assert client.get("/api/order-book", params={"at": at}).status_code == 200
    asked_at = [query["at"] for _, query in receiver.asked]
    assert asked_at.count("101") == 1, "a different time is a different read"
    assert asked_at[0] == "100" and asked_at.count("100") <= 2, f"the receiver was asked {asked_at}"


def test_a_live_read_is_no_point(served: tuple[TestClient, FakeReceiver]) -> None:
    client, receiver = served
    assert client.get("/api/order-book", params={"depth": 5}).status_code == 200
    assert receiver.asked == [("/order-book", {"depth": "10", "per_publisher": "true"})], (
        "every book, its bucket"
    )


@pytest.mark.parametrize(
    ("params", "status", "words", "extra"),
    [
        ({"at": "not-a-time"}, 422, "is not a number", {}),
        ({"at": "5", "run_id": "gone"}, 404, "no recording of run gone", {}),
        (
            {"at": str(LAST_TS_RECV + 1)},
            409,
            "beyond what the run has received",
            {"events_received": EVENTS_RECEIVED, "last_ts_recv": LAST_TS_RECV},
        ),
    ],
)
def test_the_receivers_refusals_come_back_as_it_said_them(
    served: tuple[TestClient, FakeReceiver],
    params: dict[str, str],
    status: int,
    words: str,
    extra: dict[str, Any],
) -> None:
    client, _ = served
    answer = client.get("/api/order-book", params=params)
    assert answer.status_code == status, f"{status} expected, got {answer.status_code}: {answer.text}"
    body = answer.json()
    assert words in body["detail"] and body["service"] == "receiver"
    assert {name: body[name] for name in extra} == extra


def test_the_timeline_passes_through_with_its_query(served: tuple[TestClient, FakeReceiver]) -> None:
    client, receiver = served
    answer = client.get("/api/timeline", params={"instrument_id": 7, "run_id": "r0"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["asked"] == {"instrument_id": "7", "run_id": "r0"}
    assert f'"end_ns":{LAST_TS_RECV}' in answer.text, "ns pass through as the receiver wrote them"
    assert client.get("/api/timeline", params={"instrument_id": 7, "run_id": "r0"}).status_code == 200
    assert client.get("/api/timeline").json()["asked"] == {}
    assert [query for _, query in receiver.asked] == [{"instrument_id": "7", "run_id": "r0"}, {}], (
        "a timeline asked again at once is the cached one"
    )


def test_points_and_timelines_need_the_token_when_reads_do(served: tuple[TestClient, FakeReceiver]) -> None:
    client, receiver = served
    for path, params in (("/api/order-book", {"at": "5"}), ("/api/timeline", {})):
        assert client.get(path, params=params, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert receiver.asked == []
