"""HTTP API of the sender: thin handlers over the catalog, the start plan and the streamer."""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Request
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
from sender.api.gateway_routes import get_gateway
from sender.catalog import Catalog, FileNotAllowed, NotStreamable
from sender.core.config import Settings
from sender.gateway.server import Gateway
from sender.start_plan import ReceiverNotAllowed, StartPlan, plan_start
from sender.streamer import Streamer, StreamerBusy

MAX_HOST_CHARS = 1024
"""Longer than any host name; anything up to it that is not an allowed receiver is simply not allowed."""

# why a start is refused -> its status
_REFUSALS: dict[type[Exception], int] = {
    FileNotAllowed: 400,
    ReceiverNotAllowed: 403,
    FileNotFoundError: 404,
    StreamerBusy: 409,
    NotStreamable: 422,
}


_START_REFUSALS: Responses = {
    400: refusal(
        "the body cannot be decoded (not UTF-8), or the file name is not allowed (outside the data folder,"
        " not .dbn/.dbn.zst, too long)"
    ),
    403: refusal("a cross-origin request, or a receiver not in SENDER_ALLOWED_RECEIVERS"),
    404: refusal("no such file in the data folder"),
    409: refusal("a stream is already running"),
    422: invalid("the body is invalid, or the file holds no streamable MBO records"),
}
"""A start's own refusals, on top of the guards'."""


actions = APIRouter(dependencies=[RequireToken], responses=GUARDED_RESPONSES)
"""State-changing routes: the API token when one is set."""
reads = APIRouter(dependencies=[RequireReadToken], responses=READ_RESPONSES)
"""Reads: open unless ``OBM_READ_AUTH=token``."""


class StartStreaming(BaseModel):
    """What to stream, where to, and how fast."""

    file: str | None = Field(None, description="file name relative to the data folder (see GET /files)")
    receiver_host: str | None = Field(
        None, max_length=MAX_HOST_CHARS, description="receiver ingest host (default from settings)"
    )
    receiver_port: int | None = Field(None, ge=1, le=65535, description="receiver ingest port")
    speed: Speed | None = None


def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def get_streamer(request: Request) -> Streamer:
    streamer: Streamer = request.app.state.streamer
    return streamer


def get_config(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def planned(
    body: StartStreaming,
    catalog: Annotated[Catalog, Depends(get_catalog)],
    streamer: Annotated[Streamer, Depends(get_streamer)],
    settings: Annotated[Settings, Depends(get_config)],
) -> StartPlan:
    """The start the request asks for, or the 4xx that refuses it."""
    try:
        return plan_start(catalog, streamer, settings, **body.model_dump())
    except tuple(_REFUSALS) as error:
        raise _refused(error) from None


def _refused(error: Exception) -> HTTPException:
    status = next(status for kind, status in _REFUSALS.items() if isinstance(error, kind))
    return HTTPException(status, str(error))


@reads.get("/files", summary="The DBN files this sender can stream, with what each holds")
def files(catalog: Annotated[Catalog, Depends(get_catalog)]) -> list[dict[str, object]]:
    return [msgspec.to_builtins(info) for info in catalog.files()]


@actions.post(
    "/start-streaming",
    summary="Stream one file to the receiver; returns at once with a run id",
    responses=_START_REFUSALS,
)
def start_streaming(
    plan: Annotated[StartPlan, Depends(planned)], streamer: Annotated[Streamer, Depends(get_streamer)]
) -> dict[str, object]:
    try:
        job = streamer.start(plan.file, plan.path, plan.receiver, plan.speed)
    except StreamerBusy as error:
        raise _refused(error) from None
    return job.as_dict()


@actions.post(
    "/start-streaming/check",
    summary="What /start-streaming would do with this body (200 with the plan, or its 4xx); starts nothing",
    responses=_START_REFUSALS,
)
def check_start(plan: Annotated[StartPlan, Depends(planned)]) -> dict[str, object]:
    return plan.as_dict()


@actions.post("/stop", summary="Stop the running stream (the receiver is told why)")
def stop(streamer: Annotated[Streamer, Depends(get_streamer)]) -> dict[str, object]:
    stopped = streamer.stop()
    job = streamer.job
    return {"stopped": stopped, "run": job.as_dict() if job else None}


@reads.get("/status", summary="State, progress, rate and errors of the current or last stream")
def status(
    streamer: Annotated[Streamer, Depends(get_streamer)], gateway: Annotated[Gateway, Depends(get_gateway)]
) -> dict[str, object]:
    job = streamer.job
    return {
        "service": "sender",
        "state": job.state.value if job else "idle",
        "run": job.as_dict() if job else None,
        "gateway": gateway.as_dict(),
    }
