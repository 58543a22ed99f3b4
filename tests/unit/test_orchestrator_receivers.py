"""The orchestrator over several receivers (issue 17): receiver URLs resolved to one receiver per address, reads
of an instrument asked of the receiver holding it, reads of the market merged in instrument order, and the
receivers' accounting summed. The receivers are small fake apps answering as the receiver does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import httpx
import msgspec
import pytest
from fastapi import FastAPI, HTTPException, Request

from orchestrator.clients import ServiceClient, ServiceRefused, ServiceUnavailable
from orchestrator.receiver_view import ReceiverView
from orchestrator.receivers import ReceiverSet, expand

T = TypeVar("T")


def run(coroutine: Awaitable[T]) -> T:
    async def main() -> T:
        return await coroutine

    return asyncio.run(main())


def resolver(answers: dict[str, list[str]]) -> Any:
    async def resolve(host: str) -> list[str]:
        if host not in answers:
            raise OSError(f"{host}: name or service not known")
        return answers[host]

    return resolve


# --- resolution ---------------------------------------------------------------------------------------------


def test_a_name_with_several_addresses_is_one_receiver_per_address() -> None:
    resolve = resolver({"receiver": ["10.0.0.12", "10.0.0.9", "10.0.0.12"], "solo": ["10.0.1.1"]})
    urls = ["http://receiver:8082", "http://solo:8082/base", "http://127.0.0.1:8083", "http://gone:1"]
    assert run(expand(urls, resolve)) == [
        "http://10.0.0.9:8082",
        "http://10.0.0.12:8082",
        "http://solo:8082/base",
        "http://127.0.0.1:8083",
        "http://gone:1",
    ], "expected the scaled name expanded in address order, and every other URL as written"


def test_the_receivers_follow_the_names_as_they_resolve() -> None:
    answers = {"receiver": ["10.0.0.1"]}

    async def scenario() -> None:
        receivers = ReceiverSet(["http://receiver:8082"], 1.0, resolve=resolver(answers))
        await receivers.start()
        try:
            assert [c.base_url for c in receivers.clients] == ["http://receiver:8082"]
            answers["receiver"] = ["10.0.0.2", "10.0.0.1"]
            await receivers.refresh()
            first = receivers.clients[0]
            assert [c.base_url for c in receivers.clients] == ["http://10.0.0.1:8082", "http://10.0.0.2:8082"]
            answers["receiver"] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
            await receivers.refresh()
            assert receivers.clients[0] is first, "a receiver still there keeps its client (and connections)"
            assert len(receivers.clients) == 3
            del answers["receiver"]  # DNS away: the name stands as written, so reading it says so
            await receivers.refresh()
            assert [c.base_url for c in receivers.clients] == ["http://receiver:8082"]
        finally:
            await receivers.close()

    run(scenario())


def test_addresses_are_never_resolved() -> None:
    async def scenario() -> None:
        receivers = ReceiverSet(["http://127.0.0.1:8082"], 1.0, resolve=resolver({}))
        await receivers.start()
        assert not receivers.resolves_names and receivers._task is None
        await receivers.close()

    run(scenario())


# --- fake receivers -----------------------------------------------------------------------------------------


def book(instrument_id: int, publisher_id: int | None, bid: str) -> dict[str, Any]:
    return {"instrument_id": instrument_id, "publisher_id": publisher_id, "bids": [[bid, 1, 1]], "asks": []}


class FakeReceiver:
    """A receiver holding whole instruments: each with a consolidated book and one per publisher."""

    def __init__(self, instruments: dict[int, list[int]], accounting: dict[str, Any], events: int) -> None:
        self.instruments = instruments
        self.accounting = accounting
        self.events = events
        self.asked: list[tuple[str, dict[str, str]]] = []
        self.app = FastAPI()
        for path in ("/status", "/order-book", "/trades", "/events"):
            self.app.add_api_route(path, self.answer)
        self.app.add_api_route("/start-processing", self.answer, methods=["POST"])

    def books(self, query: dict[str, str]) -> list[dict[str, Any]]:
        wanted = [int(query["instrument_id"])] if "instrument_id" in query else sorted(self.instruments)
        books = []
        for iid in wanted:
            if iid not in self.instruments:
                raise HTTPException(404, f"no book for instrument {iid} publisher None")
            books.append(book(iid, None, f"{iid}.00"))
            if query.get("per_publisher", "true") == "true":
                books.extend(book(iid, pid, f"{iid}.{pid:02d}") for pid in self.instruments[iid])
        return books

    async def answer(self, request: Request) -> Any:
        query, path = dict(request.query_params), request.url.path
        self.asked.append((path, query))
        records = self.accounting["records"]
        if path == "/status":
            run = {
                "run_id": "r1",
                "state": "done",
                "records_received": records,
                "accounting": self.accounting,
            }
            return {"state": "done", "partitions": [0], "instruments": sorted(self.instruments), "run": run}
        if path == "/order-book":
            instruments = [
                {"instrument_id": iid, "publishers": pubs} for iid, pubs in self.instruments.items()
            ]
            return {"run_id": "r1", "state": "done", "instruments": instruments, "books": self.books(query)}
        if path == "/trades":
            return [
                {"ts_event": 10 * iid + i, "instrument_id": iid} for iid in self.instruments for i in (1, 2)
            ]
        if path == "/events":
            start, limit = int(query["start"]), int(query["limit"])
            lines = [{"receiver": min(self.instruments), "line": i} for i in range(self.events)]
            return {
                "run_id": "r1",
                "total": self.events,
                "start": start,
                "events": lines[start : start + limit],
            }
        return {"run_id": "r1", "state": "ready"}


def accounting(records: int, applied: int, ignored: int, skipped: dict[str, int]) -> dict[str, Any]:
    return {"records": records, "applied": applied, "ignored": ignored, "skipped": skipped, "events": 1}


FIRST = FakeReceiver({7: [2]}, accounting(100, 90, 6, {"unknown_order": 4}), events=3)
SECOND = FakeReceiver({3: [1, 2], 9: [1]}, accounting(50, 45, 5, {}), events=5)


def view_of(*receivers: FakeReceiver) -> ReceiverView:
    for receiver in receivers:
        receiver.asked.clear()
    members = ReceiverSet([], 1.0)
    members.clients = [
        ServiceClient("receiver", f"http://r{n}", 1.0, transport=httpx.ASGITransport(app=receiver.app))
        for n, receiver in enumerate(receivers)
    ]
    return ReceiverView(members, owners_max_age_seconds=60)


def read(view: ReceiverView, path: str, **params: Any) -> Any:
    return run(view.request("GET", path, params=params))


# --- the system view ----------------------------------------------------------------------------------------


def test_the_market_is_every_receivers_books_in_instrument_order() -> None:
    answer = read(view_of(FIRST, SECOND), "/order-book", depth=10, per_publisher="true")
    got = [(b["instrument_id"], b["publisher_id"]) for b in answer["books"]]
    assert got == [(3, None), (3, 1), (3, 2), (7, None), (7, 2), (9, None), (9, 1)], (
        "expected each instrument's consolidated book then its publishers', instruments ascending"
    )
    assert [i["instrument_id"] for i in answer["instruments"]] == [3, 7, 9]
    assert answer["run_id"] == "r1" and answer["state"] == "done"


def test_a_read_of_an_instrument_is_asked_of_the_receiver_holding_it() -> None:
    view = view_of(FIRST, SECOND)
    answer = read(view, "/order-book", depth=10, instrument_id=9, per_publisher="true")
    assert [(b["instrument_id"], b["publisher_id"]) for b in answer["books"]] == [(9, None), (9, 1)]
    assert [path for path, _ in FIRST.asked] == ["/status"], "the receiver without 9 was asked a book"
    assert [path for path, _ in SECOND.asked] == ["/status", "/order-book"]
    read(view, "/order-book", depth=10, instrument_id=3, per_publisher="true")
    assert [path for path, _ in SECOND.asked].count("/status") == 1, "who holds what is asked once per window"


def test_an_instrument_no_receiver_holds_is_a_404() -> None:
    with pytest.raises(ServiceRefused) as refused:
        read(view_of(FIRST, SECOND), "/order-book", depth=10, instrument_id=5)
    assert refused.value.status_code == 404 and "instrument 5" in str(refused.value.detail)


def test_a_receiver_down_leaves_the_others_instruments_readable() -> None:
    view = view_of(FIRST, SECOND)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    view.clients.append(ServiceClient("receiver", "http://down", 1.0, transport=httpx.MockTransport(refuse)))
    assert read(view, "/order-book", depth=10, instrument_id=7)["books"][0]["instrument_id"] == 7
    with pytest.raises(ServiceUnavailable) as unavailable:
        read(view, "/order-book", depth=10, instrument_id=5)
    assert "http://down" in str(unavailable.value), "an instrument the down receiver may hold names it"
    probe = run(view.probe())
    assert probe["reachable"] is False and "http://down" in str(probe["error"])


def test_the_status_lists_each_receiver_and_sums_their_accounting() -> None:
    probe = run(view_of(FIRST, SECOND).probe())
    status = probe["status"]
    assert isinstance(status, dict)
    total = status["run"]
    assert total["records_received"] == 150
    assert total["accounting"] == {
        "records": 150,
        "applied": 135,
        "ignored": 11,
        "skipped": {"unknown_order": 4},
        "events": 2,
    }
    accounted = total["accounting"]
    assert accounted["records"] == accounted["applied"] + accounted["ignored"] + sum(
        accounted["skipped"].values()
    )
    assert [(r["url"], r["instruments"], r["records"]) for r in status["receivers"]] == [
        ("http://r0", [7], 100),
        ("http://r1", [3, 9], 50),
    ]
    assert probe["reachable"] is True and status["instruments"] == [3, 7, 9]


def test_the_tape_is_every_receivers_newest_trades_by_time() -> None:
    view = view_of(FIRST, SECOND)
    assert [t["ts_event"] for t in read(view, "/trades", limit=4)] == [71, 72, 91, 92]
    assert [t["ts_event"] for t in read(view, "/trades", limit=50, instrument_id=3)] == [31, 32]


def test_event_lines_are_each_receivers_in_turn() -> None:
    view = view_of(FIRST, SECOND)
    page = read(view, "/events", start=2, limit=3)
    assert page["total"] == 8
    assert [(e["receiver"], e["line"]) for e in page["events"]] == [(7, 2), (3, 0), (3, 1)]
    assert [e["line"] for e in read(view, "/events", start=0, limit=100, instrument_id=3)["events"]] == list(
        range(5)
    )


def test_a_run_is_prepared_on_every_receiver_and_a_live_feed_refused() -> None:
    view = view_of(FIRST, SECOND)
    run(view.request("POST", "/start-processing", json={}))
    assert ("/start-processing", {}) in FIRST.asked and ("/start-processing", {}) in SECOND.asked
    with pytest.raises(ServiceRefused) as refused:
        run(view.request("POST", "/start-processing", json={"live": {"host": "h"}}))
    assert refused.value.status_code == 409


def test_one_receiver_is_asked_as_it_always_was() -> None:
    view = view_of(SECOND)
    answer = run(view.request_bytes("GET", "/order-book", params={"depth": 10, "instrument_id": 3}))
    direct = run(
        ServiceClient(
            "receiver", "http://r", 1.0, transport=httpx.ASGITransport(app=SECOND.app)
        ).request_bytes("GET", "/order-book", params={"depth": 10, "instrument_id": 3})
    )
    assert answer == direct
    assert [path for path, _ in SECOND.asked] == ["/order-book", "/order-book"], "no ownership asked of one"
    assert msgspec.json.decode(answer)["books"][0]["instrument_id"] == 3
