"""The orchestrator's FastAPI app: /api, the web UI at /, its own /status."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from obm_shared.auth import READ_RESPONSES, RequireReadToken
from obm_shared.service import serve, service_app
from orchestrator.api.live import router as live_router
from orchestrator.api.routes import actions, reads
from orchestrator.book_fast_path import BookReadFastPath
from orchestrator.book_reads import BookReads
from orchestrator.clients import ServiceClient, ServiceRefused, ServiceUnavailable
from orchestrator.core.config import Settings
from orchestrator.live import LiveFeed
from orchestrator.metrics import add_orchestrator_metrics
from orchestrator.receiver_view import ReceiverView
from orchestrator.receivers import ReceiverSet
from orchestrator.timeline_reads import TimelineReads


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app, with one HTTP client per downstream service for its lifetime."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.started_at = time.monotonic()
        app.state.start_lock = asyncio.Lock()
        app.state.sender = ServiceClient(
            "sender", settings.sender_url, settings.request_timeout_seconds, settings.api_token
        )
        receivers = ReceiverSet(
            settings.receivers,
            settings.request_timeout_seconds,
            settings.api_token,
            settings.receiver_resolve_seconds,
        )
        await receivers.start()
        # the first receiver's client (the one receiver by default); every reader asks the view of them all
        app.state.receiver = receivers.clients[0]
        app.state.receivers = ReceiverView(receivers, settings.book_read_max_age_seconds)
        app.state.books = BookReads(app.state.receivers, settings.book_read_max_age_seconds)
        app.state.timelines = TimelineReads(app.state.receivers, settings.timeline_max_age_seconds)
        app.state.live = LiveFeed(
            app.state.sender,
            app.state.receivers,
            app.state.books,
            settings.live_updates_per_second,
            app.state.started_at,
        )
        app.state.live.start()
        yield
        await app.state.live.stop()
        await app.state.sender.close()
        await receivers.close()

    app = service_app(
        settings,
        [actions, reads, live_router],
        title="Order book orchestrator",
        description="Web UI and API: starts replays across the sender and receiver and serves their books.",
        lifespan=lifespan,
    )
    add_orchestrator_metrics(app)

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, error: ServiceUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(error), "service": error.service}, status_code=503)

    @app.exception_handler(ServiceRefused)
    async def refused(request: Request, error: ServiceRefused) -> JSONResponse:
        # A service refusing the orchestrator's token is the deployment's fault, not the caller's: no 401.
        caller_error = 400 <= error.status_code < 500 and error.status_code != 401
        if not caller_error:
            return JSONResponse({"detail": str(error), "service": error.service}, status_code=502)
        # The service's own fields pass on too (a 409 for a point in history says how far the run has got).
        body = {**error.extra, "detail": str(error), "service": error.service}
        return JSONResponse(body, status_code=error.status_code)

    @app.get(
        "/status",
        summary="The orchestrator's own health",
        dependencies=[RequireReadToken],
        responses=READ_RESPONSES,
    )
    async def status() -> dict[str, object]:
        return {"service": "orchestrator", "state": "up"}

    if settings.frontend_dir.is_dir():
        app.mount("/", StaticFiles(directory=settings.frontend_dir, html=True), name="frontend")
    return app


def main() -> None:
    """Run the orchestrator with uvicorn (SIGTERM shuts it down cleanly)."""
    settings = Settings()
    app = create_app(settings)
    # What lives as long as the process leaves the collector's view, so a full collection pauses reads less.
    gc.freeze()
    # One live frame goes to every client: deflating each copy costs more CPU than the bytes it saves.
    serve("orchestrator", BookReadFastPath(app), settings, ws_per_message_deflate=False)


if __name__ == "__main__":
    main()
