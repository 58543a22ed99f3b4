"""End to end: sender and receiver as separate processes over loopback TCP, as fast as possible.

The rate is records / the receiver's elapsed time from the first record received to the last one applied
(both processes share the machine's monotonic clock; the first frame's transit is the only part left out).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx

from bench.load import READERS, live_load, read_load
from bench.measure import Figure, figure
from obm_shared.framing import FrameEncoder
from obm_shared.messages import Accepted, Challenge
from orchestrator.book_reads import MAX_BOOK_DEPTH
from receiver.run_output import RUN_FILES
from scripts.local_stack import LocalStack, free_port, local_services

RUN_TIMEOUT_SECONDS = 600
STATUS_POLL_SECONDS = 0.1
LOAD_READY_TIMEOUT_SECONDS = 60


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


@contextmanager
def pipeline(
    data_dir: Path,
    output_enabled: bool,
    orchestrator: bool = False,
    recording_enabled: bool = True,
    gateway: tuple[int, str] | None = None,
) -> Iterator[tuple[LocalStack, Path]]:
    """A receiver and a sender (and the orchestrator) on loopback; yields the stack and the receiver's
    output folder. ``gateway`` (port, API key) opens the sender's live gateway, which the receiver may book."""
    ports = {"receiver": free_port(), "sender": free_port(), "orchestrator": free_port()}
    ingest = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        services = {
            "receiver": {
                "RECEIVER_INGEST_PORT": ingest,
                "RECEIVER_OUTPUT_ENABLED": output_enabled,
                "RECEIVER_RECORDING_ENABLED": recording_enabled,
                "RECEIVER_OUTPUT_DIR": Path(scratch) / "output",
                "RECEIVER_LOG_LEVEL": "WARNING",
            },
            "sender": {
                "SENDER_DATA_DIR": data_dir,
                "SENDER_RECEIVER_PORT": ingest,
                "SENDER_LOG_LEVEL": "WARNING",
            },
        }
        if gateway is not None:
            port, key = gateway
            services["sender"] |= {"SENDER_GATEWAY_PORT": port, "SENDER_GATEWAY_API_KEYS": key}
            services["receiver"]["RECEIVER_LIVE_GATEWAYS"] = f"127.0.0.1:{port}"
        if orchestrator:
            services["orchestrator"] = {
                "ORCHESTRATOR_SENDER_URL": f"http://127.0.0.1:{ports['sender']}",
                "ORCHESTRATOR_RECEIVER_URL": f"http://127.0.0.1:{ports['receiver']}",
                "ORCHESTRATOR_LOG_LEVEL": "WARNING",
            }
        with local_services(services, Path(scratch), ports) as stack:
            yield stack, Path(scratch) / "output"


def replay_once(stack: LocalStack, file_name: str) -> dict[str, Any]:
    """Stream one file as fast as possible; returns the receiver's final run status.

    One client for the whole replay, polling at a modest pace: this process's CPU is taken from the receiver."""
    with httpx.Client(timeout=10) as client:
        client.post(f"{stack.urls['receiver']}/start-processing", json={}).raise_for_status()
        client.post(
            f"{stack.urls['sender']}/start-streaming", json={"file": file_name}, timeout=60
        ).raise_for_status()
        return wait_for_run(client, stack, file_name)


def wait_for_run(client: httpx.Client, stack: LocalStack, file_name: str) -> dict[str, Any]:
    """The receiver's run status once the run is over; raises unless it is done with every record accounted."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        run: dict[str, Any] = client.get(f"{stack.urls['receiver']}/status").json()["run"]
        if run["state"] in ("done", "failed", "stopped"):
            if run["state"] != "done" or not run["accounted"]:
                raise RuntimeError(f"replay of {file_name} did not complete cleanly: {run}")
            return run
        time.sleep(STATUS_POLL_SECONDS)
    raise RuntimeError(f"replay of {file_name} did not finish in {RUN_TIMEOUT_SECONDS} s")


def ingest_rate(run: dict[str, Any]) -> float:
    """Records/s of a finished run, from the receiver's own count and elapsed time."""
    return float(run["accounting"]["records"] / run["elapsed_seconds"])


def start_clean(output_dir: Path) -> None:
    """Runs are independent: the previous runs' files go (lines, recordings, checkpoints: a bench's runs would
    fill the disk), and what the kernel still has to write of them is written now, not during the next run."""
    for pattern in RUN_FILES:
        for old in output_dir.glob(pattern):
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink()
    os.sync()


def end_to_end(workload: Path, output_enabled: bool, runs: int) -> tuple[Figure, float]:
    """Records/s end to end over ``runs`` replays, and the receiver's peak RSS in MB."""
    rates = []
    with pipeline(workload.parent, output_enabled) as (stack, output_dir):
        for _ in range(runs):
            start_clean(output_dir)
            run = replay_once(stack, workload.name)
            if output_enabled and run["output_lines"] != run["events"]:
                raise RuntimeError(f"event lines lost: {run['output_lines']} of {run['events']}")
            rates.append(ingest_rate(run))
        rss = peak_rss_mb(stack.processes["receiver"].pid)
    label = "end to end, JSON output on" if output_enabled else "end to end"
    return figure(label, "records/s", rates), rss


