"""HTTP API of the live gateway: its sessions, and stopping or pacing one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from obm_shared.auth import (
    GUARDED_RESPONSES,
    READ_RESPONSES,
    RequireReadToken,
    RequireToken,
    Responses,
    refusal,
)
from obm_shared.limits import Speed
from sender.gateway.server import Gateway

actions = APIRouter(dependencies=[RequireToken], responses=GUARDED_RESPONSES, tags=["gateway"])
reads = APIRouter(dependencies=[RequireReadToken], responses=READ_RESPONSES, tags=["gateway"])
_NO_SESSION: Responses = {404: refusal("no open gateway session with this id")}
_PACE_REFUSALS: Responses = {**_NO_SESSION, 400: refusal("the body cannot be decoded (not UTF-8 JSON)")}


class SessionSpeed(BaseModel):
    """A session's market-time speed; omit (or null) for as fast as the client reads."""

    speed: Speed | None = None


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


@reads.get("/gateway/sessions", summary="The live gateway's open and recently ended sessions")
async def sessions(gateway: Annotated[Gateway, Depends(get_gateway)]) -> dict[str, object]:
    return gateway.as_dict()


@actions.post("/gateway/sessions/{session_id}/stop", summary="End an open session", responses=_NO_SESSION)
async def stop_session(
    session_id: int, gateway: Annotated[Gateway, Depends(get_gateway)]
) -> dict[str, object]:
    if not gateway.stop(session_id):
        raise HTTPException(404, f"no open gateway session {session_id}")
    return {"stopped": session_id}


@actions.post(
    "/gateway/sessions/{session_id}/speed",
    summary="Pace an open session in market time",
    responses=_PACE_REFUSALS,
)
async def pace_session(
    session_id: int, body: SessionSpeed, gateway: Annotated[Gateway, Depends(get_gateway)]
) -> dict[str, object]:
    session = gateway.sessions.get(session_id)
    if session is None:
        raise HTTPException(404, f"no open gateway session {session_id}")
    session.set_speed(body.speed)
    return session.as_dict()
