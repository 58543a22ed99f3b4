"""Prometheus metrics every service serves at ``GET /metrics``: HTTP latency here, each service's own counters
in its own modules (``obm_<what>_<unit>``, ``_total`` for counters, labels with small fixed value sets)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obm_shared.auth import RequireReadToken

HTTP_LATENCY = Histogram(
    "obm_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status code",
    ["route", "method", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)


class HttpLatency:
    """ASGI middleware timing every HTTP request; the route label is the matched template, never the raw path
    (which a client chooses)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            HTTP_LATENCY.labels(template, scope["method"], str(status)).observe(time.perf_counter() - started)


metrics_router = APIRouter(dependencies=[RequireReadToken])


@metrics_router.get("/metrics", summary="Prometheus metrics (text exposition format)", include_in_schema=True)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def add_metrics(app: FastAPI) -> None:
    """Serve ``GET /metrics`` and time every request of ``app``."""
    app.include_router(metrics_router)
    app.add_middleware(HttpLatency)
