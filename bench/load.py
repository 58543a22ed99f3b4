"""The read load of ``make bench``: API readers and live-feed WebSockets, each load in a process of its own.

Every client connects (and reads once, unmeasured) before the load reports ready, and runs only once the
benchmark says go, as it starts the replay it loads, when both loads are ready: what is measured is
steady-state reads on open connections, as a page that stays open makes them, not the handshakes of either
load.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from typing import Protocol
from urllib.parse import urlsplit

import uvloop
import websockets

READERS = 100
READ_INTERVAL_SECONDS = 0.1
"""Each reader asks every 100 ms: a screen's pace, like the UI."""
STOP_POLL_SECONDS = 0.05


class SharedFlag(Protocol):
    """A flag shared between processes (a ``multiprocessing.Manager().Event()``)."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...


class LoadClient(Protocol):
    """One client of a load: connects first, then runs until cancelled."""

    async def connect(self) -> None: ...

    async def run(self) -> None: ...


async def _run_load(clients: list[LoadClient], ready: SharedFlag, go: SharedFlag, stop: SharedFlag) -> None:
    """Connect every client, say ready, run them from ``go`` until ``stop``; a client's own failure is raised.

    The flags live in another process and asking one blocks the event loop, so only this loop polls them."""
    await asyncio.gather(*(client.connect() for client in clients))
    ready.set()
    while not go.is_set():
        if stop.is_set():
            return
        await asyncio.sleep(STOP_POLL_SECONDS)
    tasks = [asyncio.ensure_future(client.run()) for client in clients]
    while not stop.is_set() and not any(task.done() for task in tasks):
        await asyncio.sleep(STOP_POLL_SECONDS)
    for task in tasks:
        task.cancel()
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, Exception):
            raise outcome


class BookReader:
    """Reads the orchestrator's books every ``READ_INTERVAL_SECONDS`` over one keep-alive HTTP/1.1 connection,
    each read a path picked at random from ``paths`` (so depths and ids vary as many different pages ask).

    It keeps its own fixed schedule (as a page's timer does), whatever the answers do, and a latency counts
    from when the read was due, so a stall is paid by every read it delays (no coordinated omission). The
    requests are made once and the answer read by its Content-Length: the load's CPU is taken from the
    services it measures. An answer other than 200 is counted as an error."""

    def __init__(self, base_url: str, paths: list[str], latencies_ms: list[float], errors: list[int]) -> None:
        parts = urlsplit(base_url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.requests = [f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode() for path in paths]
        self.latencies_ms = latencies_ms
        self.errors = errors
        self._connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def connect(self) -> None:
        self._connection = await asyncio.open_connection(*self.address)
        await self._read()

    async def run(self) -> None:
        due = time.perf_counter() + random.uniform(0, READ_INTERVAL_SECONDS)  # independent phases
        while True:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            status = await self._read()
            if status == 200:
                self.latencies_ms.append((time.perf_counter() - due) * 1000)
            else:
                self.errors.append(status)
            due += READ_INTERVAL_SECONDS

    async def _read(self) -> int:
        """Send a request, read the whole answer; returns its status code."""
        assert self._connection is not None, "connect first"
        reader, writer = self._connection
        writer.write(random.choice(self.requests))
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if length is None:
            raise RuntimeError(f"answer without a Content-Length: {head!r}")
        await reader.readexactly(int(length.group(1)))
        return int(head[9:12])


class LiveWatcher:
    """One browser's live-feed WebSocket: it reads every frame from the moment it connects, as a page does (a
    client that stopped reading would hold the feed's sends back, then release them all at once), and counts the
    frames received while it runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.frames = 0
        self._counting = False
        self._reading: asyncio.Future[None] | None = None

    async def connect(self) -> None:
        socket = await websockets.connect(self.url, max_size=None)
        self._reading = asyncio.ensure_future(self._read(socket))

    async def run(self) -> None:
        assert self._reading is not None, "connect first"
        self._counting = True
        await self._reading

    async def _read(self, socket: websockets.ClientConnection) -> None:
        async with socket:
            async for message in socket:
                if self._counting and '"frame"' in str(message)[:40]:  # {"type": "frame", ...}
                    self.frames += 1


def read_load(
    base_url: str, paths: list[str], ready: SharedFlag, go: SharedFlag, stop: SharedFlag
) -> tuple[list[float], list[int]]:
    """``READERS`` readers of ``paths`` at ``base_url`` until ``stop`` is set; returns the latency in ms of
    every answer, and the status of every answer that was not 200."""
    latencies_ms: list[float] = []
    errors: list[int] = []
    readers: list[LoadClient] = [BookReader(base_url, paths, latencies_ms, errors) for _ in range(READERS)]
    uvloop.run(_run_load(readers, ready, go, stop))
    return latencies_ms, errors


def live_load(url: str, ready: SharedFlag, go: SharedFlag, stop: SharedFlag) -> list[int]:
    """``READERS`` browsers' worth of live-feed WebSockets; returns the frames each one received."""
    watchers = [LiveWatcher(url) for _ in range(READERS)]
    uvloop.run(_run_load(list(watchers), ready, go, stop))
    return [watcher.frames for watcher in watchers]
