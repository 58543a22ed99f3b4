"""Start services as local processes on free loopback ports (for integration tests and benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

STARTUP_SECONDS = 30


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalStack:
    """Running service processes, their URLs and log files."""

    urls: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, token: str | None) -> None:
    # With OBM_READ_AUTH=token, /status needs the token too.
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/status", headers=headers, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url}/status did not answer within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")


FIXED_PORTS_OFF = {"sender": {"SENDER_GATEWAY_PORT": "0"}}
"""Ports a service opens at a fixed number by default, off in a local stack unless its caller gives one: two
stacks, or one beside `make up`, must not collide."""


@contextmanager
def local_services(
    services: Mapping[str, Mapping[str, object]], logs_dir: Path, http_ports: Mapping[str, int]
) -> Iterator[LocalStack]:
    """Start ``python -m <service>`` for each service (in order) with extra environment; stop them all after.

    ``http_ports`` gives each service's HTTP port (its ``<SERVICE>_HTTP_PORT`` is set from it).
    """
    stack = LocalStack()
    try:
        for name, extra in services.items():
            log = logs_dir / f"{name}.log"
            env = {
                **os.environ,
                f"{name.upper()}_HTTP_PORT": str(http_ports[name]),
                f"{name.upper()}_HOST": "127.0.0.1",
                **FIXED_PORTS_OFF.get(name, {}),
            }
            env |= {key: str(value) for key, value in extra.items()}
            process = subprocess.Popen(
                [sys.executable, "-m", name], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
            )
            url = f"http://127.0.0.1:{http_ports[name]}"
            stack.urls[name], stack.processes[name], stack.logs[name] = url, process, log
            _wait_until_up(url, process, log, env.get("OBM_API_TOKEN"))
        yield stack
    finally:
        for process in stack.processes.values():
            process.terminate()
        for process in stack.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
