"""Runs through NATS JetStream for the integration tests (issue 17): a NATS sender and receivers as processes,
what each receiver booked, and the receivers' runs as one, to compare with the direct TCP replay."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats
import numpy as np
from nats.js.errors import NoKeysError, NotFoundError

from obm_shared.nats_stream import partition_of
from receiver.partition_leases import MEMBER_BUCKET
from scripts.local_stack import free_port, local_services
from tests.integration.conftest import Stack
from tests.integration.test_pipeline import start, wait_for_run_end
from tests.nats_server import NATS_TOKEN

PARTITIONS = 4
EVERY_BOOK: dict[str, str | int] = {"depth": 1000, "per_publisher": "true"}
RUN_SECONDS = 120
WAIT_SECONDS = 30.0
PACED_SPEED = 5.0
"""The demo's 35 s of market time in about 7 s of replay, so a fault lands while records are still published."""


class _Line(msgspec.Struct):
    instrument_id: int


_line_decoder = msgspec.json.Decoder(_Line)


@dataclass(frozen=True)
class Booked:
    """What one or several receivers ended a run with."""

    run_id: str
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
    return Booked(
        run["run_id"], run["records_received"], run["accounting"], dict(books), instruments, dict(lines)
    )


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
        shares[0].run_id,
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


@contextmanager
def nats_sender(nats_url: str, data_dir: Path, logs: Path, **settings: object) -> Iterator[str]:
    """A sender publishing to NATS in PARTITIONS partitions, streaming ``data_dir``; its URL. ``settings`` are
    more of its environment (``SENDER_...``)."""
    environment = {
        "SENDER_TRANSPORT": "nats",
        "SENDER_NATS_URL": nats_url,
        "SENDER_NATS_TOKEN": NATS_TOKEN,
        "SENDER_NATS_PARTITIONS": PARTITIONS,
        "SENDER_DATA_DIR": data_dir,
        **settings,
    }
    with local_services({"sender": environment}, logs, {"sender": free_port()}) as running:
        yield running.urls["sender"]


@dataclass(frozen=True)
class NatsReceiver:
    url: str
    output_dir: Path
    partitions: str
    """Its RECEIVER_PARTITIONS: empty when it books the partitions dealt to it (see :func:`owned_partitions`)."""
    pid: int


@contextmanager
def nats_receiver(
    nats_url: str, partitions: str, root: Path, output_dir: Path | None = None, **settings: object
) -> Iterator[NatsReceiver]:
    """A receiver booking ``partitions`` of each run announced on NATS, its log under ``root`` and its event
    lines in its own folder of ``output_dir`` (``root/output`` unless given); ``settings`` are more of its
    environment (``RECEIVER_...``)."""
    output_dir = output_dir or root / "output"
    for folder in (root, output_dir):
        folder.mkdir(parents=True, exist_ok=True)
    environment = {
        "RECEIVER_TRANSPORT": "nats",
        "RECEIVER_NATS_URL": nats_url,
        "RECEIVER_NATS_TOKEN": NATS_TOKEN,
        "RECEIVER_PARTITIONS": partitions,
        "RECEIVER_OUTPUT_DIR": output_dir,
        "RECEIVER_INGEST_PORT": free_port(),
        **settings,
    }
    with local_services({"receiver": environment}, root, {"receiver": free_port()}) as running:
        receiver_id = str(settings.get("RECEIVER_ID", socket.gethostname()))
        yield NatsReceiver(
            running.urls["receiver"], output_dir / receiver_id, partitions, running.processes["receiver"].pid
        )


def start_on_nats(sender_url: str, file: str, speed: float | None = None) -> str:
    """Start a replay of ``file`` on the NATS sender; its run id."""
    started = httpx.post(f"{sender_url}/start-streaming", json={"file": file, "speed": speed}, timeout=10)
    assert started.status_code == 200, started.text
    run_id: str = started.json()["run_id"]
    return run_id


def sender_run_ended(sender_url: str) -> dict[str, Any]:
    """The sender's run once it is no longer streaming."""
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        run: dict[str, Any] = httpx.get(f"{sender_url}/status", timeout=5).json()["run"]
        if run["state"] != "streaming":
            return run
        time.sleep(0.05)
    raise AssertionError(f"the sender's run did not end within {RUN_SECONDS} s")


def stream_through_nats(sender_url: str, file: str, speed: float | None = None) -> dict[str, Any]:
    """Replay ``file`` on the NATS sender; its run once every publish is acknowledged."""
    start_on_nats(sender_url, file, speed)
    run = sender_run_ended(sender_url)
    assert run["state"] == "done", f"the sender's run ended {run['state']}: {run['error']}"
    return run


def receiver_run(receiver: NatsReceiver) -> dict[str, Any] | None:
    """The receiver's current or last run, if any."""
    run: dict[str, Any] | None = httpx.get(f"{receiver.url}/status", timeout=5).json()["run"]
    return run


def run_booked(receiver: NatsReceiver, run_id: str, timeout: float = RUN_SECONDS) -> dict[str, Any]:
    """The receiver's run of ``run_id`` once it has ended."""
    deadline = time.monotonic() + timeout
    run: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        run = receiver_run(receiver)
        if run is not None and run["run_id"] == run_id and run["state"] not in ("ready", "receiving"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"receiver of partitions {receiver.partitions} did not end run {run_id}: {run}")


