"""The receiver keeps what it received: the recording, the books at any point, the timeline (issue 15).

A receiver app runs in-process (its ingest server on a loopback port) and the sender's own streamer sends it
each real file over TCP. Then: the recording reads back through Databento's ``DBNStore`` record for record
equal to the file; at 30 points per file (those of ``tests/unit/test_cli_time_travel.py``) ``GET /order-book``
answers the books of a fresh replay of the file's prefix, and the book at the event it ends on is that line of
``GET /events``; the liquidity history's best prices at each bucket's end are the books' at that time.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import databento
import msgspec
import numpy as np
import pytest
from fastapi.testclient import TestClient

from obm_shared.auth import ingest_proof
from obm_shared.dbn_file import open_mbo_file
from obm_shared.framing import FrameEncoder, read_reply
from obm_shared.messages import PROTOCOL_VERSION, Accepted, Challenge, Handshake, RecordBatch
from obm_shared.records import MboArray
from receiver.book.adapter import apply_records
from receiver.book.market import Market
from receiver.book.views import market_views
from receiver.core.config import Settings
from receiver.main import create_app
from scripts.local_stack import free_port
from sender.catalog import Catalog
from sender.core.config import Settings as SenderSettings
from sender.streamer import Streamer, StreamState
from tests.conftest import CLX5, DBEQ, ESM4, real_file
from tests.unit.test_cli_time_travel import (
    LINE_DEPTH,
    POINTS_PER_FILE,
    Stream,
    expected_point,
    points,
    prefix_length,
    rows,
    stream_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.realdata]

CHECKPOINT_RECORDS = 4096
"""Small enough that every file has several checkpoints, and most points lie between two."""
API_DEPTH = 1000
"""The deepest book the API answers."""
RUN_TIMEOUT_SECONDS = 60
HISTORY_POINTS = 40
"""Buckets per instrument checked through the point API (every bucket is checked against a fresh replay)."""


@contextmanager
def receiver(output_dir: Path, **settings: Any) -> Iterator[tuple[TestClient, int]]:
    """The receiver app in-process: its HTTP client and its ingest port."""
    ingest_port = free_port()
    app = create_app(
        Settings(
            output_dir=output_dir, ingest_port=ingest_port, checkpoint_records=CHECKPOINT_RECORDS, **settings
        )
    )
    with TestClient(app) as client:
        yield client, ingest_port


def stream_file(client: TestClient, ingest_port: int, path: Path) -> dict[str, Any]:
    """Stream ``path`` with the sender's streamer, as fast as possible; the receiver's run once it is done."""
    settings = SenderSettings(data_dir=path.parent, receiver_port=ingest_port)
    catalog = Catalog(path.parent)
    streamer = Streamer(settings)
    job = streamer.start(catalog.describe(path), path, ("127.0.0.1", ingest_port), None)
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        run = client.get("/status").json()["run"]
        if job.state != StreamState.STREAMING and run is not None and run["state"] != "receiving":
            assert job.state == StreamState.DONE, f"the sender's stream of {path.name} ended {job.error}"
            assert run["state"] == "done", f"the receiver's run of {path.name} ended {run}"
            return dict(run)
        time.sleep(0.05)
    raise AssertionError(f"{path.name} was not received within {RUN_TIMEOUT_SECONDS} s")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    """One receiver that has received the three files: its client, each file's run id, its output folder."""
    files = {name: real_file(relative) for name, relative in (("clx5", CLX5), ("esm4", ESM4), ("dbeq", DBEQ))}
    output_dir = tmp_path_factory.mktemp("recorded")
    with receiver(output_dir) as (client, ingest_port):
        run_ids = {name: stream_file(client, ingest_port, path)["run_id"] for name, path in files.items()}
        yield client, run_ids, output_dir


def source_records(path: Path) -> MboArray:
    return np.concatenate(list(open_mbo_file(path).batches(1 << 20)))


