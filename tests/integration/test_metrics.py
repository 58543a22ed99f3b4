"""/metrics of the three services as processes, after a real replay: the figures are those /status gives,
and the counters keep what earlier runs counted."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import Stack
from tests.integration.test_pipeline import start, wait_for_run_end
from tests.unit.test_metrics import Samples, samples, value

pytestmark = pytest.mark.integration


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    return samples(response.text)


def test_a_replay_is_counted_in_metrics_as_in_status(stack: Stack) -> None:
    receiver_before, sender_before = scrape(stack.receiver), scrape(stack.sender)
    assert start(stack).status_code == 200
    status = wait_for_run_end(stack)
    receiver_after, sender_after = scrape(stack.receiver), scrape(stack.sender)
    run = status["receiver"]["status"]["run"]
    sent = status["sender"]["status"]["run"]
    assert run["state"] == "done" and run["accounted"], run

    def added(name: str, **labels: str) -> float:
        return value(receiver_after, name, **labels) - value(receiver_before, name, **labels)

    assert added("obm_records_received_total") == run["records_received"]
    assert added("obm_records_applied_total") == run["accounting"]["applied"]
    assert added("obm_records_ignored_total") == run["accounting"]["ignored"]
    assert added("obm_events_total") == run["events"]
    for reason, count in run["accounting"]["skipped"].items():
        assert added("obm_records_skipped_total", reason=reason) == count, reason
    assert value(receiver_after, "obm_run_state", state="done") == 1
    assert value(receiver_after, "obm_ingest_records_per_second") == 0
    output = stack.output_dir / f"{run['run_id']}.jsonl"
    assert added("obm_output_bytes_total") == output.stat().st_size, "bytes written are the file's size"
    assert added("obm_output_write_errors_total") == 0

    records_sent = value(sender_after, "obm_records_sent_total") - value(
        sender_before, "obm_records_sent_total"
    )
    assert records_sent == sent["records_sent"] == run["records_received"]
    assert value(sender_after, "obm_run_state", state="done") == 1
    assert value(sender_after, "obm_stream_failures_total") == value(
        sender_before, "obm_stream_failures_total"
    )
    for name in ("obm_records_received_total", "obm_records_applied_total", "obm_events_total"):
        assert value(receiver_after, name) >= value(receiver_before, name), f"{name} went down"


def test_the_orchestrator_counts_book_reads_and_live_clients(stack: Stack) -> None:
    before = scrape(stack.orchestrator)
    for depth in (3, 7, 10):
        httpx.get(f"{stack.orchestrator}/api/order-book", params={"depth": depth}, timeout=5)
    after = scrape(stack.orchestrator)
    calls = value(after, "obm_read_cache_upstream_calls_total") - value(
        before, "obm_read_cache_upstream_calls_total"
    )
    assert 1 <= calls <= 3, f"three reads of one bucket cost {calls} receiver calls"
    assert value(after, "obm_read_cache_entries") >= 1
    assert value(after, "obm_live_clients") == 0
