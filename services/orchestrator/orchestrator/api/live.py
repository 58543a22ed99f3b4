"""The live WebSocket under /api: book, trades, progress and health pushed at screen pace."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket, status

from obm_shared.auth import token_matches
from orchestrator.core.config import Settings
from orchestrator.live import LiveFeed

router = APIRouter(prefix="/api")

LIVE_SUBPROTOCOL = "obm.live"
"""The subprotocol the server accepts with (a browser refuses an answer naming none it offered)."""
BEARER_SUBPROTOCOL = "bearer."
"""Prefix of the subprotocol carrying the token: a browser cannot set headers on a WebSocket."""


def offered_token(subprotocols: list[str]) -> str | None:
    """The token a client offers as the subprotocol ``bearer.<token>``, if any."""
    for offered in subprotocols:
        if offered.startswith(BEARER_SUBPROTOCOL):
            return offered.removeprefix(BEARER_SUBPROTOCOL)
    return None


@router.websocket("/live")
async def live(websocket: WebSocket) -> None:
    """Frames of the watched book, the tape and the services' status; send ``subscribe`` to change the book.

    With ``OBM_READ_AUTH=token`` the client offers the subprotocols ``obm.live`` and ``bearer.<token>``;
    without a valid token the socket is closed with 1008 (policy violation) and a reason.
    """
    settings: Settings = websocket.app.state.settings
    subprotocols: list[str] = websocket.scope.get("subprotocols", [])
    # Accepted before the check, so the client gets the close code and its reason, not a bare HTTP 403.
    await websocket.accept(subprotocol=LIVE_SUBPROTOCOL if LIVE_SUBPROTOCOL in subprotocols else None)
    if settings.read_auth == "token" and not token_matches(settings.api_token, offered_token(subprotocols)):
        await websocket.close(
            status.WS_1008_POLICY_VIOLATION,
            reason="a valid API token is required: subprotocol bearer.<OBM_API_TOKEN>",
        )
        return
    feed: LiveFeed = websocket.app.state.live
    await feed.serve(websocket.receive_text, websocket.send_text)