@pytest.mark.parametrize("name", ["clx5", "esm4", "dbeq"])
def test_the_recording_reads_back_through_databento_record_for_record(
    recorded: tuple[TestClient, dict[str, str], Path], name: str
) -> None:
    _, run_ids, output_dir = recorded
    source = real_file({"clx5": CLX5, "esm4": ESM4, "dbeq": DBEQ}[name])
    store = databento.DBNStore.from_file(output_dir / f"{run_ids[name]}.dbn")
    original = databento.DBNStore.from_file(source)
    assert store.metadata == original.metadata, f"{name}: the recording's metadata is not the file's"
    got, want = store.to_ndarray(), source_records(source)
    assert len(got) == len(want), f"{name}: the recording holds {len(got)} records, the file {len(want)}"
    differing = np.flatnonzero(
        got.view(np.void(want.dtype.itemsize)) != want.view(np.void(want.dtype.itemsize))
    )
    assert not len(differing), f"{name}: record {int(differing[0])} of the recording differs from the file's"


def point_query(option: list[str]) -> dict[str, str]:
    kind, value = option
    return {"at_event": value} if kind == "--at-event" else {"at": value}


def consolidated_line(document: dict[str, Any], instrument_id: int) -> dict[str, Any]:
    """What line K of the event output shows, taken from a point's document of depth LINE_DEPTH."""
    book = next(
        book
        for book in document["books"]
        if book["instrument_id"] == instrument_id and book["publisher_id"] is None
    )
    return {
        "bids": rows(book["bids"]),
        "asks": rows(book["asks"]),
        "best_bid": rows([book["best_bid"]]) if book["best_bid"] else None,
        "best_ask": rows([book["best_ask"]]) if book["best_ask"] else None,
        "crossed": book["crossed"],
        "orders": book["orders"],
    }


def line_view(line: dict[str, Any]) -> dict[str, Any]:
    return {
        "bids": rows(line["bids"]),
        "asks": rows(line["asks"]),
        "best_bid": rows([line["best_bid"]]) if line["best_bid"] else None,
        "best_ask": rows([line["best_ask"]]) if line["best_ask"] else None,
        "crossed": line["crossed"],
        "orders": line["orders"],
    }


