"""The orchestrator's API under /api: thin handlers over the service clients."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.datastructures import State

from orchestrator.clients import ServiceClient
from orchestrator.control import services_status, start_replay
from orchestrator.core.config import Settings
from orchestrator.read_cache import ReadCache

router = APIRouter(prefix="/api")
MAX_BOOK_DEPTH = 1000
"""Most levels per side a book read may ask for."""


class StartRequest(BaseModel):
    """Which file to replay and how fast."""

    file: str | None = Field(None, description="file name from GET /api/files; omit for the demo data")
    speed: float | None = Field(
        None,
        gt=0,
        le=1_000_000,
        description="multiple of market time (1 = real time); omit for as fast as possible",
    )


# async so FastAPI resolves them on the event loop, not in its thread pool (a thread hop per request)
async def sender_client(request: Request) -> ServiceClient:
    client: ServiceClient = request.app.state.sender
    return client


async def receiver_client(request: Request) -> ServiceClient:
    client: ServiceClient = request.app.state.receiver
    return client


async def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Sender = Annotated[ServiceClient, Depends(sender_client)]
Receiver = Annotated[ServiceClient, Depends(receiver_client)]


@router.post(
    "/start-streaming", summary="Prepare the receiver, then start the sender; returns a run id at once"
)
async def start_streaming(
    body: StartRequest,
    sender: Sender,
    receiver: Receiver,
    settings: Annotated[Settings, Depends(settings_of)],
) -> dict[str, Any]:
    ingest = (settings.receiver_ingest_host, settings.receiver_ingest_port)
    return await start_replay(sender, receiver, ingest, body.file, body.speed)


@router.post("/stop", summary="Stop the running replay")
async def stop(sender: Sender) -> Any:
    return await sender.request("POST", "/stop")


@router.get("/files", summary="DBN files the sender can stream")
async def files(sender: Sender) -> Any:
    return await sender.request("GET", "/files")


@router.get("/order-book", summary="The receiver's books (consolidated first, then per publisher)")
async def order_book(
    request: Request,
    depth: Annotated[int, Query(ge=1, le=MAX_BOOK_DEPTH)] = 10,
    instrument_id: int | None = None,
    publisher_id: int | None = None,
    per_publisher: bool = True,
) -> Response:
    query = book_query(depth, instrument_id, publisher_id, per_publisher)
    return Response(content=await read_book(request.app.state, query), media_type="application/json")


def book_query(
    depth: int, instrument_id: int | None, publisher_id: int | None, per_publisher: bool
) -> dict[str, Any]:
    """The receiver's query for a book read (also the read cache's key, in this order)."""
    query: dict[str, Any] = {"depth": depth, "per_publisher": per_publisher}
    if instrument_id is not None:
        query["instrument_id"] = instrument_id
    if publisher_id is not None:
        query["publisher_id"] = publisher_id
    return query


async def read_book(state: State, query: dict[str, Any]) -> bytes:
    """The receiver's answer to a book query, through the read cache (raises the service errors)."""
    cache: ReadCache = state.book_reads
    receiver: ServiceClient = state.receiver
    body: bytes = await cache.get(
        tuple(query.items()), lambda: receiver.request_bytes("GET", "/order-book", params=query)
    )
    return body


@router.get("/events", summary="Per-event JSON lines of the current run, in pages")
async def events(
    receiver: Receiver,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Any:
    return await receiver.request("GET", "/events", params={"start": start, "limit": limit})


@router.get("/trades", summary="The most recent trades")
async def trades(receiver: Receiver, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
    return await receiver.request("GET", "/trades", params={"limit": limit})


@router.get("/microservices/status", summary="Each service's status, reachable or not, with latency")
async def microservices_status(request: Request, sender: Sender, receiver: Receiver) -> dict[str, Any]:
    return await services_status([sender, receiver], request.app.state.started_at)
