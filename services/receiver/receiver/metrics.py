"""The receiver's Prometheus metrics, read from its runs when scraped (ingest counts nothing twice)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from fastapi import FastAPI
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from starlette.datastructures import State

from obm_shared.framing import ProtocolError
from obm_shared.metrics import ServiceCollector, add_service_metrics, counter, counter_by, state_gauge
from receiver.book.accounting import SkipReason
from receiver.ingest import Receiver
from receiver.processing import Run, RunState
from receiver.run_totals import RunTotals


def ingest_rate(run: Run | None) -> float:
    """Records applied per second by the run being received, over its elapsed time; 0 when none is."""
    if run is None or run.state != RunState.RECEIVING:
        return 0.0
    elapsed = run.elapsed_seconds()
    return run.market.accounting.records / elapsed if elapsed > 0 else 0.0


class ReceiverMetrics(ServiceCollector):
    """Counts summed over the receiver's runs (see :mod:`receiver.run_totals`), its connection counts, and
    the current run's state and rate."""

    def read(self, state: State) -> Iterable[Metric]:
        receiver: Receiver | None = getattr(state, "receiver", None)
        run = receiver.run if receiver is not None else None
        totals = receiver.past_runs.with_run(run) if receiver is not None else RunTotals()
        accounting = totals.accounting
        protocol_errors = receiver.protocol_errors if receiver is not None else Counter[str]()
        rejected = receiver.rejected_connections if receiver is not None else Counter[str]()
        yield counter(
            "obm_records_received_total", "MBO records received on the ingest port", totals.records_received
        )
        yield counter("obm_records_applied_total", "Records applied to a book", accounting.applied)
        yield counter(
            "obm_records_ignored_total",
            "Records that never change a book (trades, fills)",
            accounting.ignored,
        )
        yield counter_by(
            "obm_records_skipped_total",
            "Records that could not be applied, by reason",
            "reason",
            Counter({str(reason): count for reason, count in accounting.skipped.items()}),
            known=[str(reason) for reason in SkipReason],
        )
        yield counter(
            "obm_events_total", "Complete book events applied (records carrying F_LAST)", accounting.events
        )
        yield counter_by(
            "obm_protocol_errors_total",
            "Wire protocol errors, by kind",
            "kind",
            protocol_errors,
            known=[kind.code for kind in ProtocolError.__subclasses__()],
        )
        yield counter_by(
            "obm_rejected_connections_total",
            "Ingest connections closed without a stream, by cause",
            "cause",
            rejected,
        )
        yield state_gauge(
            "obm_run_state",
            "The current run's state (1) among all states (0)",
            [str(state) for state in RunState],
            str(run.state if run is not None else RunState.IDLE),
        )
        yield GaugeMetricFamily(
            "obm_ingest_records_per_second",
            "Records applied per second by the run being received, over its elapsed time (0 when none is)",
            value=ingest_rate(run),
        )
        yield counter(
            "obm_output_bytes_total", "Bytes of event lines written to output files", totals.output_bytes
        )
        yield counter(
            "obm_output_write_errors_total",
            "Runs whose output file could not be written",
            totals.output_write_errors,
        )


def add_receiver_metrics(app: FastAPI) -> None:
    """Serve the receiver's own metrics at ``GET /metrics`` (with :func:`obm_shared.metrics.add_metrics`)."""
    add_service_metrics(app, ReceiverMetrics(app.state))
