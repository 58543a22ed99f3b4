"""The sender's live gateway, driven by Databento's own Python client (``databento.Live``) and a raw socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import databento
import databento_dbn
import httpx
import numpy as np
import pytest

from obm_shared.dbn_file import instrument_symbols, open_mbo_file
from obm_shared.limits import MIN_SPEED
from obm_shared.live_protocol import (
    AuthRequest,
    SessionStart,
    SubscriptionRequest,
    cram_response,
    encode_line,
)
from obm_shared.records import MBO_DTYPE, MBO_RECORD_SIZE, MboArray
from scripts.local_stack import free_port, local_services
from tests.conftest import DATA_DIR

KEY = "db-" + "Gw7" * 9 + "xy"
CLX5 = DATA_DIR / "CLX5" / "CLX5_mbo.dbn"
ESM4 = DATA_DIR / "ESM4" / "esm4-glbx-mdp3-20240508.mbo.dbn.zst"
DBEQ = DATA_DIR / "DBEQ" / "dbeq-basic-20240403.mbo.dbn.zst"
SESSION_SECONDS = 30.0
"""Longest any replay here may take; block_for_close returns well before on a working gateway."""
ERROR_SECONDS = 1.0
SLOW_BATCH_RECORDS = 16_384
SLOW_RCVBUF_BYTES = 64 * 1024
MAX_SESSIONS = 2

pytestmark = pytest.mark.skipif(
    not all(path.is_file() for path in (CLX5, ESM4, DBEQ)),
    reason=f"real DBN files not found under {DATA_DIR}",
)


@dataclass(frozen=True)
class Gateway:
    port: int
    url: str
    pid: int


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A sender whose data folder holds the three real files, its gateway on a free port with one key."""
    root = tmp_path_factory.mktemp("gateway")
    data_dir, logs_dir = root / "data", root / "logs"
    data_dir.mkdir()
    logs_dir.mkdir()
    for path in (CLX5, ESM4, DBEQ):
        (data_dir / path.name).symlink_to(path.resolve())
    ports = {"sender": free_port()}
    gateway_port = free_port()
    environment = {
        "SENDER_DATA_DIR": data_dir,
        "SENDER_GATEWAY_PORT": gateway_port,
        "SENDER_GATEWAY_API_KEYS": KEY,
        "SENDER_GATEWAY_RECORDS_PER_BATCH": SLOW_BATCH_RECORDS,
        "SENDER_GATEWAY_MAX_SESSIONS": MAX_SESSIONS,
    }
    with local_services({"sender": environment}, logs_dir, ports) as running:
        url = running.urls["sender"]
        # the catalog reads each file once; done here so the first session's timing is the gateway's own
        httpx.get(f"{url}/files", timeout=SESSION_SECONDS).raise_for_status()
        yield Gateway(gateway_port, url, running.processes["sender"].pid)


@dataclass
class Received:
    """What one databento.Live session delivered."""

    mbo: list[bytes] = field(default_factory=list)
    others: list[databento_dbn.DBNRecord] = field(default_factory=list)
    seconds: float = 0.0
    symbology: dict[int, str | int] = field(default_factory=dict)

    def records(self) -> MboArray:
        return np.frombuffer(b"".join(self.mbo), dtype=MBO_DTYPE)

    def add(self, record: databento_dbn.DBNRecord) -> None:
        if isinstance(record, databento_dbn.MBOMsg):
            self.mbo.append(bytes(record))
        else:
            self.others.append(record)


def live(gateway: Gateway, key: str = KEY) -> databento.Live:
    return databento.Live(key=key, gateway="127.0.0.1", port=gateway.port)


def subscribed(
    gateway: Gateway, dataset: str, symbols: str | list[str], **options: object
) -> tuple[databento.Live, Received]:
    client = live(gateway)
    received = Received()
    client.subscribe(dataset=dataset, schema="mbo", symbols=symbols, **options)  # type: ignore[arg-type]
    client.add_callback(received.add)
    return client, received


def replay(client: databento.Live, received: Received) -> Received:
    """Start the session and wait for the gateway to close it."""
    began = time.perf_counter()
    client.start()
    client.block_for_close(timeout=SESSION_SECONDS)
    received.seconds = time.perf_counter() - began
    received.symbology = dict(client.symbology_map)
    return received


def file_records(path: Path) -> MboArray:
    """The file's MBO records as Databento's own reader gives them."""
    records: MboArray = databento.DBNStore.from_file(path).to_ndarray()
    return records


def assert_same_records(got: MboArray, expected: MboArray, what: str) -> None:
    assert len(got) == len(expected), f"{what}: {len(got)} records arrived, the file has {len(expected)}"
    for name in MBO_DTYPE.names or ():
        differs = np.flatnonzero(got[name] != expected[name])
        assert not len(differs), (
            f"{what}: record {differs[0]} field {name} is {got[name][differs[0]]!r},"
            f" the file's is {expected[name][differs[0]]!r}"
        )


