"""HTTP API of the sender: thin handlers over the catalog and the streamer."""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from obm_shared.limits import Speed
from sender.catalog import Catalog, FileNotAllowed
from sender.core.config import Settings
from sender.streamer import Streamer, StreamerBusy

router = APIRouter()


class StartStreaming(BaseModel):
    """What to stream, where to, and how fast."""

    file: str | None = Field(None, description="file name relative to the data folder (see GET /files)")
    receiver_host: str | None = Field(None, description="receiver ingest host (default from settings)")
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


@router.get("/files", summary="The DBN files this sender can stream, with what each holds")
def files(catalog: Annotated[Catalog, Depends(get_catalog)]) -> list[dict[str, object]]:
    return [msgspec.to_builtins(info) for info in catalog.files()]


@router.post("/start-streaming", summary="Stream one file to the receiver; returns at once with a run id")
def start_streaming(
    request: StartStreaming,
    catalog: Annotated[Catalog, Depends(get_catalog)],
    streamer: Annotated[Streamer, Depends(get_streamer)],
    settings: Annotated[Settings, Depends(get_config)],
) -> dict[str, object]:
    name = request.file or settings.default_file
    try:
        path = catalog.resolve(name)
    except FileNotAllowed as error:
        raise HTTPException(400, str(error)) from None
    except FileNotFoundError as error:
        raise HTTPException(404, str(error)) from None
    info = catalog.describe(path)
    if not info.streamable:
        raise HTTPException(422, f"{info.name}: {info.problem}")
    receiver = (
        request.receiver_host or settings.receiver_host,
        request.receiver_port or settings.receiver_port,
    )
    try:
        job = streamer.start(info, path, receiver, request.speed)
    except StreamerBusy as error:
        raise HTTPException(409, str(error)) from None
    return job.as_dict()


@router.post("/stop", summary="Stop the running stream (the receiver is told why)")
def stop(streamer: Annotated[Streamer, Depends(get_streamer)]) -> dict[str, object]:
    stopped = streamer.stop()
    job = streamer.job
    return {"stopped": stopped, "run": job.as_dict() if job else None}


@router.get("/status", summary="State, progress, rate and errors of the current or last stream")
def status(streamer: Annotated[Streamer, Depends(get_streamer)]) -> dict[str, object]:
    job = streamer.job
    return {
        "service": "sender",
        "state": job.state.value if job else "idle",
        "run": job.as_dict() if job else None,
    }
