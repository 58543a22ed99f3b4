"""The orchestrator's API under /api: thin handlers over the service clients.

Two routers, so no route can be left unguarded by accident: ``actions`` (state-changing, ``RequireToken``)
and ``reads`` (``RequireReadToken``: open unless ``OBM_READ_AUTH=token``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from obm_shared.auth import (
    GUARDED_RESPONSES,
    READ_RESPONSES,
    RequireReadToken,
    RequireToken,
    Responses,
    invalid,
    refusal,
)
from obm_shared.limits import Speed
from obm_shared.live_source import LiveSource
from orchestrator.book_reads import DEFAULT_BOOK_DEPTH, MAX_BOOK_DEPTH, BookReads, book_query, point_query
from orchestrator.clients import ServiceClient
from orchestrator.control import services_status, start_replay
from orchestrator.core.config import Settings
from orchestrator.receiver_view import ReceiverView
from orchestrator.timeline_reads import TimelineReads

DOWNSTREAM_FAILURES: Responses = {
    502: refusal("the sender or receiver failed (a 5xx) or refused the orchestrator's token"),
    503: refusal("the sender or receiver cannot be reached"),
}
"""What a route that asks a service can answer when that service is down or broken."""
# a service's refusal of the caller's request passes on with its status
_START_REFUSALS: Responses = {
    400: refusal("the body cannot be decoded (not UTF-8), or the sender refuses the file name"),
    403: refusal("a cross-origin request, or the sender may not stream to the receiver"),
    404: refusal("no such file in the sender's data folder"),
    409: refusal("the sender is streaming, or the receiver is receiving"),
    422: invalid("the body is invalid, or the file holds no streamable MBO records"),
}
_NO_RUN: Responses = {404: refusal("the receiver has no run yet")}
_OWNER = "with several receivers: the event lines of the receiver holding this instrument"

# every action asks a service; every read but the services' status does
actions = APIRouter(
    prefix="/api", dependencies=[RequireToken], responses=GUARDED_RESPONSES | DOWNSTREAM_FAILURES
)
reads = APIRouter(prefix="/api", dependencies=[RequireReadToken], responses=READ_RESPONSES)


class StartRequest(BaseModel):
    """Which file to replay and how fast."""

    file: str | None = Field(None, description="file name from GET /api/files; omit for the demo data")
    speed: Speed | None = None


# async so FastAPI resolves them on the event loop, not in its thread pool (a thread hop per request)
async def sender_client(request: Request) -> ServiceClient:
    client: ServiceClient = request.app.state.sender
    return client


async def receiver_view(request: Request) -> ReceiverView:
    view: ReceiverView = request.app.state.receivers
    return view


async def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Sender = Annotated[ServiceClient, Depends(sender_client)]
Receiver = Annotated[ReceiverView, Depends(receiver_view)]


@actions.post(
    "/start-streaming",
    summary="Check with the sender, prepare the receiver, then start the sender; returns the run id at once",
    responses=_START_REFUSALS,
)
async def start_streaming(
    request: Request,
    body: StartRequest,
    sender: Sender,
    receiver: Receiver,
    settings: Annotated[Settings, Depends(settings_of)],
) -> dict[str, Any]:
    ingest = (settings.receiver_ingest_host, settings.receiver_ingest_port)
    # One start at a time, so two cannot both pass the sender's check and reset the receiver in turn.
    start_lock: asyncio.Lock = request.app.state.start_lock
    async with start_lock:
        started = await start_replay(sender, receiver, ingest, body.file, body.speed)
    forget_last_run(request)
    return started


@actions.post(
    "/start-live",
    summary="Book a live gateway's feed (Databento's live protocol): the receiver opens the session",
    responses={
        400: refusal("the body cannot be decoded (not UTF-8)"),
        403: refusal("a cross-origin request, or a gateway the receiver may not book from"),
        409: refusal("the receiver is receiving a stream"),
        422: invalid("the body is invalid"),
    },
)
async def start_live(request: Request, body: LiveSource, receiver: Receiver) -> Any:
    # the key goes on to the receiver in the body, never in a log or an answer
    live = body.model_dump(mode="json", by_alias=True) | {"api_key": body.api_key.get_secret_value()}
    started = await receiver.request("POST", "/start-processing", json={"live": live})
    forget_last_run(request)
    return started


def forget_last_run(request: Request) -> None:
    """A run has begun: the books and timelines kept are the last run's, and a reader must not see them as its."""
    books: BookReads = request.app.state.books
    timelines: TimelineReads = request.app.state.timelines
    receivers: ReceiverView = request.app.state.receivers
    books.forget()
    timelines.forget()
    receivers.forget()


