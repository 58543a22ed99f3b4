"""File -> sender -> TCP -> receiver -> book, with the three services as local processes."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest

from tests.conftest import CLX5, real_file
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

RUN_TIMEOUT_SECONDS = 120


def wait_for_run_end(stack: Stack, timeout: float = RUN_TIMEOUT_SECONDS) -> dict[str, Any]:
    """Poll the orchestrator until the receiver's run is over; returns /api/microservices/status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: dict[str, Any] = httpx.get(f"{stack.orchestrator}/api/microservices/status", timeout=5).json()
        receiver_state = status["receiver"]["status"]["state"]
        sender_state = status["sender"]["status"]["state"]
        if receiver_state in ("done", "stopped", "failed") and sender_state != "streaming":
            return status
        time.sleep(0.1)
    raise AssertionError(f"run did not end within {timeout} s: {status}")


def start(stack: Stack, **body: Any) -> httpx.Response:
    return httpx.post(f"{stack.orchestrator}/api/start-streaming", json=body, timeout=10)


def consolidated(stack: Stack, depth: int = 5) -> dict[str, Any]:
    answer = httpx.get(
        f"{stack.orchestrator}/api/order-book", params={"depth": depth, "per_publisher": False}, timeout=5
    ).json()
    book: dict[str, Any] = answer["books"][0]
    return book


