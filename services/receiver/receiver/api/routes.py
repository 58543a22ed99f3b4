"""HTTP API of the receiver: thin handlers over the current run and its market."""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query, Request
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
from obm_shared.dbn import ASK, BID
from obm_shared.live_source import LiveSource
from obm_shared.messages import RUN_ID_PATTERN
from receiver.api.cache import VersionedCache
from receiver.book import hot_path_build
from receiver.book.market import Market
from receiver.book.views import books_document, level_orders, queue_position
from receiver.history.archive import RecordedRun
from receiver.history.points import MAX_TIME_NS, AtEvent, AtTime, Point, parse_time
from receiver.history.seek import BeyondReceived, PointBooks, books_at
from receiver.history.timeline import timeline
from receiver.ingest import Receiver
from receiver.live.errors import LiveSessionError
from receiver.processing import Run
from receiver.run_status import run_status

actions = APIRouter(dependencies=[RequireToken], responses=GUARDED_RESPONSES)
"""State-changing routes: the API token when one is set."""
reads = APIRouter(dependencies=[RequireReadToken], responses=READ_RESPONSES)
"""Reads: open unless ``OBM_READ_AUTH=token``."""
_encoder = msgspec.json.Encoder()
_NO_RUN: Responses = {404: refusal("no run yet")}
_NO_BOOK: Responses = {404: refusal("no run yet, or no such book or order in it")}
_book_cache = VersionedCache()

Depth = Annotated[int, Query(ge=1, le=1000, description="levels per side")]
RunIdQuery = Annotated[
    str | None, Query(pattern=RUN_ID_PATTERN, description="an earlier run whose recording is kept (its id)")
]


class JSONBytes(Response):
    """A response already encoded by msgspec."""

    media_type = "application/json"

    def __init__(self, content: object, status_code: int = 200) -> None:
        body = content if isinstance(content, bytes) else _encoder.encode(content)
        super().__init__(content=body, status_code=status_code)


async def get_receiver(request: Request) -> Receiver:
    receiver: Receiver = request.app.state.receiver
    return receiver


async def current_run(receiver: Annotated[Receiver, Depends(get_receiver)]) -> Run:
    if receiver.run is None:
        raise HTTPException(404, "no run yet: POST /start-processing, then stream records to the ingest port")
    return receiver.run


class StartProcessing(BaseModel):
    """What the next run takes: a stream on the ingest port (the default), or a live gateway's feed."""

    live: LiveSource | None = Field(
        None,
        description="book this gateway's live feed (Databento's live protocol) instead of the ingest port",
    )


@actions.post(
    "/start-processing",
    summary="Reset the market and get ready for the next stream, or start booking a live gateway's feed",
    responses={
        400: refusal("the body cannot be decoded (not UTF-8)"),
        403: refusal("a cross-origin request, or a live gateway this receiver may not book from"),
        409: refusal("a stream is being received"),
        502: refusal("the live gateway could not be reached, or refused the key or the subscription"),
    },
)
async def start_processing(
    receiver: Annotated[Receiver, Depends(get_receiver)], body: StartProcessing | None = None
) -> JSONBytes:
    live = body.live if body is not None else None
    try:
        if live is None:
            run = await receiver.new_run()
        elif not receiver.settings.gateway_allowed(live.host, live.port):
            raise HTTPException(
                403, "this receiver may not book from that gateway (see RECEIVER_LIVE_GATEWAYS)"
            )
        else:
            run = await receiver.book_live(live)
    except RuntimeError as error:
        raise HTTPException(409, str(error)) from None
    except LiveSessionError as error:
        raise HTTPException(502, str(error)) from None
    answer: dict[str, object] = {
        "run_id": run.run_id,
        "state": run.state.value,
        "ingest_port": receiver.settings.ingest_port,
    }
    if live is not None:
        answer["live"] = live.described()
    return JSONBytes(answer)


@actions.post("/stop", summary="Stop booking a live feed (its run ends stopped)")
async def stop(receiver: Annotated[Receiver, Depends(get_receiver)]) -> JSONBytes:
    return JSONBytes({"stopped": await receiver.stop_live()})