def assert_ended_cleanly(received: Received, what: str) -> None:
    assert received.seconds < SESSION_SECONDS, f"{what}: block_for_close did not return at the end"
    last = received.others[-1]
    assert isinstance(last, databento_dbn.SystemMsg), (
        f"{what}: the last record is {last!r}, not the end of replay"
    )
    assert last.code == databento_dbn.SystemCode.REPLAY_COMPLETED


@pytest.mark.parametrize(
    ("path", "dataset", "symbols"),
    [(CLX5, "GLBX.MDP3", ["CLX5"]), (ESM4, "GLBX.MDP3", ["ESM4"]), (DBEQ, "DBEQ.BASIC", "ALL_SYMBOLS")],
    ids=["CLX5", "ESM4-dbn-v1", "DBEQ-all-symbols"],
)
def test_a_file_arrives_record_for_record(
    gateway: Gateway, path: Path, dataset: str, symbols: str | list[str]
) -> None:
    received = replay(*subscribed(gateway, dataset, symbols, start=0))
    assert_same_records(received.records(), file_records(path), path.name)
    assert received.symbology == instrument_symbols(open_mbo_file(path).dbn_metadata)
    mappings = [record for record in received.others if isinstance(record, databento_dbn.SymbolMappingMsg)]
    assert {(m.instrument_id, m.stype_out_symbol) for m in mappings} == set(received.symbology.items())
    assert_ended_cleanly(received, path.name)


def test_start_in_the_middle_starts_at_the_first_record_received_then(gateway: Gateway) -> None:
    expected = file_records(CLX5)
    ts_recv = expected["ts_recv"]
    middle = len(expected) // 2
    start = int(ts_recv[middle]) - 1
    received = replay(*subscribed(gateway, "GLBX.MDP3", ["CLX5"], start=start))
    assert_same_records(received.records(), expected[ts_recv >= start], "CLX5 from its middle")
    assert received.records()["ts_recv"][0] == ts_recv[ts_recv >= start][0]
    assert_ended_cleanly(received, "CLX5 from its middle")


def test_a_wrong_key_is_refused_with_the_reason(gateway: Gateway) -> None:
    began = time.perf_counter()
    with pytest.raises(databento.BentoError, match="unknown API key"):
        live(gateway, key="db-" + "N" * 29).subscribe(dataset="GLBX.MDP3", schema="mbo", symbols=["CLX5"])
    assert time.perf_counter() - began < ERROR_SECONDS


def test_an_unknown_dataset_is_refused_naming_the_offered_ones(gateway: Gateway) -> None:
    began = time.perf_counter()
    with pytest.raises(databento.BentoError, match=r"unknown dataset 'XNAS.ITCH'.*DBEQ.BASIC, GLBX.MDP3"):
        live(gateway).subscribe(dataset="XNAS.ITCH", schema="mbo", symbols=["AAPL"])
    assert time.perf_counter() - began < ERROR_SECONDS


@pytest.mark.parametrize(
    ("schema", "symbols", "reason"),
    [
        ("mbo", ["NOPE"], "Failed to resolve raw_symbol symbol.*NOPE"),
        ("trades", ["CLX5"], "schema 'trades' is not offered.*'mbo'"),
    ],
    ids=["unknown-symbol", "other-schema"],
)
def test_a_bad_subscription_gets_an_error_record_the_client_raises(
    gateway: Gateway, schema: str, symbols: list[str], reason: str
) -> None:
    client = live(gateway)
    client.subscribe(dataset="GLBX.MDP3", schema=schema, symbols=symbols)
    began = time.perf_counter()
    client.start()
    with pytest.raises(databento.BentoError, match=reason):
        client.block_for_close(timeout=SESSION_SECONDS)
    assert time.perf_counter() - began < ERROR_SECONDS


