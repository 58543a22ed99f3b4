"""The orchestrator's Prometheus metrics, read from its live feed and book reads when scraped."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from starlette.datastructures import State

from obm_shared.metrics import ServiceCollector, add_service_metrics, counter
from orchestrator.book_reads import BookReads
from orchestrator.live import LiveFeed


class OrchestratorMetrics(ServiceCollector):
    """Live-feed clients and frames, and what the book read cache asks of the receiver."""

    def read(self, state: State) -> Iterable[Metric]:
        live: LiveFeed | None = getattr(state, "live", None)
        books: BookReads | None = getattr(state, "books", None)
        yield GaugeMetricFamily(
            "obm_live_clients", "Live-feed WebSockets connected", value=live.subscribers if live else 0
        )
        yield counter(
            "obm_live_frames_total",
            "Live-feed frames offered to clients (a slow client's unsent frame is replaced by the next)",
            live.frames_offered if live else 0,
        )
        yield counter(
            "obm_read_cache_upstream_calls_total",
            "Book reads the cache asked of the receiver",
            books.cache.upstream_calls if books else 0,
        )
        yield GaugeMetricFamily(
            "obm_read_cache_entries", "Book answers the read cache keeps", value=books.entries if books else 0
        )


def add_orchestrator_metrics(app: FastAPI) -> None:
    """Serve the orchestrator's own metrics at ``GET /metrics`` (with :func:`obm_shared.metrics.add_metrics`)."""
    add_service_metrics(app, OrchestratorMetrics(app.state))
