"""Each service's own /metrics: read from the service's state when scraped, equal to what /status says, and
counters that never go down when a new run replaces the last one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from obm_shared.dbn_file import open_mbo_file
from orchestrator.book_reads import BookReads, book_query
from orchestrator.main import create_app as orchestrator_app
from receiver.book.adapter import apply_records
from receiver.core.config import Settings
from receiver.ingest import Receiver
from receiver.main import create_app as receiver_app
from sender.main import create_app as sender_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scrape: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in scrape, f"{name}{labels or ''} is not in /metrics"
    return scrape[key]


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Receiver]]:
    """The receiver's app in process, its Receiver not listening (records are applied to its runs here)."""
    settings = Settings(output_dir=tmp_path, output_enabled=False)
    app = receiver_app(settings)
    app.state.receiver = Receiver(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        yield client, app.state.receiver


async def test_receiver_counts_equal_its_status_and_add_up_over_runs(
    receiver: tuple[httpx.AsyncClient, Receiver], clx5: Path
) -> None:
    client, service = receiver
    before = samples((await client.get("/metrics")).text)
    assert value(before, "obm_run_state", state="idle") == 1
    assert value(before, "obm_records_applied_total") == 0

    runs = []
    for records_per_run in (20_000, 38_212):
        run = await service.new_run()
        for batch in open_mbo_file(clx5).batches(records_per_run):
            apply_records(run.market, batch)
            run.validator.records_received += len(batch)
            break
        runs.append((await client.get("/status")).json()["run"])
    scrape = samples((await client.get("/metrics")).text)

    status = runs[-1]
    assert value(scrape, "obm_run_state", state=status["state"]) == 1
    assert sum(value(scrape, "obm_run_state", state=state) for state in ("ready", "done", "failed")) == 1
    for name, field in (
        ("obm_records_applied_total", "applied"),
        ("obm_records_ignored_total", "ignored"),
        ("obm_events_total", "events"),
    ):
        expected = sum(run["accounting"][field] for run in runs)
        assert value(scrape, name) == expected, (
            f"{name}: {value(scrape, name)}, the runs' /status: {expected}"
        )
    for reason in {reason for run in runs for reason in run["accounting"]["skipped"]}:
        expected = sum(run["accounting"]["skipped"].get(reason, 0) for run in runs)
        assert value(scrape, "obm_records_skipped_total", reason=reason) == expected, reason
    assert value(scrape, "obm_records_received_total") == sum(run["records_received"] for run in runs)
    assert value(scrape, "obm_records_applied_total") > runs[-1]["accounting"]["applied"], (
        "the first run's records must still count once the second has replaced it"
    )
    assert value(scrape, "obm_ingest_records_per_second") == 0, "no stream is being received"


async def test_a_rejected_connection_and_a_protocol_error_are_counted_by_cause_and_kind(
    receiver: tuple[httpx.AsyncClient, Receiver],
) -> None:
    client, service = receiver
    service.rejected_connections["unauthenticated"] += 2
    service.protocol_errors["malformed_frame"] += 1
    scrape = samples((await client.get("/metrics")).text)
    assert value(scrape, "obm_rejected_connections_total", cause="unauthenticated") == 2
    assert value(scrape, "obm_protocol_errors_total", kind="malformed_frame") == 1
    assert value(scrape, "obm_protocol_errors_total", kind="not_mbo") == 0, "every known kind shows, from 0"


def test_every_service_serves_its_own_metrics_beside_the_others_in_one_process(tmp_path: Path) -> None:
    apps = {
        "receiver": receiver_app(Settings(output_dir=tmp_path, ingest_port=0)),
        "sender": sender_app(),
        "orchestrator": orchestrator_app(),
    }
    own = {
        "receiver": "obm_records_applied_total",
        "sender": "obm_records_sent_total",
        "orchestrator": "obm_live_clients",
    }
    for name, app in apps.items():
        with TestClient(app) as client:  # started: the service's state exists
            names = {sample_name for sample_name, _ in samples(client.get("/metrics").text)}
        assert own[name] in names, f"{name}'s /metrics lacks {own[name]}"
        others = {own[other] for other in own if other != name}
        assert not names & others, f"{name}'s /metrics shows another service's figures: {names & others}"


async def test_orchestrator_counts_what_its_read_cache_asks_and_keeps() -> None:
    app = orchestrator_app()

    class Receiver:
        async def request_bytes(self, method: str, path: str, **kwargs: object) -> bytes:
            return b'{"books":[{"instrument_id":1,"publisher_id":null,"bids":[1,2,3],"asks":[]}]}'

    app.state.books = BookReads(Receiver(), max_age_seconds=60)
    for depth in (3, 7, 10, 10):
        await app.state.books.read(book_query(depth, None, None, per_publisher=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
        scrape = samples((await client.get("/metrics")).text)
    assert value(scrape, "obm_read_cache_upstream_calls_total") == 1, "depths 3, 7 and 10 share bucket 10"
    assert value(scrape, "obm_read_cache_entries") == 3, "the bucket's answer and the two cut from it"
