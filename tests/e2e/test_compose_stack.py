"""The three containers as a user runs them: healthchecks, replays through the published ports, failures."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.conftest import CLX5, real_file
from tests.e2e.conftest import ComposeStack

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_SECONDS = 180


def services_status(stack: ComposeStack) -> dict[str, Any]:
    status: dict[str, Any] = httpx.get(f"{stack.orchestrator}/api/microservices/status", timeout=10).json()
    return status


def wait_for_run_end(stack: ComposeStack) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        status = services_status(stack)
        if status["receiver"]["status"]["state"] in ("done", "failed") and (
            status["sender"]["status"]["state"] != "streaming"
        ):
            return status
        time.sleep(0.2)
    raise AssertionError(f"run did not end within {RUN_TIMEOUT_SECONDS} s: {status}")


def test_every_container_is_healthy_and_the_demo_data_was_seeded(compose_stack: ComposeStack) -> None:
    listing = compose_stack.docker_compose("ps", "--all", "--format", "json").stdout
    rows = [json.loads(line) for line in listing.splitlines() if line.strip()]
    containers = {row["Service"]: row for row in (rows[0] if rows and isinstance(rows[0], list) else rows)}
    for service in ("orchestrator", "sender", "receiver"):
        assert containers[service]["Health"] == "healthy", f"{service}: {containers[service]}"
    assert containers["demo-data"]["ExitCode"] == 0, "seeding the demo data failed"
    files = httpx.get(f"{compose_stack.orchestrator}/api/files", timeout=30).json()
    demo = next(item for item in files if item["name"] == "demo/demo.mbo.dbn")
    assert demo["streamable"] and demo["record_count"] > 0
    page = httpx.get(f"{compose_stack.orchestrator}/", timeout=5)
    assert page.status_code == 200 and "<html" in page.text.lower(), "the web UI is not served at /"


@pytest.mark.realdata
def test_clx5_from_the_users_data_folder_gives_the_known_book(compose_stack: ComposeStack) -> None:
    real_file(CLX5)
    started = httpx.post(
        f"{compose_stack.orchestrator}/api/start-streaming",
        json={"file": f"user/{CLX5}"},
        headers=compose_stack.auth,
        timeout=30,
    )
    assert started.status_code == 200, started.text
    status = wait_for_run_end(compose_stack)
    run = status["receiver"]["status"]["run"]
    assert run["state"] == "done", run
    assert status["receiver"]["status"]["hot_path"] == "compiled", "the image must run the compiled book"
    assert status["sender"]["status"]["run"]["records_sent"] == run["records_received"] == 38_212
    assert run["accounted"] is True
    assert run["accounting"]["skipped"] == {"cancel_unknown_order": 1224}
    assert run["output_lines"] == run["events"] == 32_053

    book = httpx.get(
        f"{compose_stack.orchestrator}/api/order-book",
        params={"depth": 1, "per_publisher": False},
        timeout=10,
    ).json()["books"][0]
    assert (book["orders"], book["bid_levels"], book["ask_levels"]) == (147, 61, 52)
    assert (book["best_bid"]["price"], book["best_bid"]["size"]) == ("65.4", 1), (
        f"best bid {book['best_bid']}"
    )
    assert (book["best_ask"]["price"], book["best_ask"]["size"]) == ("64.78", 3), (
        f"best ask {book['best_ask']}"
    )
    assert book["crossed"] is True

    lines = compose_stack.docker_compose(
        "exec", "-T", "receiver", "sh", "-c", f"wc -l < /output/{run['run_id']}.jsonl"
    ).stdout
    assert int(lines) == 32_053, "the JSON lines on the output volume do not cover every event"


def test_demo_data_replays_and_its_event_lines_are_served(compose_stack: ComposeStack) -> None:
    assert (
        httpx.post(
            f"{compose_stack.orchestrator}/api/start-streaming",
            json={},
            headers=compose_stack.auth,
            timeout=30,
        ).status_code
        == 200
    )
    run = wait_for_run_end(compose_stack)["receiver"]["status"]["run"]
    assert run["state"] == "done", run
    assert run["accounting"]["skipped"] == {}
    assert run["accounted"] is True
    page = httpx.get(
        f"{compose_stack.orchestrator}/api/events", params={"start": 5, "limit": 2}, timeout=10
    ).json()
    assert page["total"] == run["events"] > 0
    assert len(page["events"]) == 2 and {"bids", "asks", "crossed", "symbol"} <= page["events"][0].keys()


@pytest.mark.realdata
def test_receiver_stopped_mid_stream_is_a_failed_run_not_a_hang(compose_stack: ComposeStack) -> None:
    real_file(CLX5)
    started = httpx.post(
        f"{compose_stack.orchestrator}/api/start-streaming",
        json={"file": f"user/{CLX5}", "speed": 50},
        headers=compose_stack.auth,
        timeout=30,
    )
    assert started.status_code == 200, started.text
    time.sleep(2)
    compose_stack.docker_compose("stop", "receiver")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = services_status(compose_stack)
            sender_run = status["sender"]["status"]["run"]
            if not status["receiver"]["reachable"] and sender_run["state"] == "failed":
                break
            time.sleep(0.5)
        assert not status["receiver"]["reachable"], "a stopped receiver must show as unreachable"
        assert "receiver" in status["receiver"]["error"]
        assert sender_run["state"] == "failed", f"sender should fail the run, not hang: {sender_run}"
        assert "receiver at receiver:9000" in sender_run["error"]
        assert 0 < sender_run["records_sent"] < 38_212
    finally:
        compose_stack.docker_compose("up", "-d", "--wait", "receiver")


def test_the_containers_change_state_only_for_the_tokens_holder(compose_stack: ComposeStack) -> None:
    for url in (
        f"{compose_stack.published('orchestrator')}/api/stop",
        f"{compose_stack.published('sender')}/stop",
        f"{compose_stack.published('receiver')}/start-processing",
    ):
        refused = httpx.post(url, json={}, timeout=10)
        assert refused.status_code == 401, f"{url} without the token: {refused.status_code} {refused.text}"
    stopped = httpx.post(
        f"{compose_stack.orchestrator}/api/stop", json={}, headers=compose_stack.auth, timeout=10
    )
    assert stopped.status_code == 200, f"the orchestrator's token did not reach the sender: {stopped.text}"