def rss_mb(pid: int) -> float:
    """Resident memory of a process now (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def book_paths(orchestrator_url: str) -> list[str]:
    """``GET /api/order-book`` at every depth from 1 to ``MAX_BOOK_DEPTH``, for all books, each instrument and
    each of its publishers, with and without the per-publisher books: the reads many different pages make."""
    answer = httpx.get(f"{orchestrator_url}/api/order-book", params={"depth": 1}, timeout=10).json()
    scopes = [""]
    for instrument in answer["instruments"]:
        scopes.append(f"&instrument_id={instrument['instrument_id']}")
        scopes += [
            f"&instrument_id={instrument['instrument_id']}&publisher_id={publisher}"
            for publisher in instrument["publishers"]
        ]
    return [
        f"/api/order-book?depth={depth}{scope}&per_publisher={per_publisher}"
        for depth in range(1, MAX_BOOK_DEPTH + 1)
        for scope in scopes
        for per_publisher in ("true", "false")
    ]


def reads_under_load(workload: Path, runs: int) -> list[Figure]:
    """``GET /api/order-book`` by 100 clients, each read at a random depth (1 to 1000) of a random book, and
    the live feed to 100 WebSockets, both through the orchestrator, while the receiver ingests at full speed;
    the drop is against a replay with no readers, and the orchestrator's memory is taken before and after.
    Each load runs in a process of its own, as real clients would, not sharing this one's GIL, and the
    loaded replay starts once both have connected (see :mod:`bench.load`)."""
    p50s, p99s, drops, frame_rates, rss_before, rss_after = [], [], [], [], [], []
    errors: list[float] = []
    not_yet: list[float] = []
    spawn = multiprocessing.get_context("spawn")
    with (
        pipeline(workload.parent, output_enabled=False, orchestrator=True) as (stack, _),
        spawn.Manager() as manager,
        ProcessPoolExecutor(max_workers=2, mp_context=spawn) as load_processes,
    ):
        orchestrator_url = stack.urls["orchestrator"]
        live_url = orchestrator_url.replace("http://", "ws://") + "/api/live"
        orchestrator_pid = stack.processes["orchestrator"].pid
        for _ in range(runs):
            quiet = replay_once(stack, workload.name)
            quiet_rate = ingest_rate(quiet)
            paths = book_paths(orchestrator_url)  # the books of the replay just made: the loaded one has them
            go, stop, reads_ready, live_ready = (manager.Event() for _ in range(4))
            reads = load_processes.submit(read_load, orchestrator_url, paths, reads_ready, go, stop)
            live = load_processes.submit(live_load, live_url, live_ready, go, stop)
            try:
                for load, ready in ((reads, reads_ready), (live, live_ready)):
                    if not ready.wait(LOAD_READY_TIMEOUT_SECONDS):
                        if load.done():
                            load.result()  # raises what stopped it
                        raise RuntimeError(f"a load did not connect in {LOAD_READY_TIMEOUT_SECONDS} s")
                rss_before.append(rss_mb(orchestrator_pid))
                go.set()
                loaded = replay_once(stack, workload.name)
            finally:
                stop.set()
            (latencies, failed), frames = reads.result(), live.result()
            rss_after.append(rss_mb(orchestrator_pid))
            loaded_rate = ingest_rate(loaded)
            quantiles = statistics.quantiles(latencies, n=100)
            p50s.append(quantiles[49])
            p99s.append(quantiles[98])
            # the loaded replay starts a new run: until a book's first records arrive, reads of it are refused
            not_yet.append(failed.count(HTTPStatus.NOT_FOUND))
            errors.append(len(failed) - not_yet[-1])
            drops.append(100 * (1 - loaded_rate / quiet_rate))
            frame_rates.append(statistics.median(frames) / loaded["elapsed_seconds"])
    reads_name = f"GET /api/order-book (depth 1-{MAX_BOOK_DEPTH}, any book), {READERS} clients at 10/s"
    return [
        figure(f"{reads_name}: p50", "ms", p50s),
        figure(f"{reads_name}: p99", "ms", p99s),
        figure(f"{reads_name}: errors (not 200, nor 404)", "answers", errors),
        figure(f"{reads_name}: 404, the book not yet in the new run", "answers", not_yet),
        figure("orchestrator RSS when the reads start", "MB", rss_before),
        figure("orchestrator RSS when the replay under reads ends", "MB", rss_after),
        figure("ingest rate drop under those reads", "%", drops),
        figure(f"live frames/s to each of {READERS} WebSockets", "frames/s", frame_rates),
    ]


def _discard_server() -> tuple[int, threading.Thread]:
    """A TCP sink that admits the stream as a receiver would (challenge, then accepted, the proof unchecked:
    the sender has no token here) and drops everything, so the sender is measured alone."""
    server = socket.create_server(("127.0.0.1", 0))
    port = int(server.getsockname()[1])
    encoder = FrameEncoder()

    def serve() -> None:
        with server:
            connection, _ = server.accept()
            with connection:
                connection.sendall(encoder.encode(Challenge(nonce=b"bench")) + encoder.encode(Accepted()))
                while connection.recv(1 << 20):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


def sender_peak_rss(data_dir: Path, file_name: str) -> float:
    """Peak RSS (MB) of a fresh sender process streaming ``file_name`` to a sink."""
    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        sink_port, sink = _discard_server()
        sender = {
            "SENDER_DATA_DIR": data_dir,
            "SENDER_LOG_LEVEL": "WARNING",
            "SENDER_ALLOWED_RECEIVERS": f"127.0.0.1:{sink_port}",
        }
        with local_services({"sender": sender}, Path(scratch), {"sender": port}) as stack:
            url = stack.urls["sender"]
            body = {"file": file_name, "receiver_host": "127.0.0.1", "receiver_port": sink_port}
            httpx.post(f"{url}/start-streaming", json=body, timeout=600).raise_for_status()
            sink.join(RUN_TIMEOUT_SECONDS)
            status = httpx.get(f"{url}/status", timeout=10).json()["run"]
            if (
                status["state"] not in ("done", "failed")
                and status["records_sent"] != status["records_total"]
            ):
                raise RuntimeError(f"sender did not finish {file_name}: {status}")
            return peak_rss_mb(stack.processes["sender"].pid)
