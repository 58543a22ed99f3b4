"""Starting and observing a replay across the two services."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Protocol

from orchestrator.clients import Service


class Probed(Protocol):
    """A service whose health can be asked (a :class:`~orchestrator.clients.ServiceClient`)."""

    name: str

    async def probe(self) -> dict[str, object]: ...


async def start_replay(
    sender: Service,
    receiver: Service,
    ingest: tuple[str, int],
    file: str | None,
    speed: float | None,
) -> dict[str, Any]:
    """Check with the sender, prepare the receiver (every receiver), then start the sender; returns at once with the run's ids.

    The sender first answers what its start would (file, target, speed, idle) without starting, so a start
    it would refuse leaves the receiver's books and output as they were. Only then is the receiver reset,
    before the first byte is sent. ``run_id`` names the replay in every service: the sender's run, which the
    receiver's run takes from the stream's handshake, so its books, event lines and recording carry it.
    """
    body: dict[str, Any] = {
        "file": file,
        "receiver_host": ingest[0],
        "receiver_port": ingest[1],
        "speed": speed,
    }
    await sender.request("POST", "/start-streaming/check", json=body)
    await receiver.request("POST", "/start-processing", json={})
    started = await sender.request("POST", "/start-streaming", json=body)
    return {
        "run_id": started["run_id"],
        "file": started["file"],
        "speed": speed,
        "records_total": started["records_total"],
    }


async def services_status(clients: Sequence[Probed], started_at: float) -> dict[str, Any]:
    """Each service's /status, reachable or not, with latency, probed concurrently."""
    probes = await asyncio.gather(*(client.probe() for client in clients))
    return {
        "orchestrator": {"reachable": True, "uptime_seconds": round(time.monotonic() - started_at, 1)},
        **{client.name: probe for client, probe in zip(clients, probes)},
    }