@pytest.mark.parametrize("name", ["clx5", "esm4", "dbeq"])
def test_the_books_at_a_point_are_a_fresh_replay_of_the_prefix(
    recorded: tuple[TestClient, dict[str, str], Path], name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    client, run_ids, _ = recorded
    stream: Stream = stream_of(
        real_file({"clx5": CLX5, "esm4": ESM4, "dbeq": DBEQ}[name]), tmp_path_factory.getbasetemp()
    )
    options = points(stream)
    assert len(options) == POINTS_PER_FILE
    run_id = run_ids[name]
    market = Market(symbols=stream.symbols)
    applied = 0
    for length, option in sorted((prefix_length(stream, option), option) for option in options):
        where = f"{stream.path.name} {' '.join(option)} (prefix of {length} records)"
        apply_records(market, stream.records[applied:length])
        applied = length
        answer = client.get(
            "/order-book", params={**point_query(option), "run_id": run_id, "depth": API_DEPTH}
        )
        assert answer.status_code == 200, f"{where}: {answer.status_code} {answer.text}"
        document = answer.json()
        point = document["point"]
        expected = expected_point(stream, length)
        assert (point["event_index"], point["ts_recv"], point["ts_event"]) == (
            (expected["event_index"], expected["ts_recv"], expected["ts_event"])
            if expected
            else (None, None, None)
        ), f"{where}: answers for another event: {point}"
        assert point["records"] == length, f"{where}: a prefix of {point['records']} records"
        assert document["accounting"] == market.accounting.as_dict(), f"{where}: accounting differs"
        want = json.loads(msgspec.json.encode(market_views(market, API_DEPTH)))
        assert len(document["books"]) == len(want), (
            f"{where}: {len(document['books'])} books, not {len(want)}"
        )
        for got_book, want_book in zip(document["books"], want, strict=True):
            differing = {
                key: (got_book[key], want_book[key]) for key in want_book if got_book[key] != want_book[key]
            }
            assert not differing, (
                f"{where}: book {want_book['symbol']} publisher {want_book['publisher_id'] or 'consolidated'}"
                f" differs (API, replay): {differing}"
            )


@pytest.mark.parametrize("name", ["clx5", "esm4", "dbeq"])
def test_the_book_at_event_k_is_line_k_of_the_events(
    recorded: tuple[TestClient, dict[str, str], Path], name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    client, run_ids, _ = recorded
    stream = stream_of(
        real_file({"clx5": CLX5, "esm4": ESM4, "dbeq": DBEQ}[name]), tmp_path_factory.getbasetemp()
    )
    run_id = run_ids[name]
    events = len(stream.event_ends)
    rng = np.random.default_rng(15)
    for event in sorted({0, events - 1, *(int(k) for k in rng.integers(0, events, 10))}):
        document = client.get(
            "/order-book", params={"at_event": event, "run_id": run_id, "depth": LINE_DEPTH}
        ).json()
        assert document["point"]["event_index"] == event
        # the receiver's own lines of that run, as GET /events served them: a finished run's file
        line = json.loads(stream.lines[event])
        assert consolidated_line(document, line["instrument_id"]) == line_view(line), (
            f"{stream.path.name}: the book at event {event} is not line {event} of the events"
        )


def test_the_current_runs_events_page_matches_its_point_books(tmp_path: Path) -> None:
    path = real_file(ESM4)
    with receiver(tmp_path) as (client, ingest_port):
        events = stream_file(client, ingest_port, path)["events"]
        for event in (0, events // 2, events - 1):
            line = client.get("/events", params={"start": event, "limit": 1}).json()["events"][0]
            document = client.get("/order-book", params={"at_event": event, "depth": LINE_DEPTH}).json()
            assert consolidated_line(document, line["instrument_id"]) == line_view(line), (
                f"event {event}: GET /events and GET /order-book?at_event disagree"
            )


def test_malformed_points_are_422_with_the_reason(recorded: tuple[TestClient, dict[str, str], Path]) -> None:
    client, run_ids, _ = recorded
    for params, reason in [
        ({"at": "soon"}, "not a number"),
        ({"at": "2024-05-08T13:30:00"}, "not an ISO-8601 UTC time"),
        ({"at": "-3"}, "negative"),
        ({"at": "2024-05-08T13:30:00.1234567891Z"}, "decimals"),
        ({"at": "0", "at_event": "0"}, "not both"),
        ({"at_event": "-1"}, "greater than or equal to 0"),
        ({"at_event": "1.5"}, "integer"),
        ({"at": "0", "run_id": "../etc"}, "pattern"),
        ({"at": "0", "run_id": "a.b"}, "pattern"),
    ]:
        answer = client.get("/order-book", params=params)
        assert answer.status_code == 422, f"{params}: {answer.status_code} {answer.text}"
        assert reason in answer.text, f"{params}: the answer does not say {reason!r}: {answer.text}"
    assert client.get("/timeline", params={"run_id": "../x"}).status_code == 422
    assert client.get("/order-book", params={"at": "0", "run_id": "nosuchrun"}).status_code == 404
    assert client.get("/timeline", params={"run_id": "nosuchrun"}).status_code == 404
    assert client.get("/timeline", params={"run_id": run_ids["clx5"], "instrument_id": 1}).status_code == 404


def send_part(ingest_port: int, records: MboArray, header: bytes) -> socket.socket:
    """A stream that sends ``records`` and then waits: its run stays being received."""
    sock = socket.create_connection(("127.0.0.1", ingest_port), timeout=10)

    def recv_exactly(size: int) -> bytes:
        data = b""
        while len(data) < size:
            data += sock.recv(size - len(data))
        return data

    challenge = read_reply(recv_exactly)
    assert isinstance(challenge, Challenge)
    encoder = FrameEncoder()
    metadata = open_mbo_file(real_file(CLX5)).metadata()
    sock.sendall(
        encoder.encode(
            Handshake(PROTOCOL_VERSION, metadata, "partway", ingest_proof(None, challenge.nonce), header)
        )
    )
    assert isinstance(read_reply(recv_exactly), Accepted)
    sock.sendall(encoder.encode(RecordBatch.from_array(0, 0, records)))
    return sock


def test_a_point_beyond_what_has_arrived_is_409_with_how_far_it_got(tmp_path: Path) -> None:
    path = real_file(CLX5)
    records = source_records(path)[:20_000]
    with (
        receiver(tmp_path) as (client, ingest_port),
        send_part(ingest_port, records, open_mbo_file(path).header()),
    ):
        deadline = time.monotonic() + 10
        while client.get("/timeline").json().get("records", 0) < len(records):
            assert time.monotonic() < deadline, "the records sent were not recorded"
            time.sleep(0.02)
        ends = np.flatnonzero(records["flags"] & 0x80)
        last_ts = int(records["ts_recv"][-1])
        for params in ({"at": str(last_ts)}, {"at_event": str(len(ends))}):
            answer = client.get("/order-book", params=params)
            assert answer.status_code == 409, f"{params}: {answer.status_code} {answer.text}"
            assert answer.json() == {
                "detail": answer.json()["detail"],
                "events_received": len(ends),
                "last_ts_recv": last_ts,
            }
        inside = client.get("/order-book", params={"at": str(last_ts - 1)})
        assert inside.status_code == 200, inside.text
        assert inside.json()["state"] == "receiving"
        assert client.get("/order-book", params={"at_event": str(len(ends) - 1)}).json()["point"][
            "records"
        ] == (int(ends[-1]) + 1)


@pytest.mark.parametrize("name", ["clx5", "dbeq"])
def test_the_history_best_prices_are_the_books_at_each_buckets_end(
    recorded: tuple[TestClient, dict[str, str], Path], name: str
) -> None:
    client, run_ids, _ = recorded
    path = real_file({"clx5": CLX5, "dbeq": DBEQ}[name])
    records = source_records(path)
    ends = np.flatnonzero(records["flags"] & 0x80)
    event_ts = records["ts_recv"][ends]
    first = client.get("/timeline", params={"run_id": run_ids[name]}).json()
    assert len(first["checkpoints"]) > 0 and first["records"] == len(records) and first["events"] == len(ends)
    for instrument in first["instruments"]:
        iid = instrument["instrument_id"]
        history = client.get("/timeline", params={"run_id": run_ids[name], "instrument_id": iid}).json()[
            "history"
        ]
        buckets = history["buckets"]
        assert 0 < len(buckets) <= 2000
        market = Market()
        applied = 0
        for index, bucket in enumerate(buckets):
            within = int(np.searchsorted(event_ts, bucket["end_ns"], side="right"))
            length = int(ends[within - 1]) + 1 if within else 0
            apply_records(market, records[applied:length])
            applied = length
            views = (
                market_views(market, 1, per_publisher=False, only=iid) if iid in market.by_instrument else []
            )
            want = (
                (
                    views[0].best_bid.price_raw if views[0].best_bid else None,
                    views[0].best_ask.price_raw if views[0].best_ask else None,
                )
                if views
                else (None, None)
            )
            assert (bucket["best_bid"], bucket["best_ask"]) == want, (
                f"{name} instrument {iid} bucket {index} ending {bucket['end_ns']}: history says "
                f"{(bucket['best_bid'], bucket['best_ask'])}, the book {want}"
            )
        rng = np.random.default_rng(iid)
        for index in sorted(
            {0, len(buckets) - 1, *(int(k) for k in rng.integers(0, len(buckets), HISTORY_POINTS))}
        ):
            bucket = buckets[index]
            document = client.get(
                "/order-book",
                params={
                    "at": bucket["end_ns"],
                    "run_id": run_ids[name],
                    "instrument_id": iid,
                    "per_publisher": False,
                    "depth": 1,
                },
            ).json()
            book = document["books"][0] if document.get("books") else None
            got = (
                (
                    book["best_bid"]["price_raw"] if book["best_bid"] else None,
                    book["best_ask"]["price_raw"] if book["best_ask"] else None,
                )
                if book
                else (None, None)
            )
            assert (bucket["best_bid"], bucket["best_ask"]) == got, (
                f"{name} instrument {iid} bucket {index}: history {(bucket['best_bid'], bucket['best_ask'])},"
                f" GET /order-book?at={bucket['end_ns']} {got}"
            )
        traded = sum(size for bucket in buckets for _, size, _ in bucket["trades"])
        trade_rows = (records["action"] == b"T") & (records["instrument_id"] == iid)
        assert traded == int(records["size"][trade_rows].sum()), f"{name} instrument {iid}: trades lost"
