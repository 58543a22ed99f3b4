"""The receiver booking a live feed from the sender's Databento-compatible gateway (issue 16): the same final
books, accounting and per-event lines as the TCP replay of the same file, through the orchestrator's API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import CLX5, DBEQ, real_file
from tests.integration.conftest import GATEWAY_KEY, Stack
from tests.integration.test_pipeline import start, wait_for_run_end

pytestmark = [pytest.mark.integration, pytest.mark.realdata]

EVERY_BOOK: dict[str, str | int] = {"depth": 1000, "per_publisher": "true"}


def run_result(stack: Stack) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """The run just ended: its status (done), its books at depth 1000, and its per-event lines file."""
    status = wait_for_run_end(stack)["receiver"]["status"]
    run = status["run"]
    assert run["state"] == "done", f"the run ended {run['state']}: {run.get('last_error')}"
    books = httpx.get(f"{stack.orchestrator}/api/order-book", params=EVERY_BOOK, timeout=10).json()
    lines = (stack.output_dir / f"{run['run_id']}.jsonl").read_bytes()
    return run, books, lines


def book_live(stack: Stack, dataset: str, symbols: list[str] | None) -> dict[str, Any]:
    source = {
        "host": "127.0.0.1",
        "port": stack.gateway_port,
        "dataset": dataset,
        "symbols": symbols,
        "start": 0,
        "api_key": GATEWAY_KEY,
    }
    answer = httpx.post(f"{stack.orchestrator}/api/start-live", json=source, headers=stack.auth, timeout=30)
    assert answer.status_code == 200, f"start-live answered {answer.status_code}: {answer.text}"
    assert GATEWAY_KEY not in answer.text, "the API key must never be returned"
    started: dict[str, Any] = answer.json()
    return started


@pytest.mark.parametrize(
    ("file", "dataset", "symbols"),
    [(CLX5, "GLBX.MDP3", ["CLX5"]), (DBEQ, "DBEQ.BASIC", None)],
    ids=["clx5", "dbeq-all-symbols"],
)
def test_booking_the_gateways_feed_equals_the_tcp_replay(
    stack: Stack, file: str, dataset: str, symbols: list[str] | None
) -> None:
    real_file(file)
    assert start(stack, file=f"real/{file}").status_code == 200
    replayed, replayed_books, replayed_lines = run_result(stack)

    started = book_live(stack, dataset, symbols)
    live, live_books, live_lines = run_result(stack)
    assert live["run_id"] == started["run_id"] != replayed["run_id"]
    assert live["source"] == f"live {dataset} from 127.0.0.1:{stack.gateway_port}"

    assert live["accounting"] == replayed["accounting"], "the live feed was accounted otherwise"
    assert live["records_received"] == replayed["records_received"]
    for answer in (live_books, replayed_books):
        answer.pop("run_id")
    assert live_books == replayed_books, "the books after the live feed differ from the replay's"
    assert live_lines.count(b"\n") == live["accounting"]["events"]
    assert live_lines == replayed_lines, "the per-event lines differ from the replay's"
