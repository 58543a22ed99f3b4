"""The receiver's output file under faults, with the receiver and the sender as real processes: a full disk
fails the run with the reason and leaves a file marked incomplete; connections and starts without a stream
write no file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.local_stack import free_port, local_services
from tests.conftest import CLX5, DATA_DIR, real_file

pytestmark = pytest.mark.integration

RUN_TIMEOUT_SECONDS = 60
SMALL_VOLUME = "5m"
"""Far less than CLX5's event lines need, so the disk fills mid-run."""
ENDED = ("done", "stopped", "failed")


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of SMALL_VOLUME mounted for the test (needs root, as in CI); unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the tests as root)")
    volume = tmp_path / "output"
    volume.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_VOLUME}", "tmpfs", str(volume)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield volume
    finally:
        subprocess.run(["umount", "--lazy", str(volume)], check=True)


@contextmanager
def receiver_and_sender(output_dir: Path, logs_dir: Path) -> Iterator[tuple[str, str, int]]:
    """A receiver writing into ``output_dir`` and a sender of the real data folder: their URLs and ingest port."""
    ports = {name: free_port() for name in ("receiver", "sender", "ingest")}
    services: dict[str, dict[str, object]] = {
        "receiver": {
            "RECEIVER_INGEST_PORT": ports["ingest"],
            "RECEIVER_OUTPUT_DIR": output_dir,
            "RECEIVER_RECORDING_ENABLED": False,  # the lines alone fill the volume
        },
        "sender": {"SENDER_DATA_DIR": DATA_DIR.resolve(), "SENDER_RECEIVER_PORT": ports["ingest"]},
    }
    logs_dir.mkdir(exist_ok=True)
    with local_services(services, logs_dir, ports) as running:
        yield running.urls["receiver"], running.urls["sender"], ports["ingest"]


def wait_for_run_end(receiver: str, sender: str) -> dict[str, Any]:
    """The receiver's run once both services have finished with it."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        run = httpx.get(f"{receiver}/status", timeout=5).json()["run"]
        sender_state = httpx.get(f"{sender}/status", timeout=5).json()["state"]
        if run is not None and run["state"] in ENDED and sender_state != "streaming":
            return dict(run)
        time.sleep(0.1)
    raise AssertionError(
        f"the run did not end within {RUN_TIMEOUT_SECONDS} s: receiver {run}, sender {sender_state}"
    )


def error_lines(log: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line["level"] == "error"]


@pytest.mark.realdata
def test_a_full_disk_fails_the_run_and_leaves_a_file_marked_incomplete(
    small_volume: Path, tmp_path: Path
) -> None:
    real_file(CLX5)
    with receiver_and_sender(small_volume, tmp_path / "logs") as (receiver, sender, _):
        started = httpx.post(f"{sender}/start-streaming", json={"file": CLX5}, timeout=10)
        assert started.status_code == 200, started.text
        run = wait_for_run_end(receiver, sender)
        assert run["state"] == "failed", (
            f"a run whose output could not be written ended {run['state']}: {run}"
        )
        assert run["last_error"].startswith("output: writing "), run["last_error"]
        assert run["last_error"].endswith(": No space left on device"), run["last_error"]

        files = sorted(path.name for path in small_volume.iterdir())
        assert files == [f"{run['run_id']}.incomplete.jsonl"], (
            f"the cut file is not marked incomplete: {files}"
        )
        written = (small_volume / files[0]).read_bytes()
        assert written.endswith(b"\n"), "the incomplete file ends mid-line"
        lines = [json.loads(line) for line in written.splitlines()]
        assert 0 < len(lines) == run["output_lines"] < run["events"]

        last = httpx.get(
            f"{receiver}/events", params={"start": len(lines) - 1, "limit": 10}, timeout=5
        ).json()
        assert last["total"] == len(lines) and last["events"] == lines[-1:], (
            "the page served is not what was written"
        )
        assert last["output_error"] == run["last_error"].removeprefix("output: ")

    logged = [
        line for line in error_lines(tmp_path / "logs" / "receiver.log") if "No space left" in str(line)
    ]
    assert logged, "the write error was not logged at error level"


def test_starts_and_connections_without_a_stream_write_no_file(tmp_path: Path) -> None:
    output_dir = tmp_path / "output"
    with receiver_and_sender(output_dir, tmp_path / "logs") as (receiver, _, ingest_port):
        for _ in range(50):
            assert httpx.post(f"{receiver}/start-processing", json={}, timeout=5).status_code == 200
        for index in range(50):
            with socket.create_connection(("127.0.0.1", ingest_port), timeout=5) as junk:
                junk.sendall(b"hello %d\r\n" % index)
                junk.shutdown(socket.SHUT_WR)
                while junk.recv(1 << 16):  # until the receiver closes it
                    pass
        assert httpx.get(f"{receiver}/status", timeout=5).status_code == 200
    written = sorted(output_dir.iterdir()) if output_dir.exists() else []
    assert written == [], f"connections and starts without a stream wrote {len(written)} files"