def levels(side: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return [(level["price"], level["size"], level["count"]) for level in side]


@pytest.mark.realdata
def test_clx5_streamed_end_to_end_gives_the_known_final_book(stack: Stack) -> None:
    real_file(CLX5)
    started = start(stack, file=f"real/{CLX5}")
    assert started.status_code == 200, started.text
    status = wait_for_run_end(stack)

    sender_run = status["sender"]["status"]["run"]
    receiver_run = status["receiver"]["status"]["run"]
    assert sender_run["state"] == "done", sender_run
    assert receiver_run["state"] == "done", receiver_run
    accounting = receiver_run["accounting"]
    assert sender_run["records_sent"] == 38_212
    assert receiver_run["records_received"] == 38_212, "records lost between sender and receiver"
    assert accounting["records"] == accounting["applied"] + accounting["ignored"] + sum(
        accounting["skipped"].values()
    )
    assert accounting["skipped"] == {"cancel_unknown_order": 1224}
    assert accounting["modify_unknown_as_add"] == 216
    assert receiver_run["accounted"] is True

    book = consolidated(stack)
    assert (book["orders"], book["bid_levels"], book["ask_levels"]) == (147, 61, 52)
    assert book["crossed"] is True, "CLX5 ends crossed (pre-open) and must be reported so"
    assert levels(book["bids"]) == [
        ("65.4", 1, 1),
        ("64.9", 10, 1),
        ("64.79", 1, 1),
        ("64.76", 1, 1),
        ("64.75", 9, 1),
    ]
    assert levels(book["asks"]) == [
        ("64.78", 3, 1),
        ("64.79", 5, 3),
        ("64.8", 7, 2),
        ("64.81", 1, 1),
        ("64.82", 20, 3),
    ]


def test_the_run_id_a_start_returns_names_the_replay_in_every_service(stack: Stack) -> None:
    started = start(stack)
    assert started.status_code == 200, started.text
    run_id = started.json()["run_id"]
    status = wait_for_run_end(stack)
    assert status["sender"]["status"]["run"]["run_id"] == run_id, "the sender's run is another id"
    assert status["receiver"]["status"]["run"]["run_id"] == run_id, "the receiver's run is another id"
    books = httpx.get(f"{stack.orchestrator}/api/order-book", params={"depth": 1}, timeout=10).json()
    assert books["run_id"] == run_id, "the books carry another run id than the start returned"


@pytest.mark.realdata
def test_event_lines_cover_every_event_and_end_at_the_final_book(stack: Stack) -> None:
    real_file(CLX5)
    assert start(stack, file=f"real/{CLX5}").status_code == 200
    status = wait_for_run_end(stack)
    events = status["receiver"]["status"]["run"]["events"]
    assert events == 32_053
    assert status["receiver"]["status"]["run"]["output_lines"] == events, "event lines lost"

    first = httpx.get(f"{stack.orchestrator}/api/events", params={"start": 0, "limit": 3}, timeout=5).json()
    assert first["total"] == events
    assert len(first["events"]) == 3
    assert [line["sequence"] for line in first["events"]] == sorted(
        line["sequence"] for line in first["events"]
    )

    last = httpx.get(
        f"{stack.orchestrator}/api/events", params={"start": events - 1, "limit": 10}, timeout=5
    ).json()["events"]
    assert len(last) == 1
    final = consolidated(stack, depth=10)
    assert levels(last[0]["bids"]) == levels(final["bids"]), "last event line differs from the final book"
    assert levels(last[0]["asks"]) == levels(final["asks"])
    assert last[0]["crossed"] is True


def test_demo_data_replays_with_nothing_skipped(stack: Stack) -> None:
    assert start(stack).status_code == 200, "the demo file is the default"
    status = wait_for_run_end(stack)
    run = status["receiver"]["status"]["run"]
    assert run["state"] == "done", run
    assert run["records_received"] == status["sender"]["status"]["run"]["records_total"]
    assert run["accounting"]["skipped"] == {}
    assert run["accounted"] is True
    for book in httpx.get(f"{stack.orchestrator}/api/order-book", timeout=5).json()["books"]:
        assert not book["crossed"], f"demo book {book['symbol']} publisher {book['publisher_id']} crossed"


@pytest.mark.parametrize(
    ("file", "status_code", "words"),
    [
        ("../../etc/passwd", 400, "outside the data folder"),
        ("/etc/passwd", 400, "outside the data folder"),
        ("demo/missing.dbn", 404, "not a file"),
        ("real/fixtures/test_data.mbp-1.dbn", 422, "not MBO"),
    ],
)
def test_bad_file_requests_get_a_reason(stack: Stack, file: str, status_code: int, words: str) -> None:
    if file.startswith("real/"):
        real_file(file.removeprefix("real/"))
    answer = start(stack, file=file)
    assert answer.status_code == status_code, answer.text
    assert words in answer.json()["detail"]


def test_stop_ends_a_paced_replay_and_the_receiver_is_told(stack: Stack) -> None:
    assert start(stack, speed=1.0).status_code == 200
    time.sleep(0.5)
    busy = start(stack)
    assert busy.status_code == 409, "a second replay must be refused while one runs"
    assert "stream" in busy.json()["detail"]
    stopped = httpx.post(f"{stack.orchestrator}/api/stop", json={}, timeout=10).json()
    assert stopped["run"]["state"] == "stopped"
    status = wait_for_run_end(stack)
    receiver_run = status["receiver"]["status"]["run"]
    assert receiver_run["state"] == "stopped", "a user's stop is not a failure"
    assert "stopped by the user" in receiver_run["last_error"]
    assert receiver_run["accounted"] is True


def test_garbage_on_the_ingest_port_is_a_counted_protocol_error(stack: Stack) -> None:
    before = httpx.get(f"{stack.receiver}/status", timeout=5).json()
    with socket.create_connection(("127.0.0.1", before["ingest_port"]), timeout=5) as sock:
        sock.sendall(b"\x00\x00\x00\x05hello")
        sock.settimeout(5)
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert b"malformed_frame" in received, "the receiver says why before it closes"
    after = httpx.get(f"{stack.receiver}/status", timeout=5).json()
    assert after["run"] == before["run"], "bytes from an unauthenticated connection must not touch the run"
    errors_before = before["protocol_errors"].get("malformed_frame", 0)
    assert after["protocol_errors"]["malformed_frame"] == errors_before + 1
    rejected_before = before["rejected_connections"].get("protocol_error", 0)
    assert after["rejected_connections"]["protocol_error"] == rejected_before + 1

    assert start(stack).status_code == 200, "the receiver must take the next stream"
    assert wait_for_run_end(stack)["receiver"]["status"]["run"]["state"] == "done"