def test_two_sessions_at_once_both_complete(gateway: Gateway) -> None:
    first, first_received = subscribed(gateway, "DBEQ.BASIC", "ALL_SYMBOLS")
    second, second_received = subscribed(gateway, "GLBX.MDP3", ["CLX5"])
    first.start()
    second.start()
    for client, received, path in ((first, first_received, DBEQ), (second, second_received, CLX5)):
        began = time.perf_counter()
        client.block_for_close(timeout=SESSION_SECONDS)
        received.seconds = time.perf_counter() - began
        assert_same_records(received.records(), file_records(path), f"{path.name} beside another session")
        assert_ended_cleanly(received, path.name)


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def _read_line(sock: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        piece = sock.recv(1)
        assert piece, f"the gateway closed the connection after {line!r}"
        line += piece
    return line


def _sessions(gateway: Gateway) -> list[dict[str, object]]:
    sessions: list[dict[str, object]] = httpx.get(f"{gateway.url}/gateway/sessions").json()["sessions"]
    return sessions


@contextmanager
def _raw_session(
    gateway: Gateway, dataset: str, symbols: str, heartbeat_interval_s: int | None = None
) -> Iterator[socket.socket]:
    """A started session on a plain socket with a small receive buffer, the way a slow client's would be."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF_BYTES)
        sock.connect(("127.0.0.1", gateway.port))
        sock.settimeout(SESSION_SECONDS)
        _read_line(sock)
        cram = _read_line(sock).decode().strip().removeprefix("cram=")
        auth = AuthRequest(cram_response(cram, KEY), dataset, heartbeat_interval_s=heartbeat_interval_s)
        sock.sendall(encode_line(auth))
        assert _read_line(sock).startswith(b"success=1")
        subscription = SubscriptionRequest(schema="mbo", stype_in="raw_symbol", symbols=symbols)
        sock.sendall(encode_line(subscription) + encode_line(SessionStart()))
        yield sock


def _streaming_session(gateway: Gateway) -> dict[str, object]:
    (session,) = [s for s in _sessions(gateway) if s["state"] == "streaming"]
    return session


def test_a_slow_reader_holds_the_sender_to_a_bounded_backlog_and_can_be_stopped(gateway: Gateway) -> None:
    total = len(file_records(DBEQ))
    rss_before = _rss_bytes(gateway.pid)
    with _raw_session(gateway, "DBEQ.BASIC", "ALL_SYMBOLS") as sock:
        received_bytes = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            received_bytes += len(sock.recv(16 * 1024))
            time.sleep(0.02)
        session = _streaming_session(gateway)
        sent = int(str(session["records_sent"]))
        in_flight = sent - received_bytes // MBO_RECORD_SIZE
        # what a slow reader may have waiting for it: one batch and the two sockets' buffers, never the file
        assert in_flight < SLOW_BATCH_RECORDS + 120_000, f"{in_flight} records sent but not yet read"
        assert sent < total // 2, (
            f"{sent} of {total} records sent to a reader that took {received_bytes} bytes"
        )
        rss_growth = _rss_bytes(gateway.pid) - rss_before
        assert rss_growth < 64 * 2**20, f"the sender grew by {rss_growth / 2**20:.0f} MiB for one slow reader"

        stop = httpx.post(f"{gateway.url}/gateway/sessions/{session['id']}/stop", json={})
        assert stop.status_code == 200, stop.text
        while sock.recv(1 << 20):
            pass
    assert _state(gateway, session) == "stopped"


def test_a_paced_session_sends_heartbeats_when_quiet(gateway: Gateway) -> None:
    decoder = databento_dbn.DBNDecoder()
    heartbeats: list[databento_dbn.SystemMsg] = []
    with _raw_session(gateway, "DBEQ.BASIC", "ALL_SYMBOLS", heartbeat_interval_s=1) as sock:
        # the reader holds back, so the session is still streaming when its speed changes
        time.sleep(0.3)
        session = _streaming_session(gateway)
        slowest = {"speed": MIN_SPEED}
        paced = httpx.post(f"{gateway.url}/gateway/sessions/{session['id']}/speed", json=slowest)
        assert paced.status_code == 200 and paced.json()["speed"] == MIN_SPEED, paced.text
        sock.settimeout(0.1)
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline and len(heartbeats) < 2:
            with suppress(TimeoutError):
                decoder.write(sock.recv(1 << 20))
            for record in decoder.decode():
                if isinstance(record, databento_dbn.SystemMsg) and record.is_heartbeat():
                    heartbeats.append(record)
    assert len(heartbeats) >= 2, "no heartbeat within 3.5 s of a session that went quiet (interval 1 s)"
    deadline = time.monotonic() + ERROR_SECONDS
    while time.monotonic() < deadline and _state(gateway, session) == "streaming":
        time.sleep(0.05)
    assert _state(gateway, session) == "failed", "a paced session whose client left is still streaming"


def _state(gateway: Gateway, session: dict[str, object]) -> object:
    (listed,) = [s for s in _sessions(gateway) if s["id"] == session["id"]]
    return listed["state"]


def test_a_session_beyond_the_limit_is_refused_with_the_reason(gateway: Gateway) -> None:
    with (
        _raw_session(gateway, "DBEQ.BASIC", "ALL_SYMBOLS"),
        _raw_session(gateway, "DBEQ.BASIC", "ALL_SYMBOLS"),
    ):
        began = time.perf_counter()
        with pytest.raises(databento.BentoError, match=f"too many sessions.*at most {MAX_SESSIONS}"):
            live(gateway).subscribe(dataset="GLBX.MDP3", schema="mbo", symbols=["CLX5"])
        assert time.perf_counter() - began < ERROR_SECONDS
    deadline = time.monotonic() + ERROR_SECONDS
    while streaming := [session for session in _sessions(gateway) if session["state"] == "streaming"]:
        assert time.monotonic() < deadline, f"sessions whose clients left are still streaming: {streaming}"
        time.sleep(0.05)
    replay(*subscribed(gateway, "GLBX.MDP3", ["CLX5"]))
