"""The ingest port under bad clients, and the sender's stream thread under faults, with real processes.

The receiver and the sender run as processes sharing an API token, with short handshake and stall limits;
a test plays the bad client on a raw socket, or drives the sender's streamer in-process.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from obm_shared.auth import ingest_proof
from obm_shared.framing import FrameEncoder, read_reply
from obm_shared.messages import (
    PROTOCOL_VERSION,
    Accepted,
    Challenge,
    EndOfStream,
    Handshake,
    Heartbeat,
    RecordBatch,
    Refused,
    Reply,
)
from obm_shared.records import MBO_RECORD_SIZE
from scripts.local_stack import free_port, local_services
from sender.catalog import Catalog
from sender.core.config import Settings as SenderSettings
from sender.streamer import Streamer, StreamJob, StreamState
from tests.unit.test_wire import METADATA

pytestmark = pytest.mark.integration

HANDSHAKE_TIMEOUT_SECONDS = 1.0
STALL_TIMEOUT_SECONDS = 2.5
"""Longer than the sender's heartbeat interval, so a paced replay is never taken for a stall."""
DEMO_RECORDS = 20_000


@dataclass(frozen=True)
class Faults:
    receiver: str
    sender: str
    ingest_port: int
    token: str
    data_dir: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    from demo_market.writer import write_demo_file

    root = tmp_path_factory.mktemp("ingest-faults")
    data_dir, logs_dir = root / "data", root / "logs"
    (data_dir / "demo").mkdir(parents=True)
    logs_dir.mkdir()
    write_demo_file(data_dir / "demo" / "demo.mbo.dbn", records=DEMO_RECORDS)
    token = secrets.token_urlsafe(32)
    ports = {name: free_port() for name in ("receiver", "sender", "ingest")}
    services = {
        "receiver": {
            "RECEIVER_INGEST_PORT": ports["ingest"],
            "RECEIVER_OUTPUT_DIR": root / "output",
            "RECEIVER_HANDSHAKE_TIMEOUT_SECONDS": HANDSHAKE_TIMEOUT_SECONDS,
            "RECEIVER_STALL_TIMEOUT_SECONDS": STALL_TIMEOUT_SECONDS,
            "OBM_API_TOKEN": token,
        },
        "sender": {
            "SENDER_DATA_DIR": data_dir,
            "SENDER_RECEIVER_PORT": ports["ingest"],
            "OBM_API_TOKEN": token,
        },
    }
    with local_services(services, logs_dir, ports) as running:
        yield Faults(running.urls["receiver"], running.urls["sender"], ports["ingest"], token, data_dir)


def receiver_status(faults: Faults) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{faults.receiver}/status", timeout=5).json()
    return answer


def books(faults: Faults) -> Any:
    return httpx.get(f"{faults.receiver}/order-book", params={"depth": 3}, timeout=5).json()


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (answer := check()):
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        time.sleep(0.02)
    return answer


def replay(faults: Faults) -> dict[str, Any]:
    """One full-speed replay of the demo file through the HTTP APIs; the receiver's run when both are over."""
    httpx.post(
        f"{faults.receiver}/start-processing", json={}, headers=faults.auth, timeout=5
    ).raise_for_status()
    started = httpx.post(f"{faults.sender}/start-streaming", json={}, headers=faults.auth, timeout=10)
    assert started.status_code == 200, started.text

    def over() -> dict[str, Any] | None:
        sender = httpx.get(f"{faults.sender}/status", timeout=5).json()
        run = receiver_status(faults)["run"]
        ended = sender["state"] != "streaming" and run["state"] in ("done", "stopped", "failed")
        return {"sender": sender["run"], "receiver": run} if ended else None

    runs: dict[str, Any] = wait_for(over, 60, "the end of the replay")
    return runs


def assert_accounted_exactly(runs: dict[str, Any]) -> None:
    sender, receiver = runs["sender"], runs["receiver"]
    assert sender["state"] == "done", sender
    assert receiver["state"] == "done", receiver
    assert receiver["run_id"] == sender["run_id"], "one run id names the replay in both services"
    accounting = receiver["accounting"]
    assert sender["records_sent"] == receiver["records_received"] == DEMO_RECORDS
    applied = accounting["applied"] + accounting["ignored"] + sum(accounting["skipped"].values())
    assert applied == sender["records_sent"], f"records sent {sender['records_sent']}, accounted {applied}"
    assert receiver["accounted"] is True