@reads.get("/status", summary="State, counts, rate and errors of the current run")
async def status(receiver: Annotated[Receiver, Depends(get_receiver)]) -> JSONBytes:
    current = run_status(receiver.run) if receiver.run else None
    return JSONBytes(
        {
            "service": "receiver",
            "state": current["state"] if current else "idle",
            "ingest_port": receiver.settings.ingest_port,
            "live_gateways": sorted(f"{host}:{port}" for host, port in receiver.settings.live_gateways),
            "rejected_connections": dict(receiver.rejected_connections),
            "protocol_errors": dict(receiver.protocol_errors),
            "hot_path": hot_path_build(),
            # what an orchestrator over several receivers shows of each, and routes reads of an instrument by
            "receiver_id": receiver.settings.id,
            "partitions": receiver.partitions,
            "partition_lag": receiver.partition_lag,
            "nats_problem": receiver.nats_problem,
            "instruments": receiver.run.market.instruments() if receiver.run else [],
            "run": current,
        }
    )


@reads.get(
    "/order-book",
    summary="Consolidated and per-publisher books: depth, BBO, spread, crossed, counts; now or at a point",
    responses={
        404: refusal("no run yet, no such book, or no recording of the run asked kept"),
        409: {"description": "the point is beyond what the run being received has got (and how far it is)"},
        422: invalid("the query is invalid (a malformed time, or both at and at_event)"),
    },
)
async def order_book(
    receiver: Annotated[Receiver, Depends(get_receiver)],
    depth: Depth = 10,
    instrument_id: int | None = None,
    publisher_id: int | None = Query(None, description="one publisher's book instead of all books"),
    per_publisher: bool = Query(True, description="also each publisher's book, after the consolidated one"),
    at: str | None = Query(
        None,
        description="the books after every event received at or before this time: UNIX ns, or ISO-8601 UTC "
        "with up to nine decimals (2024-05-08T13:30:00.123456789Z)",
    ),
    at_event: int | None = Query(None, ge=0, description="the books after event K (0-based, as GET /events)"),
    run_id: RunIdQuery = None,
) -> JSONBytes:
    point = _point(at, at_event)
    run = receiver.run
    if point is None and run is not None and run_id in (None, run.run_id):
        key = (depth, instrument_id, publisher_id, per_publisher)
        body = _book_cache.get((run.run_id, run.version), key, lambda: _order_book(run, *key))
        return JSONBytes(body)
    if run is None and run_id is None:
        raise HTTPException(404, "no run yet: POST /start-processing, then stream records to the ingest port")
    recorded = _recorded(receiver, run_id)
    # no point for an earlier run: its books at the end
    wanted = point or AtTime(MAX_TIME_NS)
    try:
        books = await receiver.seeks.run(lambda: books_at(recorded.recording, wanted))
    except BeyondReceived as beyond:
        progress = beyond.progress
        detail = {
            "detail": str(beyond),
            "events_received": progress.events,
            "last_ts_recv": progress.last_ts_recv,
        }
        return JSONBytes(detail, status_code=409)
    except (FileNotFoundError, ValueError) as error:  # removed by retention meanwhile, or a damaged file
        receiver.archive.forget(recorded.run_id)
        raise HTTPException(404, f"run {recorded.run_id}: its recording cannot be read ({error})") from None
    document = _books_document(
        recorded.run_id, recorded.state, books.market, depth, instrument_id, publisher_id, per_publisher
    )
    document["point"] = _point_view(point, books)
    document["accounting"] = books.market.accounting.as_dict()
    return JSONBytes(document)


def _point(at: str | None, at_event: int | None) -> Point | None:
    if at is not None and at_event is not None:
        raise HTTPException(422, "give at or at_event, not both")
    if at_event is not None:
        return AtEvent(at_event)
    if at is None:
        return None
    try:
        return AtTime(parse_time(at))
    except ValueError as error:
        raise HTTPException(422, f"at: {error}") from None


