"""The orchestrator's API under /api: thin handlers over the service clients."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from obm_shared.limits import Speed
from orchestrator.book_reads import DEFAULT_BOOK_DEPTH, MAX_BOOK_DEPTH, BookReads, book_query
from orchestrator.clients import ServiceClient
from orchestrator.control import services_status, start_replay
from orchestrator.core.config import Settings

router = APIRouter(prefix="/api")


class StartRequest(BaseModel):
    """Which file to replay and how fast."""

    file: str | None = Field(None, description="file name from GET /api/files; omit for the demo data")
    speed: Speed | None = None


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
    "/start-streaming", summary="Prepare the receiver, then start the sender; returns the run id at once"
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
    depth: Annotated[int, Query(ge=1, le=MAX_BOOK_DEPTH)] = DEFAULT_BOOK_DEPTH,
    instrument_id: int | None = None,
    publisher_id: int | None = None,
    per_publisher: bool = True,
) -> Response:
    books: BookReads = request.app.state.books
    body = await books.read(book_query(depth, instrument_id, publisher_id, per_publisher))
    return Response(content=body, media_type="application/json")


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
