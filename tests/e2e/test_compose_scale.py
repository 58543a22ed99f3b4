"""The scale profile as a user runs it (`make up-scale RECEIVERS=2`): the real images, records through the NATS
image to two receivers that deal the partitions between them, and the orchestrator's API showing one market."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from orderbook_cli.replay import replay_file
from receiver.book.views import books_document
from tests.conftest import DATA_DIR, DBEQ, real_file
from tests.e2e.conftest import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.realdata]

PROJECT = "obm-e2e-scale"
RECEIVERS = 2
DEPTH = 1000
RUN_TIMEOUT_SECONDS = 180


class ScaleStack:
    """``docker compose --profile scale up --scale receiver=2`` of the project's images, on ephemeral ports."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.environment = {
            **os.environ,
            "COMPOSE_PROJECT_NAME": PROJECT,
            "OBM_API_TOKEN": token,
            "OBM_TRANSPORT": "nats",
            "OBM_USER_DATA": str(DATA_DIR.resolve()),
        }

    def compose(self, *args: str) -> str:
        files = ["-f", "docker-compose.yml", "-f", "tests/e2e/docker-compose.e2e.yml"]
        done = subprocess.run(
            ["docker", "compose", "-p", PROJECT, *files, "--profile", "scale", *args],
            cwd=REPO,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"docker compose {' '.join(args)}: {done.stderr[-2000:]}"
        return done.stdout

    @property
    def orchestrator(self) -> str:
        host, port = self.compose("port", "orchestrator", "8000").strip().rsplit(":", 1)
        return f"http://{host}:{port}"


@pytest.fixture(scope="module")
def scale_stack() -> Iterator[ScaleStack]:
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine answers: run `make images` (it installs and starts one where needed)")
    stack = ScaleStack(secrets.token_urlsafe(32))
    try:
        stack.compose("up", "-d", "--wait", "--scale", f"receiver={RECEIVERS}")
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans")


def run_ended(stack: ScaleStack, run_id: str) -> dict[str, Any]:
    """The system's status once the run has ended on the sender and on every receiver."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        status: dict[str, Any] = httpx.get(
            f"{stack.orchestrator}/api/microservices/status", timeout=10
        ).json()
        receivers = (status["receiver"]["status"] or {}).get("receivers") or []
        if (
            status["sender"]["status"]["state"] != "streaming"
            and len(receivers) == RECEIVERS
            and all(each["run_id"] == run_id and each["state"] in ("done", "failed") for each in receivers)
        ):
            return status
        time.sleep(0.5)
    raise AssertionError(
        f"run {run_id} did not end on every receiver within {RUN_TIMEOUT_SECONDS} s: {status}"
    )


def test_two_receivers_book_dbeq_and_the_api_shows_one_market(scale_stack: ScaleStack) -> None:
    path = real_file(DBEQ)
    started = httpx.post(
        f"{scale_stack.orchestrator}/api/start-streaming",
        json={"file": f"user/{DBEQ}"},
        headers={"Authorization": f"Bearer {scale_stack.token}"},
        timeout=30,
    )
    assert started.status_code == 200, started.text
    status = run_ended(scale_stack, started.json()["run_id"])

    receivers = status["receiver"]["status"]["receivers"]
    assert [each["state"] for each in receivers] == ["done"] * RECEIVERS, (
        f"a receiver's run failed: {receivers}"
    )
    partitions = [set(each["partitions"]) for each in receivers]
    assert not partitions[0] & partitions[1], f"two receivers claimed one partition: {partitions}"
    held = [each["instruments"] for each in receivers]
    assert sorted(len(instruments) for instruments in held) == [1, 1], f"GOOG and GOOGL not one each: {held}"
    for each in receivers:
        assert each["partition_lag"] == {str(partition): 0 for partition in each["partitions"]}, each
    run = status["receiver"]["status"]["run"]
    sent = status["sender"]["status"]["run"]["records_sent"]
    accounting = run["accounting"]
    assert sent == run["records_received"] == accounting["records"], (
        f"sent {sent}, received together {run['records_received']}, accounted {accounting['records']}"
    )
    assert accounting["records"] == accounting["applied"] + accounting["ignored"] + sum(
        accounting["skipped"].values()
    ), f"the records are not all accounted for: {accounting}"

    merged = httpx.get(
        f"{scale_stack.orchestrator}/api/order-book",
        params={"depth": DEPTH, "per_publisher": "true"},
        timeout=30,
    ).json()
    market = replay_file(path, DEPTH, progress=False)
    expected = msgspec.json.decode(msgspec.json.encode(books_document(market, DEPTH, None, None, True)))
    assert sent == market.accounting.records, f"sent {sent} of the file's {market.accounting.records} records"
    for instrument_id in sorted({book["instrument_id"] for book in expected["books"]}):
        got = [book for book in merged["books"] if book["instrument_id"] == instrument_id]
        books = [book for book in expected["books"] if book["instrument_id"] == instrument_id]
        assert got == books, f"instrument {instrument_id}: the merged books differ from a replay of the file"
