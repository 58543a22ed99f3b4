"""The three services as local processes on loopback ports, the way a developer runs them without Docker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import DATA_DIR

DEMO_RECORDS = 60_000
STARTUP_SECONDS = 30


@dataclass(frozen=True)
class Stack:
    """URLs of the running services and the sender's data folder."""

    orchestrator: str
    sender: str
    receiver: str
    data_dir: Path
    output_dir: Path
    logs_dir: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/status", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url}/status did not answer within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Receiver, sender and orchestrator on free loopback ports; real data linked in as ``real/``."""
    from sender.demo_data import write_demo_file

    root = tmp_path_factory.mktemp("stack")
    data_dir, output_dir, logs_dir = root / "data", root / "output", root / "logs"
    for folder in (data_dir / "demo", output_dir, logs_dir):
        folder.mkdir(parents=True)
    if DATA_DIR.is_dir():
        (data_dir / "real").symlink_to(DATA_DIR.resolve(), target_is_directory=True)
    write_demo_file(data_dir / "demo" / "demo.mbo.dbn", records=DEMO_RECORDS)

    ports = {name: _free_port() for name in ("orchestrator", "sender", "receiver", "ingest")}
    urls = {name: f"http://127.0.0.1:{ports[name]}" for name in ("orchestrator", "sender", "receiver")}
    environments = {
        "receiver": {
            "RECEIVER_HTTP_PORT": ports["receiver"],
            "RECEIVER_INGEST_PORT": ports["ingest"],
            "RECEIVER_HOST": "127.0.0.1",
            "RECEIVER_OUTPUT_DIR": output_dir,
        },
        "sender": {
            "SENDER_HTTP_PORT": ports["sender"],
            "SENDER_HOST": "127.0.0.1",
            "SENDER_DATA_DIR": data_dir,
            "SENDER_RECEIVER_PORT": ports["ingest"],
        },
        "orchestrator": {
            "ORCHESTRATOR_HTTP_PORT": ports["orchestrator"],
            "ORCHESTRATOR_HOST": "127.0.0.1",
            "ORCHESTRATOR_SENDER_URL": urls["sender"],
            "ORCHESTRATOR_RECEIVER_URL": urls["receiver"],
            "ORCHESTRATOR_RECEIVER_INGEST_PORT": ports["ingest"],
        },
    }
    processes = []
    try:
        for name, extra in environments.items():
            log = logs_dir / f"{name}.log"
            env = {**os.environ, **{key: str(value) for key, value in extra.items()}}
            process = subprocess.Popen(
                [sys.executable, "-m", name], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
            )
            processes.append(process)
            _wait_until_up(urls[name], process, log)
        yield Stack(urls["orchestrator"], urls["sender"], urls["receiver"], data_dir, output_dir, logs_dir)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
