"""The status of a run as the API reports it: state, counts, rate and errors."""

from __future__ import annotations

from receiver.processing import Run, RunState


def run_status(run: Run) -> dict[str, object]:
    """Counts and state of ``run``, JSON-ready."""
    accounting = run.market.accounting
    elapsed = run.elapsed_seconds()
    return {
        "run_id": run.run_id,
        "state": run.state.value,
        "source": run.metadata.source if run.metadata else None,
        "records_expected": run.metadata.record_count if run.metadata else None,
        "records_received": run.records_received,
        "records_sent_by_sender": run.sender_totals.records_sent if run.sender_totals else None,
        "accounting": accounting.as_dict(),
        "pending_records": run.records_received - accounting.records,
        "accounted": accounting.balanced
        and (run.state != RunState.DONE or accounting.records == run.records_received),
        "events": accounting.events,
        "elapsed_seconds": round(elapsed, 6),
        "records_per_second": round(accounting.records / elapsed) if elapsed > 0 else 0,
        "output_lines": run.output.lines_written,
        "protocol_errors": dict(run.protocol_errors),
        "last_error": run.last_error,
    }
