"""The sender's live gateway: what it streams to a plain DBN-reading client and to Databento's own client
(``databento.Live`` with a callback), and the receiver booking from it against booking the TCP replay.

Every session replays the workload file from its start (``start=0``, ``ALL_SYMBOLS``) as fast as the client
reads; a session's rate is its records over the time from the session's start to the gateway's close.
"""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import databento
import httpx

from bench.e2e import ingest_rate, pipeline, replay_once, start_clean, wait_for_run
from bench.measure import Figure, figure
from obm_shared.dbn_file import open_mbo_file
from obm_shared.live_protocol import (
    ALL_SYMBOLS,
    AuthRequest,
    AuthResponse,
    Challenge,
    SessionStart,
    SubscriptionRequest,
    cram_response,
    decode_line,
    encode_line,
)
from obm_shared.records import MBO_RECORD_SIZE
from receiver.live.dbn_stream import DbnStream
from scripts.local_stack import LocalStack, free_port

KEY = "db-" + "Bench" * 5 + "Mark"
READ_BYTES = 1 << 20
SESSION_TIMEOUT_SECONDS = 600


def plain_client_rate(port: int, dataset: str, records: int) -> float:
    """Records/s of one session read by a minimal client: the control lines, then the DBN stream split into
    its records (NumPy views, as the receiver reads it); every record must arrive."""
    with socket.create_connection(("127.0.0.1", port), timeout=SESSION_TIMEOUT_SECONDS) as connection:
        lines = connection.makefile("rb")
        lines.readline()  # the greeting
        challenge = decode_line(lines.readline(), Challenge)
        connection.sendall(encode_line(AuthRequest(auth=cram_response(challenge.cram, KEY), dataset=dataset)))
        if decode_line(lines.readline(), AuthResponse).success != 1:
            raise RuntimeError("the gateway refused the bench's key")
        subscription = SubscriptionRequest(
            schema="mbo", stype_in="raw_symbol", symbols=ALL_SYMBOLS, start="0"
        )
        connection.sendall(encode_line(subscription) + encode_line(SessionStart()))
        stream, received = DbnStream(), 0
        started = time.perf_counter()
        while chunk := lines.read1(READ_BYTES):
            received += (
                sum(len(piece) for piece in stream.feed(chunk) if isinstance(piece, bytes)) // MBO_RECORD_SIZE
            )
        elapsed = time.perf_counter() - started
    if received != records:
        raise RuntimeError(f"the plain client got {received:,} of {records:,} records")
    return received / elapsed


def databento_client_rate(port: int, dataset: str, records: int) -> float:
    """Records/s of one session read by ``databento.Live`` with a callback counting MBO records."""
    received = 0

    def count(record: Any) -> None:
        nonlocal received
        if isinstance(record, databento.MBOMsg):
            received += 1

    client = databento.Live(key=KEY, gateway="127.0.0.1", port=port)
    client.subscribe(dataset=dataset, schema="mbo", symbols=ALL_SYMBOLS, start=0)
    client.add_callback(count)
    started = time.perf_counter()
    client.start()
    client.block_for_close(timeout=SESSION_TIMEOUT_SECONDS)
    elapsed = time.perf_counter() - started
    if received != records:
        raise RuntimeError(f"databento.Live got {received:,} of {records:,} records")
    return received / elapsed


def book_live_once(stack: LocalStack, port: int, dataset: str) -> dict[str, Any]:
    """The receiver books one gateway session of the workload; returns its final run status."""
    source = {"host": "127.0.0.1", "port": port, "dataset": dataset, "start": 0, "api_key": KEY}
    with httpx.Client(timeout=30) as client:
        client.post(f"{stack.urls['receiver']}/start-processing", json={"live": source}).raise_for_status()
        return wait_for_run(client, stack, f"live {dataset}")


def only(path: Path, data_dir: Path) -> Path:
    """``data_dir`` holding ``path`` alone: a gateway session replays every file of a dataset."""
    (data_dir / path.name).symlink_to(path.resolve())
    return data_dir


def gateway_figures(workload: Path, client_workload: Path, runs: int) -> list[Figure]:
    """The plain client's and the receiver's rates on ``workload``, Databento's client's on the smaller
    ``client_workload`` (it decodes every record in Python); the receiver's two ways alternate."""
    dataset = str(open_mbo_file(workload).dbn_metadata.dataset)
    records = {
        path: sum(len(batch) for batch in open_mbo_file(path).batches(1 << 20))
        for path in (workload, client_workload)
    }
    plain, python_client, live, replayed = [], [], [], []
    port = free_port()
    for path in (workload, client_workload):
        with (
            tempfile.TemporaryDirectory() as data_dir,
            pipeline(only(path, Path(data_dir)), output_enabled=False, gateway=(port, KEY)) as (
                stack,
                output_dir,
            ),
        ):
            # the catalog reads each file once: done before any session is timed
            httpx.get(f"{stack.urls['sender']}/files", timeout=SESSION_TIMEOUT_SECONDS).raise_for_status()
            for _ in range(runs):
                if path == client_workload:
                    python_client.append(databento_client_rate(port, dataset, records[path]))
                    continue
                plain.append(plain_client_rate(port, dataset, records[path]))
                start_clean(output_dir)
                live.append(ingest_rate(book_live_once(stack, port, dataset)))
                start_clean(output_dir)
                replayed.append(ingest_rate(replay_once(stack, path.name)))
    shares = [100 * booked / tcp for booked, tcp in zip(live, replayed, strict=True)]
    client_records = f"{records[client_workload]:,} records"
    return [
        figure("gateway to a plain DBN-reading client", "records/s", plain, goal=">= 3,000,000"),
        figure(f"gateway to databento.Live with a callback ({client_records})", "records/s", python_client),
        figure("receiver booking from the gateway", "records/s", live),
        figure("receiver booking from the gateway, share of the TCP replay", "%", shares, goal=">= 90"),
    ]