def _point_view(point: Point | None, books: PointBooks) -> dict[str, int | None]:
    event = books.event
    return {
        "at": point.ns if isinstance(point, AtTime) else None,
        "at_event": point.index if isinstance(point, AtEvent) else None,
        "event_index": event.event_index if event is not None else None,
        "ts_recv": event.ts_recv if event is not None else None,
        "ts_event": event.ts_event if event is not None else None,
        "records": books.records,
    }


def _recorded(receiver: Receiver, run_id: str | None) -> RecordedRun:
    try:
        return receiver.recorded(run_id)
    except LookupError as error:
        raise HTTPException(404, str(error)) from None


def _order_book(
    run: Run, depth: int, instrument_id: int | None, publisher_id: int | None, per_publisher: bool
) -> bytes:
    return _encoder.encode(
        _books_document(
            run.run_id, run.state.value, run.market, depth, instrument_id, publisher_id, per_publisher
        )
    )


def _books_document(
    run_id: str,
    state: str,
    market: Market,
    depth: int,
    instrument_id: int | None,
    publisher_id: int | None,
    per_publisher: bool,
) -> dict[str, object]:
    try:
        books = books_document(market, depth, instrument_id, publisher_id, per_publisher)
    except KeyError:
        raise HTTPException(404, f"no book for instrument {instrument_id} publisher {publisher_id}") from None
    return {"run_id": run_id, "state": state, **books}


@reads.get(
    "/order-book/level",
    summary="The orders queued at one price, front of the queue first",
    responses=_NO_BOOK,
)
async def price_level(
    run: Annotated[Run, Depends(current_run)],
    instrument_id: int,
    publisher_id: int,
    side: Annotated[str, Query(pattern="^[BA]$", description="B (bid) or A (ask)")],
    price: Annotated[int, Query(description="fixed-point price, 1e-9 units")],
) -> JSONBytes:
    book = run.market.books.get((instrument_id, publisher_id))
    if book is None:
        raise HTTPException(404, f"no book for instrument {instrument_id} publisher {publisher_id}")
    return JSONBytes(level_orders(book, BID if side == "B" else ASK, price))


@reads.get(
    "/order-book/queue-position", summary="Where one order waits in its level's queue", responses=_NO_BOOK
)
async def order_queue_position(
    run: Annotated[Run, Depends(current_run)], instrument_id: int, publisher_id: int, order_id: int
) -> JSONBytes:
    book = run.market.books.get((instrument_id, publisher_id))
    try:
        if book is None:
            raise KeyError(order_id)
        return JSONBytes(queue_position(book, order_id))
    except KeyError:
        raise HTTPException(404, f"order {order_id} is not in the book") from None


@reads.get(
    "/events",
    summary="Per-event JSON lines of the current run, in pages",
    responses={404: refusal("no run yet, or event output switched off")},
)
async def events(
    run: Annotated[Run, Depends(current_run)],
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> JSONBytes:
    if not run.output.enabled:
        raise HTTPException(404, "event output is switched off (RECEIVER_OUTPUT_ENABLED=false)")
    lines = run.output.read_page(start, limit)
    # after a write error: the lines written, and why no more follow
    total, error = run.output.lines_written, run.output.error
    head = _encoder.encode({"run_id": run.run_id, "total": total, "start": start, "output_error": error})
    return JSONBytes(head[:-1] + b',"events":[' + b",".join(lines) + b"]}")


@reads.get("/trades", summary="The most recent trades, newest last", responses=_NO_RUN)
async def trades(
    run: Annotated[Run, Depends(current_run)], limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> JSONBytes:
    return JSONBytes(run.trades.latest(limit))


@reads.get(
    "/timeline",
    summary="A recorded run's market time range, events, checkpoints and liquidity history",
    responses={404: refusal("no recorded run (or not the one asked), or no such instrument in it")},
)
async def get_timeline(
    receiver: Annotated[Receiver, Depends(get_receiver)],
    instrument_id: int | None = Query(None, description="whose history (the first instrument when omitted)"),
    run_id: RunIdQuery = None,
) -> JSONBytes:
    recorded = _recorded(receiver, run_id)
    try:
        return JSONBytes(timeline(recorded, instrument_id))
    except LookupError as error:
        raise HTTPException(404, str(error)) from None
