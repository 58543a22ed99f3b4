"""The sender's Prometheus metrics, read from its streamer and gateway when scraped (streaming counts nothing twice)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from fastapi import FastAPI
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from starlette.datastructures import State

from obm_shared.metrics import ServiceCollector, add_service_metrics, counter, state_gauge
from sender.gateway.server import Gateway
from sender.streamer import Streamer, StreamJob, StreamState


def send_rate(job: StreamJob | None) -> float:
    """Records sent per second by the running stream, over its elapsed time; 0 when none is running."""
    if job is None or job.state != StreamState.STREAMING:
        return 0.0
    elapsed = time.monotonic() - job.started_at
    return job.records_sent / elapsed if elapsed > 0 else 0.0


class SenderMetrics(ServiceCollector):
    """Records sent and streams failed over the process's life, and the current stream's state and rate."""

    def read(self, state: State) -> Iterable[Metric]:
        streamer: Streamer | None = getattr(state, "streamer", None)
        job = streamer.job if streamer is not None else None
        yield counter(
            "obm_records_sent_total",
            "MBO records sent to a receiver",
            streamer.records_sent_total if streamer is not None else 0,
        )
        yield GaugeMetricFamily(
            "obm_send_records_per_second",
            "Records sent per second by the running stream, over its elapsed time (0 when none is running)",
            value=send_rate(job),
        )
        yield state_gauge(
            "obm_run_state",
            "The current stream's state (1) among all states (0)",
            [str(state) for state in StreamState],
            str(job.state if job is not None else StreamState.IDLE),
        )
        yield counter(
            "obm_stream_failures_total",
            "Streams that ended failed (not done, not stopped by the user)",
            streamer.streams_failed if streamer is not None else 0,
        )
        gateway: Gateway | None = getattr(state, "gateway", None)
        yield GaugeMetricFamily(
            "obm_gateway_sessions",
            "Open sessions of the Databento-compatible live gateway",
            value=len(gateway.sessions) if gateway is not None else 0,
        )
        yield counter(
            "obm_gateway_records_sent_total",
            "MBO records sent to live gateway clients",
            gateway.records_sent() if gateway is not None else 0,
        )
        yield counter(
            "obm_gateway_auth_failures_total",
            "Live gateway clients refused for a wrong or missing API key",
            gateway.auth_failures_total if gateway is not None else 0,
        )


def add_sender_metrics(app: FastAPI) -> None:
    """Serve the sender's own metrics at ``GET /metrics`` (with :func:`obm_shared.metrics.add_metrics`)."""
    add_service_metrics(app, SenderMetrics(app.state))
