"""The receiver's FastAPI app: HTTP API plus the TCP ingest server, started and stopped with the app."""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from obm_shared.service import serve, service_app
from receiver.api.routes import actions, reads
from receiver.core.config import Settings
from receiver.ingest import Receiver
from receiver.metrics import add_receiver_metrics


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app, with its ingest server bound to the app's lifetime."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        receiver = Receiver(settings)
        await receiver.start()
        app.state.receiver = receiver
        yield
        await receiver.close()

    app = service_app(
        settings,
        [actions, reads],
        title="Order book receiver",
        description="Decodes the MBO record stream on its TCP ingest port and rebuilds L3 order books.",
        lifespan=lifespan,
    )
    add_receiver_metrics(app)
    return app


def main() -> None:
    """Run the receiver with uvicorn (SIGTERM shuts it down cleanly)."""
    settings = Settings()
    # The books are millions of long-lived objects: move what exists at start-up out of the collector's view
    # and collect the young generation less often, so garbage collection does not rescan them constantly.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    # The JSON writer thread needs the GIL for each batch it encodes: a shorter switch interval hands it over
    # sooner, so ingest does not leave the writer behind.
    sys.setswitchinterval(0.001)
    serve("receiver", create_app(settings), settings)


if __name__ == "__main__":
    main()
