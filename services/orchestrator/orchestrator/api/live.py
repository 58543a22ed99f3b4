"""The live WebSocket under /api: book, trades, progress and health pushed at screen pace."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from orchestrator.live import LiveFeed

router = APIRouter(prefix="/api")


@router.websocket("/live")
async def live(websocket: WebSocket) -> None:
    """Frames of the watched book, the tape and the services' status; send ``subscribe`` to change the book."""
    feed: LiveFeed = websocket.app.state.live
    await websocket.accept()
    await feed.serve(websocket.receive_text, websocket.send_text)