@actions.post("/stop", summary="Stop the running replay, or the live feed being booked")
async def stop(sender: Sender, receiver: Receiver) -> Any:
    stopped = await sender.request("POST", "/stop", json={})
    live = await receiver.request("POST", "/stop", json={})
    return {
        **stopped,
        "stopped": bool(stopped.get("stopped")) or live["stopped"],
        "live_stopped": live["stopped"],
    }


@reads.get("/files", summary="DBN files the sender can stream", responses=DOWNSTREAM_FAILURES)
async def files(sender: Sender) -> Any:
    return await sender.request("GET", "/files")


@reads.get(
    "/order-book",
    summary="The receiver's books (consolidated first, then per publisher), now or at a point in history",
    responses=DOWNSTREAM_FAILURES
    | {
        404: refusal("no run yet, no such book, or no recording of the run asked kept"),
        409: {"description": "the point is beyond what the run being received has got (and how far it is)"},
        422: invalid("the query is invalid (as the receiver reads the point too)"),
    },
)
async def order_book(
    request: Request,
    depth: Annotated[int, Query(ge=1, le=MAX_BOOK_DEPTH)] = DEFAULT_BOOK_DEPTH,
    instrument_id: int | None = None,
    publisher_id: int | None = None,
    per_publisher: bool = True,
    at: Annotated[
        str | None, Query(description="the book at this time: UNIX ns, or ISO-8601 UTC to the nanosecond")
    ] = None,
    at_event: Annotated[str | None, Query(description="the book after this event (0-based)")] = None,
    run_id: Annotated[str | None, Query(description="an earlier run whose recording is kept")] = None,
) -> Response:
    books: BookReads = request.app.state.books
    query = book_query(depth, instrument_id, publisher_id, per_publisher)
    point = point_query(query, at, at_event, run_id)
    body = await (books.read(query) if point is None else books.read_exact(point))
    return Response(content=body, media_type="application/json")


@reads.get(
    "/timeline",
    summary="A run's market time range, events, checkpoints and liquidity history",
    responses=DOWNSTREAM_FAILURES
    | {
        404: refusal("no recorded run (or not the one asked), or no such instrument in it"),
        422: invalid("the query is invalid (as the receiver reads the run id too)"),
    },
)
async def timeline(
    request: Request,
    instrument_id: int | None = None,
    run_id: Annotated[str | None, Query(description="an earlier run whose recording is kept")] = None,
) -> Response:
    timelines: TimelineReads = request.app.state.timelines
    body = await timelines.read(instrument_id, run_id)
    return Response(content=body, media_type="application/json")


@reads.get(
    "/events",
    summary="Per-event JSON lines of the current run, in pages",
    responses=DOWNSTREAM_FAILURES
    | {404: refusal("no run yet, or the receiver's event output is switched off")},
)
async def events(
    receiver: Receiver,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    instrument_id: Annotated[int | None, Query(description=_OWNER)] = None,
) -> Any:
    params = {"start": start, "limit": limit} | _instrument(instrument_id)
    return await receiver.request("GET", "/events", params=params)


@reads.get("/trades", summary="The most recent trades", responses=DOWNSTREAM_FAILURES | _NO_RUN)
async def trades(
    receiver: Receiver,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    instrument_id: Annotated[
        int | None, Query(description="only this instrument's trades, from the receiver holding it")
    ] = None,
) -> Any:
    return await receiver.request("GET", "/trades", params={"limit": limit} | _instrument(instrument_id))


def _instrument(instrument_id: int | None) -> dict[str, int]:
    """The instrument a read names, if any (a read naming none stays as the one receiver knows it)."""
    return {} if instrument_id is None else {"instrument_id": instrument_id}


@reads.get(
    "/microservices/status",
    summary="Each service's status, reachable or not, with latency; with several receivers, each one's and "
    "their run summed",
)
async def microservices_status(request: Request, sender: Sender, receiver: Receiver) -> dict[str, Any]:
    return await services_status([sender, receiver], request.app.state.started_at)
