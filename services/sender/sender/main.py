"""The sender's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from obm_shared.service import serve, service_app
from sender.api import gateway_routes
from sender.api.routes import actions, reads
from sender.catalog import Catalog
from sender.core.config import Settings
from sender.gateway.server import Gateway
from sender.metrics import add_sender_metrics
from sender.streamer import Streamer


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; a running stream is stopped (and the receiver told) and gateway sessions end when it shuts down."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.catalog = catalog = Catalog(settings.data_dir)
        app.state.streamer = streamer = Streamer(settings)
        app.state.gateway = gateway = Gateway(settings, catalog)
        await gateway.start()
        yield
        streamer.stop()
        await gateway.close()

    app = service_app(
        settings,
        [actions, reads, gateway_routes.actions, gateway_routes.reads],
        title="Order book sender",
        description="Reads Databento DBN MBO files and streams their records to the receiver over TCP.",
        lifespan=lifespan,
    )
    add_sender_metrics(app)
    return app


def main() -> None:
    """Run the sender with uvicorn (SIGTERM shuts it down cleanly)."""
    settings = Settings()
    serve("sender", create_app(settings), settings)


if __name__ == "__main__":
    main()