class Client:
    """A raw ingest connection, as a test plays it."""

    def __init__(self, faults: Faults) -> None:
        self.sock = socket.create_connection(("127.0.0.1", faults.ingest_port), timeout=10)
        self.encoder = FrameEncoder()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def recv_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def reply(self) -> Reply:
        return read_reply(self.recv_exactly)

    def challenge(self) -> bytes:
        challenge = self.reply()
        assert isinstance(challenge, Challenge), challenge
        return challenge.nonce

    def hello(self, token: str, run_id: str = "faultsrun0001") -> Reply:
        """Answer the challenge with a proof under ``token``; the receiver's answer."""
        proof = ingest_proof(SecretStr(token), self.challenge())
        self.sock.sendall(self.encoder.encode(Handshake(PROTOCOL_VERSION, METADATA, run_id, proof)))
        return self.reply()

    def closed_within(self, seconds: float) -> float:
        """Seconds until the receiver closes the connection (reading and dropping what it says)."""
        started = time.monotonic()
        self.sock.settimeout(seconds)
        while self.sock.recv(4096):
            pass
        return time.monotonic() - started


def counts(faults: Faults) -> tuple[dict[str, int], dict[str, int]]:
    status = receiver_status(faults)
    return status["rejected_connections"], status["protocol_errors"]


def grew(before: dict[str, int], after: dict[str, int], key: str) -> int:
    return after.get(key, 0) - before.get(key, 0)


# --- the ingest port -----------------------------------------------------------------------------------------


def test_an_idle_client_does_not_block_the_next_stream(faults: Faults) -> None:
    rejected, _ = counts(faults)
    with Client(faults) as idle:
        idle.challenge()
        assert not receiver_status(faults)["run"] or receiver_status(faults)["state"] != "receiving"
        assert_accounted_exactly(replay(faults))
        seconds = idle.closed_within(HANDSHAKE_TIMEOUT_SECONDS + 2)
    assert seconds <= HANDSHAKE_TIMEOUT_SECONDS + 0.5, f"an idle client held on for {seconds:.1f} s"
    assert grew(rejected, counts(faults)[0], "handshake_timeout") == 1


def test_a_one_byte_at_a_time_client_is_closed_at_the_handshake_deadline(faults: Faults) -> None:
    rejected, _ = counts(faults)
    frame = FrameEncoder().encode(Handshake(PROTOCOL_VERSION, METADATA, "slowrun", b""))
    with Client(faults) as slow:
        slow.challenge()
        started = time.monotonic()
        slow.sock.settimeout(0.1)
        closed = False
        for byte in frame:  # a byte every 0.2 s: each read is quick, the handshake never completes in time
            try:
                slow.sock.sendall(bytes([byte]))
                closed = slow.sock.recv(4096) == b""
            except TimeoutError:
                pass
            except ConnectionError:
                closed = True
            if closed:
                break
            time.sleep(0.2)
        took = time.monotonic() - started
    assert closed, "a client trickling bytes was never closed"
    assert took < HANDSHAKE_TIMEOUT_SECONDS + 0.5, f"closed after {took:.1f} s"
    assert grew(rejected, counts(faults)[0], "handshake_timeout") == 1


def test_junk_leaves_a_finished_run_and_its_books_as_they_were(faults: Faults) -> None:
    assert_accounted_exactly(replay(faults))
    before, book_before = receiver_status(faults), books(faults)
    with Client(faults) as junk:
        junk.challenge()
        junk.sock.sendall(b"\x00\x00\x00\x05hello")
        refused = junk.reply()
        junk.closed_within(5)
    assert isinstance(refused, Refused) and "malformed_frame" in refused.reason, refused
    after = receiver_status(faults)
    assert after["run"] == before["run"], "junk on the ingest port changed the finished run"
    assert books(faults) == book_before, "junk on the ingest port changed the books"
    assert grew(before["protocol_errors"], after["protocol_errors"], "malformed_frame") == 1
    assert grew(before["rejected_connections"], after["rejected_connections"], "protocol_error") == 1


def test_a_wrong_proof_is_refused_and_counted(faults: Faults) -> None:
    before = receiver_status(faults)
    with Client(faults) as impostor:
        refused = impostor.hello("not-the-token-" + secrets.token_hex(8))
        impostor.closed_within(5)
    assert refused == Refused(reason="authentication failed")
    after = receiver_status(faults)
    assert after["run"] == before["run"], "an unauthenticated handshake changed the run"
    assert grew(before["rejected_connections"], after["rejected_connections"], "unauthenticated") == 1


def test_a_stalled_stream_fails_and_frees_the_slot(faults: Faults) -> None:
    with Client(faults) as stalled:
        assert stalled.hello(faults.token, run_id="stalledrun") == Accepted()
        started = time.monotonic()
        run = wait_for(
            lambda: (run := receiver_status(faults)["run"])["state"] == "failed" and run,
            STALL_TIMEOUT_SECONDS + 2,
            "the stall",
        )
        took = time.monotonic() - started
    assert run["run_id"] == "stalledrun"
    assert run["last_error"] == f"stalled: no data for {STALL_TIMEOUT_SECONDS:g} s"
    assert STALL_TIMEOUT_SECONDS - 0.2 < took < STALL_TIMEOUT_SECONDS + 1, f"stall noticed after {took:.1f} s"
    assert_accounted_exactly(replay(faults))


