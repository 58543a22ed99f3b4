"""A start through the orchestrator that the sender would refuse leaves the receiver as it was (issue 14).

The services run as processes sharing an API token, so these starts also show the orchestrator passing the
token on to the sender and the receiver.
"""

from __future__ import annotations

import secrets
import shutil
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from orchestrator.core.config import Settings as OrchestratorSettings
from orchestrator.main import create_app as create_orchestrator
from tests.conftest import real_file
from tests.integration.conftest import Stack
from tests.integration.test_pipeline import wait_for_run_end

pytestmark = pytest.mark.integration

NOT_MBO = "fixtures/test_data.mbp-1.dbn"


def start(stack: Stack, **body: Any) -> httpx.Response:
    return httpx.post(f"{stack.orchestrator}/api/start-streaming", json=body, headers=stack.auth, timeout=10)


def receiver_view(stack: Stack) -> dict[str, Any]:
    """What a failed start must not change: the receiver's run, its books and its output files."""
    run = httpx.get(f"{stack.receiver}/status", timeout=5).json()["run"]
    books = httpx.get(f"{stack.orchestrator}/api/order-book", params={"depth": 20}, timeout=5).json()
    files = {path.name: path.stat().st_size for path in stack.output_dir.iterdir()}
    return {"run_id": run["run_id"], "state": run["state"], "books": books, "files": files}


@pytest.fixture(scope="module")
def finished(secured_stack: Stack) -> dict[str, Any]:
    """The receiver after one complete replay of the demo file: the books a failed start must keep."""
    started = start(secured_stack)
    assert started.status_code == 200, f"a start with the token must go through: {started.text}"
    assert wait_for_run_end(secured_stack)["receiver"]["status"]["run"]["state"] == "done"
    view = receiver_view(secured_stack)
    assert view["books"]["books"], "the finished replay left no book to compare"
    return view


@pytest.mark.parametrize(
    ("file", "status_code", "words"),
    [
        ("demo/missing.dbn", 404, "not a file"),
        ("demo/not-mbo.dbn", 422, "not MBO"),
    ],
)
def test_a_start_the_sender_refuses_leaves_books_and_output_as_they_were(
    secured_stack: Stack, finished: dict[str, Any], file: str, status_code: int, words: str
) -> None:
    if file == "demo/not-mbo.dbn":
        shutil.copyfile(real_file(NOT_MBO), secured_stack.data_dir / file)
    answer = start(secured_stack, file=file)
    assert answer.status_code == status_code, answer.text
    assert words in answer.json()["detail"]
    assert answer.json()["service"] == "sender", "the sender must refuse before the receiver is touched"
    after = receiver_view(secured_stack)
    assert after["run_id"] == finished["run_id"], "the receiver was reset by a start that never ran"
    assert after["books"] == finished["books"], "the books on screen changed after a refused start"
    assert after["files"] == finished["files"], "a refused start changed the output files"


def test_a_start_without_the_token_changes_nothing(secured_stack: Stack, finished: dict[str, Any]) -> None:
    answer = httpx.post(f"{secured_stack.orchestrator}/api/start-streaming", json={}, timeout=10)
    assert answer.status_code == 401, answer.text
    assert receiver_view(secured_stack) == finished


def test_an_orchestrator_with_another_token_gets_a_502_and_changes_nothing(
    secured_stack: Stack, finished: dict[str, Any]
) -> None:
    other = secrets.token_urlsafe(32)
    settings = OrchestratorSettings(
        api_token=SecretStr(other),
        sender_url=secured_stack.sender,
        receiver_url=secured_stack.receiver,
        receiver_ingest_port=httpx.get(f"{secured_stack.receiver}/status", timeout=5).json()["ingest_port"],
    )
    with TestClient(create_orchestrator(settings)) as misconfigured:
        answer = misconfigured.post(
            "/api/start-streaming", json={}, headers={"Authorization": f"Bearer {other}"}
        )
    assert answer.status_code == 502, "the services refusing the orchestrator is not the caller's 401"
    assert "401" in answer.json()["detail"] and answer.json()["service"] == "sender", answer.text
    assert receiver_view(secured_stack) == finished


def test_a_start_while_the_sender_streams_is_refused_by_the_sender_and_the_run_goes_on(
    secured_stack: Stack, finished: dict[str, Any]
) -> None:
    assert start(secured_stack, speed=1.0).status_code == 200
    time.sleep(0.5)
    before = httpx.get(f"{secured_stack.receiver}/status", timeout=5).json()["run"]
    files_before = {path.name for path in secured_stack.output_dir.iterdir()}
    busy = start(secured_stack)
    assert busy.status_code == 409, busy.text
    assert busy.json()["service"] == "sender", "the sender's check must refuse before the receiver is asked"
    after = httpx.get(f"{secured_stack.receiver}/status", timeout=5).json()["run"]
    assert after["run_id"] == before["run_id"], "the running replay's receiver run was replaced"
    assert after["records_received"] >= before["records_received"], "the receiver's run was reset"
    assert {path.name for path in secured_stack.output_dir.iterdir()} == files_before

    stopped = httpx.post(
        f"{secured_stack.orchestrator}/api/stop", json={}, headers=secured_stack.auth, timeout=10
    )
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["stopped"] is True
    assert wait_for_run_end(secured_stack)["receiver"]["status"]["run"]["state"] == "stopped"
    assert start(secured_stack).status_code == 200, "the next start must go through"
    assert wait_for_run_end(secured_stack)["receiver"]["status"]["run"]["state"] == "done"
