"""The receivers as one receiver: every reader (book reads, timelines, the live feed, the routes) asks this view
what it would ask the receiver, and it asks the right receivers.

With one receiver every request goes straight to it, as it always has. With several (each booking its share of
the instruments, see the README's NATS transport), a read naming an instrument goes to the receiver that holds
it (a 404 when none does), and a read of the whole market asks every receiver and merges their answers
(:mod:`orchestrator.merge`). Which receiver holds which instrument comes from their ``GET /status``
(``instruments``), through a read cache of the book reads' pace.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from orchestrator.clients import ServiceClient, ServiceRefused
from orchestrator.merge import merge_books, merge_probes, merge_trades
from orchestrator.read_cache import ReadCache
from orchestrator.receivers import ReceiverSet

_OWNERS = "owners"
Owners = tuple[dict[int, ServiceClient], list[Exception]]
"""Which receiver holds which instrument, and the failures of the receivers that did not say."""
_events_head = msgspec.json.Decoder(dict[str, Any])


class ReceiverView:
    """The service client interface (``request``, ``request_bytes``, ``probe``) over a :class:`ReceiverSet`."""

    name = "receiver"

    def __init__(self, receivers: ReceiverSet, owners_max_age_seconds: float) -> None:
        self.receivers = receivers
        self._owners = ReadCache(owners_max_age_seconds, max_entries=1)

    @property
    def clients(self) -> list[ServiceClient]:
        return self.receivers.clients

    def forget(self) -> None:
        """A run has begun: which receiver holds which instrument is asked afresh."""
        self._owners.forget()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded answer the receivers give together; raises the service errors."""
        clients = self.clients
        if len(clients) == 1:
            return await clients[0].request(method, path, **kwargs)
        return msgspec.json.decode(await self._together(clients, method, path, **kwargs))

    async def request_bytes(self, method: str, path: str, **kwargs: Any) -> bytes:
        """The JSON answer the receivers give together; raises the service errors."""
        clients = self.clients
        if len(clients) == 1:
            return await clients[0].request_bytes(method, path, **kwargs)
        return await self._together(clients, method, path, **kwargs)

    async def probe(self) -> dict[str, object]:
        """One receiver's probe, or every receiver's merged (each listed under ``status.receivers``)."""
        clients = self.clients
        if len(clients) == 1:
            return await clients[0].probe()
        return merge_probes(list(await asyncio.gather(*(client.probe() for client in clients))))

    async def owner(self, instrument_id: int) -> ServiceClient:
        """The receiver holding ``instrument_id``; ServiceRefused (404) when none does, or the failure of a
        receiver that did not answer (it may hold it)."""
        known: Owners = await self._owners.get(_OWNERS, self._ask_owners)
        owners, failures = known
        if instrument_id not in owners:  # new since the owners were asked (a run starting): ask again
            owners, failures = await self._ask_owners()
        if instrument_id in owners:
            return owners[instrument_id]
        if failures:
            raise failures[0]
        raise ServiceRefused("receiver", 404, f"no receiver holds instrument {instrument_id}")

    async def _ask_owners(self) -> Owners:
        """Which receiver holds which instrument, from those that answer; the others' failures."""
        clients = self.clients
        statuses = await asyncio.gather(
            *(client.request("GET", "/status") for client in clients), return_exceptions=True
        )
        owners: dict[int, ServiceClient] = {}
        failures: list[Exception] = []
        for client, status in zip(clients, statuses, strict=True):
            if isinstance(status, Exception):
                failures.append(status)
            elif isinstance(status, BaseException):
                raise status
            else:
                owners |= dict.fromkeys(status.get("instruments", []), client)
        return owners, failures

    async def _together(self, clients: list[ServiceClient], method: str, path: str, **kwargs: Any) -> bytes:
        params: dict[str, Any] = dict(kwargs.pop("params", None) or {})
        instrument_id = params.get("instrument_id")
        if method == "POST":
            return await self._every(clients, method, path, kwargs)
        if instrument_id is not None:
            owner = await self.owner(int(instrument_id))
            if path in ("/events", "/trades"):
                del params["instrument_id"]  # the receivers' pages are not per instrument
            answer = await owner.request_bytes(method, path, params=params, **kwargs)
            if path == "/trades":
                trades = msgspec.json.decode(answer)
                return msgspec.json.encode([t for t in trades if t["instrument_id"] == int(instrument_id)])
            return answer
        if path == "/order-book":
            return merge_books(await self._answers(clients, path, params, missing_ok=True))
        if path == "/trades":
            tapes = [msgspec.json.decode(tape) for tape in await self._answers(clients, path, params)]
            return msgspec.json.encode(merge_trades(tapes, int(params.get("limit", 50))))
        if path == "/events":
            return await self._events(clients, params)
        # a read of one instrument's view (the timeline) without one: the receiver's default, the first
        known: Owners = await self._owners.get(_OWNERS, self._ask_owners)
        owners = known[0]
        if not owners:
            return await clients[0].request_bytes(method, path, params=params, **kwargs)
        return await owners[min(owners)].request_bytes(method, path, params=params, **kwargs)

    async def _answers(
        self, clients: list[ServiceClient], path: str, params: dict[str, Any], missing_ok: bool = False
    ) -> list[bytes]:
        """Every receiver's answer; with ``missing_ok``, a receiver without the thing asked (a 404: no run yet)
        is left out, unless every one is."""
        answers = await asyncio.gather(
            *(client.request_bytes("GET", path, params=params) for client in clients), return_exceptions=True
        )
        kept = []
        for answer in answers:
            if isinstance(answer, ServiceRefused) and answer.status_code == 404 and missing_ok:
                continue
            if isinstance(answer, BaseException):
                raise answer
            kept.append(answer)
        if not kept:
            raise next(answer for answer in answers if isinstance(answer, BaseException))
        return kept

    async def _every(
        self, clients: list[ServiceClient], method: str, path: str, kwargs: dict[str, Any]
    ) -> bytes:
        """An action taken by every receiver (prepare a run, stop): the first's answer, ``stopped`` if any
        stopped. A live feed is booked by one receiver only, so it is refused here."""
        if (kwargs.get("json") or {}).get("live") is not None:
            raise ServiceRefused(
                "receiver", 409, "a live feed is booked by one receiver: configure ORCHESTRATOR_RECEIVER_URL"
            )
        answers = [
            msgspec.json.decode(answer)
            for answer in await asyncio.gather(
                *(client.request_bytes(method, path, **kwargs) for client in clients)
            )
        ]
        merged = dict(answers[0])
        if "stopped" in merged:
            merged["stopped"] = any(answer["stopped"] for answer in answers)
        return msgspec.json.encode(merged)

    async def _events(self, clients: list[ServiceClient], params: dict[str, Any]) -> bytes:
        """The receivers' event lines as one list, each receiver's in turn (in the receivers' order): the
        page asked is cut from the receivers whose lines it spans."""
        start, limit = int(params.get("start", 0)), int(params.get("limit", 100))
        heads = [
            _events_head.decode(head)
            for head in await self._answers(clients, "/events", {"start": 0, "limit": 1})
        ]
        events: list[Any] = []
        offset = 0
        for client, head in zip(clients, heads, strict=True):
            total = head["total"]
            wanted = start + len(events) - offset
            if 0 <= wanted < total and len(events) < limit:
                page = {"start": wanted, "limit": limit - len(events)}
                events.extend((await client.request("GET", "/events", params=page))["events"])
            offset += total
        errors = [head["output_error"] for head in heads if head.get("output_error")]
        answer = {
            "run_id": heads[0]["run_id"],
            "total": offset,
            "start": start,
            "output_error": "; ".join(errors) or None,
            "events": events,
        }
        return msgspec.json.encode(answer)