def test_a_message_after_the_end_is_counted_and_noted(faults: Faults) -> None:
    with Client(faults) as late:
        assert late.hello(faults.token, run_id="laterun") == Accepted()
        late.sock.sendall(late.encoder.encode(EndOfStream(records_sent=0, batches_sent=0)))
        late.sock.sendall(late.encoder.encode(Heartbeat()))
        late.sock.shutdown(socket.SHUT_WR)
        late.closed_within(5)
    run = receiver_status(faults)["run"]
    assert (run["run_id"], run["state"]) == ("laterun", "done")
    assert run["protocol_errors"] == {"unexpected_message": 1}
    assert "after the end" in run["last_error"]


def test_records_that_are_not_mbo_are_a_protocol_error(faults: Faults) -> None:
    with Client(faults) as other:
        assert other.hello(faults.token, run_id="notmborun") == Accepted()
        other.sock.sendall(other.encoder.encode(RecordBatch(0, 0, bytes(MBO_RECORD_SIZE * 3))))
        other.closed_within(5)
    run = receiver_status(faults)["run"]
    assert (run["run_id"], run["state"]) == ("notmborun", "failed")
    assert run["protocol_errors"] == {"not_mbo": 1}
    assert run["accounting"]["records"] == 0, "a record of another schema must not reach a book"


# --- the sender's stream thread ------------------------------------------------------------------------------


def streamer(faults: Faults, token: str | None = None) -> tuple[Streamer, Catalog]:
    settings = SenderSettings(
        data_dir=faults.data_dir, receiver_port=faults.ingest_port, api_token=SecretStr(token or faults.token)
    )
    return Streamer(settings), Catalog(faults.data_dir)


def start(
    streamer: Streamer, catalog: Catalog, speed: float | None = None, host: str = "127.0.0.1"
) -> StreamJob:
    path = catalog.resolve("demo/demo.mbo.dbn")
    return streamer.start(catalog.describe(path), path, (host, streamer.settings.receiver_port), speed)


def ended(job: StreamJob, timeout: float = 30) -> StreamJob:
    wait_for(lambda: job.state != StreamState.STREAMING, timeout, f"the end of stream {job.run_id}")
    return job


def test_a_tiny_speed_fails_the_stream_and_the_next_start_works(faults: Faults) -> None:
    sender, catalog = streamer(faults)
    job = ended(start(sender, catalog, speed=1e-300))
    assert job.state == StreamState.FAILED
    assert (
        job.error
        == "stream failed after 0 records: ValueError('replay speed 1e-300 is outside 0.001 to 1e+06')"
    )
    assert ended(start(sender, catalog)).state == StreamState.DONE


def test_a_failing_pacer_fails_the_stream_and_the_next_start_works(
    faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    class BrokenPacer:
        def __init__(self, *_: object) -> None:
            raise RuntimeError("pacer broke")

    sender, catalog = streamer(faults)
    monkeypatch.setattr("sender.streamer.Pacer", BrokenPacer)
    job = ended(start(sender, catalog, speed=1.0))
    assert job.state == StreamState.FAILED
    assert job.error == "stream failed after 0 records: RuntimeError('pacer broke')"
    receiver_run = receiver_status(faults)["run"]
    assert receiver_run["run_id"] == job.run_id
    assert "pacer broke" in receiver_run["last_error"], "the receiver is told why the stream ended"
    monkeypatch.undo()
    assert ended(start(sender, catalog)).state == StreamState.DONE


def test_a_host_that_is_no_host_name_fails_the_stream(faults: Faults) -> None:
    sender, catalog = streamer(faults)
    job = ended(start(sender, catalog, host="a" * 300))
    assert (job.state, job.error) == (
        StreamState.FAILED,
        f"receiver at {'a' * 300}:{faults.ingest_port}: not a valid host name",
    )
    assert ended(start(sender, catalog)).state == StreamState.DONE


def test_a_refusing_receiver_is_a_clear_failure(faults: Faults) -> None:
    sender, catalog = streamer(faults, token="a-wrong-token-" + secrets.token_hex(8))
    job = ended(start(sender, catalog))
    assert (job.state, job.error) == (
        StreamState.FAILED,
        "receiver refused the stream: authentication failed",
    )


def test_two_concurrent_starts_start_one_stream(faults: Faults) -> None:
    sender, catalog = streamer(faults)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def one_start() -> None:
        barrier.wait()
        try:
            start(sender, catalog, speed=1.0)
            outcomes.append("started")
        except RuntimeError:
            outcomes.append("busy")

    threads = [threading.Thread(target=one_start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["busy", "started"]
    assert sender.stop() is True, "stop must say it stopped the running stream"
    assert sender.stop() is False, "a second stop stops nothing"
