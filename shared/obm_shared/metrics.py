"""Prometheus metrics every service serves at ``GET /metrics``: HTTP latency here, each service's own counters
in its own modules (``obm_<what>_<unit>``, ``_total`` for counters, labels with small fixed value sets)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obm_shared.auth import READ_RESPONSES, RequireReadToken

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


class ServiceCollector(ABC):
    """A service's own metrics, read from its app's ``state`` when scraped, so counting costs the service
    nothing on its hot path. Each app has its own (one process may hold the apps of several services)."""

    def __init__(self, state: State) -> None:
        self.state = state

    def collect(self) -> Iterable[Metric]:
        return self.read(self.state)

    @abstractmethod
    def read(self, state: State) -> Iterable[Metric]:
        """Every metric family of the service (all of them, zero before the app has started)."""


def counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    """A counter without labels."""
    return CounterMetricFamily(name, documentation, value=value)


def counter_by(
    name: str, documentation: str, label: str, counts: Counter[str], known: Iterable[str] = ()
) -> CounterMetricFamily:
    """A counter with one sample per value of ``label``: every ``known`` value (0 until seen), then the rest."""
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value in dict.fromkeys([*known, *sorted(counts)]):
        family.add_metric([value], counts[value])
    return family


def state_gauge(name: str, documentation: str, states: Iterable[str], current: str) -> GaugeMetricFamily:
    """One sample per state: 1 for ``current``, 0 for every other."""
    family = GaugeMetricFamily(name, documentation, labels=["state"])
    for state in states:
        family.add_metric([state], 1 if state == current else 0)
    return family


metrics_router = APIRouter(dependencies=[RequireReadToken], responses=READ_RESPONSES)


@metrics_router.get("/metrics", summary="Prometheus metrics (text exposition format)", include_in_schema=True)
async def metrics(request: Request) -> Response:
    own: CollectorRegistry | None = getattr(request.app.state, "service_metrics", None)
    body = generate_latest() + (generate_latest(own) if own is not None else b"")
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def add_service_metrics(app: FastAPI, collector: ServiceCollector) -> None:
    """Serve ``collector``'s metrics after the process-wide ones at ``app``'s ``GET /metrics``."""
    registry = CollectorRegistry(auto_describe=True)  # a name given twice is refused here, not at a scrape
    registry.register(collector)
    app.state.service_metrics = registry


def add_metrics(app: FastAPI) -> None:
    """Serve ``GET /metrics`` and time every request of ``app``."""
    app.include_router(metrics_router)
    app.add_middleware(HttpLatency)
