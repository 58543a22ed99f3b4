"""Records through NATS JetStream to 1, 2 and 3 receivers partitioned by instrument (issue 17): together they give
the direct TCP replay's books, accounting and per-instrument event lines.

A real nats-server, the sender (SENDER_TRANSPORT=nats, 4 partitions) and each receiver (RECEIVER_TRANSPORT=nats,
its share of the partitions) run as processes; the TCP replay of each file is the session's local stack's.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest

from obm_shared.nats_stream import partition_of
from scripts.local_stack import free_port, local_services
from tests.conftest import CLX5, DBEQ, real_file
from tests.integration.conftest import Stack
from tests.integration.test_pipeline import start, wait_for_run_end
from tests.nats_server import NatsServer, running_nats

pytestmark = [pytest.mark.integration, pytest.mark.realdata]

PARTITIONS = 4
SHARES = {1: ["0,1,2,3"], 2: ["0,1", "2,3"], 3: ["0", "1,2", "3"]}
"""Each receiver's RECEIVER_PARTITIONS, by the number of receivers: DBEQ's two instruments fall in partitions 0
and 2, the demo's three in 0, 2 and 3, CLX5's one in 0, so the files spread over two or three receivers (and a
receiver whose share holds nothing books an empty run)."""
FILES = {"clx5": f"real/{CLX5}", "dbeq": f"real/{DBEQ}", "demo": "demo/demo.mbo.dbn"}
EVERY_BOOK: dict[str, str | int] = {"depth": 1000, "per_publisher": "true"}
RUN_SECONDS = 120


class _Line(msgspec.Struct):
    instrument_id: int


_line_decoder = msgspec.json.Decoder(_Line)


@dataclass(frozen=True)
class Booked:
    """What one or several receivers ended a run with."""

    records_received: int
    accounting: dict[str, Any]
    books: dict[int, list[dict[str, Any]]]
    """Each instrument's books (consolidated, then per publisher), at depth 1000."""
    instruments: dict[int, dict[str, Any]]
    lines: dict[int, list[bytes]]
    """Each instrument's event lines, in order."""


def booked(receiver_url: str, output_dir: Path, run: dict[str, Any]) -> Booked:
    """One receiver's finished run, read through its API and its event lines file."""
    answer = httpx.get(f"{receiver_url}/order-book", params=EVERY_BOOK, timeout=30).json()
    assert answer["run_id"] == run["run_id"]
    books: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for book in answer["books"]:
        books[book["instrument_id"]].append(book)
    lines: dict[int, list[bytes]] = defaultdict(list)
    for line in (output_dir / f"{run['run_id']}.jsonl").read_bytes().splitlines():
        lines[_line_decoder.decode(line).instrument_id].append(line)
    instruments = {each["instrument_id"]: each for each in answer["instruments"]}
    return Booked(run["records_received"], run["accounting"], dict(books), instruments, dict(lines))


def union(shares: list[Booked]) -> Booked:
    """The receivers' runs as one: each instrument from the one receiver that has it, counts summed."""
    books: dict[int, list[dict[str, Any]]] = {}
    instruments: dict[int, dict[str, Any]] = {}
    lines: dict[int, list[bytes]] = {}
    for share in shares:
        assert not books.keys() & share.books.keys(), "an instrument was booked by two receivers"
        books |= share.books
        instruments |= share.instruments
        lines |= share.lines
    return Booked(
        sum(share.records_received for share in shares),
        summed([share.accounting for share in shares]),
        books,
        instruments,
        lines,
    )


def owned_instruments(replay: Booked, partitions: set[int]) -> set[int]:
    """The instruments of ``replay`` that fall in ``partitions``."""
    ids = np.array(sorted(replay.books), dtype=np.uint32)
    return {
        int(iid)
        for iid, partition in zip(ids, partition_of(ids, PARTITIONS), strict=True)
        if partition in partitions
    }