def balanced_share(receiver: NatsReceiver, run_id: str, replay: Booked) -> Booked:
    """What ``receiver`` booked of run ``run_id``, once it is done with every record accounted for and exactly
    the replay's instruments of its partitions."""
    run = run_booked(receiver, run_id)
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
    owned = owned_partitions(receiver)
    assert set(share.books) == owned_instruments(replay, owned), (
        f"partitions {receiver.partitions}: booked instruments {sorted(share.books)}"
    )
    return share


def assert_books_as_replayed(together: Booked, replay: Booked, sent: dict[str, Any]) -> None:
    """The receivers' run as one equals the TCP replay: records, accounting, books and event lines."""
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


def assert_history_as_replayed(
    receiver: NatsReceiver, run_id: str, replay: Booked, replay_url: str, samples: int = 8
) -> None:
    """``receiver``'s books at points of its run ``run_id`` (time travel) and its liquidity history there equal the
    TCP replay's books at those points: a receiver owning several partitions books them in market time."""
    for instrument_id in sorted(owned_instruments(replay, owned_partitions(receiver))):
        query: dict[str, str | int] = {"instrument_id": instrument_id, "run_id": run_id}
        timeline = httpx.get(f"{receiver.url}/timeline", params=query, timeout=30).json()
        buckets = [each for each in timeline["history"]["buckets"] if each["best_bid"] or each["best_ask"]]
        assert buckets, f"instrument {instrument_id}: no liquidity history"
        for bucket in buckets[:: max(1, len(buckets) // samples)]:
            point = EVERY_BOOK | {"instrument_id": instrument_id, "at": bucket["end_ns"]}
            mine = httpx.get(f"{receiver.url}/order-book", params=point | {"run_id": run_id}, timeout=30)
            theirs = httpx.get(
                f"{replay_url}/order-book", params=point | {"run_id": replay.run_id}, timeout=30
            )
            where = f"instrument {instrument_id} at {bucket['end_ns']} ns"
            assert mine.json()["books"] == theirs.json()["books"], f"{where}: books differ from the replay's"
            consolidated = theirs.json()["books"][0]
            assert [bucket["best_bid"], bucket["best_ask"]] == [
                (consolidated[side] or {}).get("price_raw") for side in ("best_bid", "best_ask")
            ], f"{where}: the history's best prices are not the replay's book's"


def replayed_over_tcp(stack: Stack, file: str) -> Booked:
    """What the local stack's receiver books of ``file`` replayed over direct TCP."""
    assert start(stack, file=file).status_code == 200
    run = wait_for_run_end(stack)["receiver"]["status"]["run"]
    assert run["state"] == "done", f"the TCP replay of {file} ended {run['state']}: {run['last_error']}"
    return booked(stack.receiver, stack.output_dir, run)


def wait_until(what: str, condition: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not {what} within {timeout:g} s")


def receiving(receiver: NatsReceiver, run_id: str) -> bool:
    """True once ``receiver`` has booked some records of run ``run_id`` and is still receiving."""
    run = receiver_run(receiver)
    return (
        run is not None
        and run["run_id"] == run_id
        and run["state"] == "receiving"
        and run["records_received"] > 0
    )


def sender_state(sender_url: str) -> dict[str, Any]:
    run: dict[str, Any] = httpx.get(f"{sender_url}/status", timeout=5).json()["run"]
    return run


def wait_until_under_way(sender_url: str, receivers: list[NatsReceiver], run_id: str, records: int) -> None:
    """Wait until a quarter of the run's ``records`` are sent and every one of ``receivers`` is booking it."""
    wait_until(
        f"run {run_id} a quarter sent and booked by partitions {[each.partitions for each in receivers]}",
        lambda: (
            sender_state(sender_url)["records_sent"] > records // 4
            and all(receiving(each, run_id) for each in receivers)
        ),
    )


def owned_partitions(receiver: NatsReceiver) -> set[int]:
    """The partitions ``receiver`` books: its RECEIVER_PARTITIONS, else those its /status says it holds."""
    if receiver.partitions:
        return {int(partition) for partition in receiver.partitions.split(",")}
    partitions: list[int] = httpx.get(f"{receiver.url}/status", timeout=5).json()["partitions"]
    return set(partitions)


def live_members(nats_url: str) -> set[str]:
    """The ids of the receivers whose membership key is in NATS now."""

    async def read() -> set[str]:
        client = await nats.connect(nats_url, token=NATS_TOKEN)
        try:
            bucket = await client.jetstream().key_value(MEMBER_BUCKET)
            return set(await bucket.keys())
        except (NotFoundError, NoKeysError):
            return set()
        finally:
            await client.close()

    return asyncio.run(read())


def wait_for_members(nats_url: str, ids: set[str]) -> None:
    """Wait until exactly the receivers ``ids`` are live members, so a run is dealt among them all."""
    wait_until(f"receivers {sorted(ids)} the live members", lambda: live_members(nats_url) == ids)
