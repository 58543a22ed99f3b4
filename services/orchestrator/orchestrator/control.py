"""Starting and observing a replay across the two services."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Protocol

from orchestrator.clients import ServiceClient


class Probed(Protocol):
    """A service whose health can be asked (a :class:`~orchestrator.clients.ServiceClient`)."""

    name: str

    async def probe(self) -> dict[str, object]: ...


async def start_replay(
    sender: ServiceClient,
    receiver: ServiceClient,
    ingest: tuple[str, int],
    file: str | None,
    speed: float | None,
) -> dict[str, Any]:
    """Prepare the receiver, then start the sender; returns at once with the ids of the run.

    ``run_id`` is the receiver's run, the one its books and event lines carry; ``sender_run_id`` names the
    sender's side of it. The order removes the race: the receiver has a fresh, ready run before the first
    byte is sent.
    """
    prepared = await receiver.request("POST", "/start-processing")
    body: dict[str, Any] = {
        "file": file,
        "receiver_host": ingest[0],
        "receiver_port": ingest[1],
        "speed": speed,
    }
    started = await sender.request("POST", "/start-streaming", json=body)
    return {
        "run_id": prepared["run_id"],
        "file": started["file"],
        "speed": speed,
        "records_total": started["records_total"],
        "sender_run_id": started["run_id"],
    }


async def services_status(clients: Sequence[Probed], started_at: float) -> dict[str, Any]:
    """Each service's /status, reachable or not, with latency, probed concurrently."""
    probes = await asyncio.gather(*(client.probe() for client in clients))
    return {
        "orchestrator": {"reachable": True, "uptime_seconds": round(time.monotonic() - started_at, 1)},
        **{client.name: probe for client, probe in zip(clients, probes)},
    }