def summed(accountings: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for key in accountings[0]:
        if key == "skipped":
            skipped: Counter[str] = Counter()
            for accounting in accountings:
                skipped.update(accounting["skipped"])
            total[key] = dict(sorted(skipped.items()))
        else:
            total[key] = sum(accounting[key] for accounting in accountings)
    return total


@pytest.fixture(scope="module")
def tcp_replays(stack: Stack) -> Iterator[dict[str, Booked]]:
    """Each file replayed over TCP by the local stack, once, when a test first needs it."""

    class Replays(dict[str, Booked]):
        def __missing__(self, name: str) -> Booked:
            assert start(stack, file=FILES[name]).status_code == 200
            run = wait_for_run_end(stack)["receiver"]["status"]["run"]
            assert run["state"] == "done", (
                f"the TCP replay of {name} ended {run['state']}: {run['last_error']}"
            )
            self[name] = booked(stack.receiver, stack.output_dir, run)
            return self[name]

    yield Replays()


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with running_nats(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture(scope="module")
def nats_sender(
    stack: Stack, nats_server: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A sender publishing to NATS in PARTITIONS partitions, streaming the stack's data folder; its URL."""
    logs = tmp_path_factory.mktemp("nats-sender")
    port = free_port()
    environment = {
        "SENDER_TRANSPORT": "nats",
        "SENDER_NATS_URL": nats_server.url,
        "SENDER_NATS_PARTITIONS": PARTITIONS,
        "SENDER_DATA_DIR": stack.data_dir,
    }
    with local_services({"sender": environment}, logs, {"sender": port}) as running:
        yield running.urls["sender"]


@dataclass(frozen=True)
class NatsReceiver:
    url: str
    output_dir: Path
    partitions: str


@pytest.fixture(scope="module", params=sorted(SHARES), ids=lambda count: f"{count}-receivers")
def nats_receivers(
    request: pytest.FixtureRequest, nats_server: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[NatsReceiver]]:
    """N receivers booking their shares of each run announced on NATS."""
    receivers = []
    with ExitStack() as stack:
        for partitions in SHARES[request.param]:
            root = tmp_path_factory.mktemp(f"nats-receiver-{partitions.replace(',', '')}")
            output_dir = root / "output"
            output_dir.mkdir()
            environment = {
                "RECEIVER_TRANSPORT": "nats",
                "RECEIVER_NATS_URL": nats_server.url,
                "RECEIVER_PARTITIONS": partitions,
                "RECEIVER_OUTPUT_DIR": output_dir,
                "RECEIVER_INGEST_PORT": free_port(),
            }
            port = free_port()
            running = stack.enter_context(local_services({"receiver": environment}, root, {"receiver": port}))
            receivers.append(NatsReceiver(running.urls["receiver"], output_dir, partitions))
        yield receivers


def stream_through_nats(sender_url: str, file: str) -> dict[str, Any]:
    """Start a replay of ``file`` on the NATS sender; its run once every publish is acknowledged."""
    started = httpx.post(f"{sender_url}/start-streaming", json={"file": file}, timeout=10)
    assert started.status_code == 200, started.text
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        run: dict[str, Any] = httpx.get(f"{sender_url}/status", timeout=5).json()["run"]
        if run["state"] != "streaming":
            assert run["state"] == "done", f"the sender's run ended {run['state']}: {run['error']}"
            return run
        time.sleep(0.05)
    raise AssertionError(f"the sender did not publish {file} within {RUN_SECONDS} s")


def run_booked(receiver: NatsReceiver, run_id: str) -> dict[str, Any]:
    """The receiver's run of ``run_id`` once it has ended."""
    deadline = time.monotonic() + RUN_SECONDS
    run: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        run = httpx.get(f"{receiver.url}/status", timeout=5).json()["run"]
        if run is not None and run["run_id"] == run_id and run["state"] not in ("ready", "receiving"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"receiver of partitions {receiver.partitions} did not end run {run_id}: {run}")


@pytest.mark.parametrize("name", sorted(FILES))
def test_receivers_on_nats_together_book_what_the_tcp_replay_books(
    name: str,
    tcp_replays: dict[str, Booked],
    nats_sender: str,
    nats_receivers: list[NatsReceiver],
) -> None:
    if FILES[name].startswith("real/"):
        real_file(FILES[name].removeprefix("real/"))
    replay = tcp_replays[name]
    sent = stream_through_nats(nats_sender, FILES[name])
    assert sent["records_sent"] == replay.records_received, "the NATS sender sent another number of records"

    shares = []
    for receiver in nats_receivers:
        run = run_booked(receiver, sent["run_id"])
        assert run["state"] == "done", (
            f"partitions {receiver.partitions}: run ended {run['state']}: {run['last_error']}"
        )
        accounting = run["accounting"]
        assert accounting["records"] == accounting["applied"] + accounting["ignored"] + sum(
            accounting["skipped"].values()
        ), f"partitions {receiver.partitions}: the records are not all accounted for: {accounting}"
        assert run["accounted"] is True
        assert run["records_received"] == run["records_sent_by_sender"] == accounting["records"]
        share = booked(receiver.url, receiver.output_dir, run)
        owned = {int(partition) for partition in receiver.partitions.split(",")}
        assert set(share.books) == owned_instruments(replay, owned), (
            f"partitions {receiver.partitions}: booked instruments {sorted(share.books)}"
        )
        shares.append(share)
    together = union(shares)

    assert together.records_received == sent["records_sent"], "records lost or doubled between the receivers"
    assert together.accounting == replay.accounting, (
        "the receivers together accounted otherwise than the replay"
    )
    assert sorted(together.books) == sorted(replay.books), "instruments missing or extra across the receivers"
    for instrument_id, books in replay.books.items():
        assert together.books[instrument_id] == books, (
            f"instrument {instrument_id}: books differ from the replay's"
        )
    assert together.instruments == replay.instruments
    assert sorted(together.lines) == sorted(replay.lines)
    for instrument_id, lines in replay.lines.items():
        got = together.lines[instrument_id]
        assert len(got) == len(lines), (
            f"instrument {instrument_id}: {len(got)} event lines, the replay {len(lines)}"
        )
        assert got == lines, f"instrument {instrument_id}: its event lines differ from the replay's"
