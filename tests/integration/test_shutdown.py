"""Each service stops cleanly on SIGTERM, as `docker compose stop` asks it to, and a kill -9 of either one
mid-stream is reported by the other at once."""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.local_stack import LocalStack, free_port, local_services

pytestmark = pytest.mark.integration

KILL_DEMO_RECORDS = 20_000


@pytest.mark.parametrize("service", ["receiver", "sender", "orchestrator"])
def test_service_exits_cleanly_on_sigterm(service: str, tmp_path: Path) -> None:
    environments: dict[str, Mapping[str, object]] = {
        "receiver": {"RECEIVER_INGEST_PORT": free_port(), "RECEIVER_OUTPUT_DIR": tmp_path / "output"},
        "sender": {"SENDER_DATA_DIR": tmp_path},
        "orchestrator": {},
    }
    settings = environments[service]
    with local_services({service: settings}, tmp_path, {service: free_port()}) as stack:
        process = stack.processes[service]
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=15)
        log = stack.logs[service].read_text()
    # uvicorn finishes its shutdown, then re-raises the signal so the exit status says why it ended
    assert exit_code in (0, -signal.SIGTERM), f"{service} exited with {exit_code} on SIGTERM:\n{log[-2000:]}"
    assert "Application shutdown complete" in log, f"{service} did not run its shutdown:\n{log[-2000:]}"


def test_kill_9_of_either_service_mid_stream_is_reported_at_once_and_the_next_run_is_exact(
    tmp_path: Path,
) -> None:
    """kill -9 of the receiver, then of the sender, in a paced replay: the other side fails the run with the
    reason within a second, and after a restart of the killed one the next replay is accounted exactly."""
    from demo_market.writer import write_demo_file

    token = secrets.token_urlsafe(32)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_demo_file(data_dir / "demo.mbo.dbn", records=KILL_DEMO_RECORDS)
    ports = {name: free_port() for name in ("receiver", "sender", "ingest")}
    environments: dict[str, dict[str, object]] = {
        "receiver": {
            "RECEIVER_INGEST_PORT": ports["ingest"],
            "RECEIVER_OUTPUT_DIR": tmp_path / "output",
            "OBM_API_TOKEN": token,
        },
        "sender": {
            "SENDER_DATA_DIR": data_dir,
            "SENDER_DEFAULT_FILE": "demo.mbo.dbn",
            "SENDER_RECEIVER_PORT": ports["ingest"],
            "OBM_API_TOKEN": token,
        },
    }
    auth = {"Authorization": f"Bearer {token}"}
    launches = iter(range(1, 100))

    def launch(name: str) -> LocalStack:
        logs = tmp_path / f"logs-{name}-{next(launches)}"
        logs.mkdir()
        return services.enter_context(local_services({name: environments[name]}, logs, {name: ports[name]}))

    def status(stack: LocalStack, name: str) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{stack.urls[name]}/status", timeout=5).json()
        return answer

    def start(speed: float | None) -> None:
        httpx.post(f"{receiver.urls['receiver']}/start-processing", json={}, headers=auth, timeout=5)
        body = {"speed": speed} if speed else {}
        answer = httpx.post(f"{sender.urls['sender']}/start-streaming", json=body, headers=auth, timeout=10)
        assert answer.status_code == 200, answer.text

    def mid_stream() -> None:
        start(speed=1.0)
        until(
            lambda: (status(receiver, "receiver")["run"] or {}).get("records_received", 0) > 0, 10, "records"
        )
        time.sleep(0.3)

    def kill(stack: LocalStack, name: str) -> float:
        process = stack.processes[name]
        process.kill()
        process.wait(timeout=5)
        return time.monotonic()

    def exact_replay() -> None:
        start(speed=None)
        until(lambda: status(receiver, "receiver")["state"] in ("done", "failed"), 60, "the replay's end")
        until(lambda: status(sender, "sender")["state"] != "streaming", 10, "the sender's end")
        sent, run = status(sender, "sender")["run"], status(receiver, "receiver")["run"]
        assert (sent["state"], run["state"]) == ("done", "done"), (sent, run)
        accounting = run["accounting"]
        accounted = accounting["applied"] + accounting["ignored"] + sum(accounting["skipped"].values())
        assert sent["records_sent"] == run["records_received"] == accounted == KILL_DEMO_RECORDS
        assert run["accounted"] is True

    with ExitStack() as services:
        receiver, sender = launch("receiver"), launch("sender")

        mid_stream()
        killed = kill(receiver, "receiver")
        job = until(
            lambda: (run := status(sender, "sender")["run"])["state"] == "failed" and run, 5, "failure"
        )
        noticed = time.monotonic() - killed
        assert noticed < 1.0, f"the sender noticed the receiver's death after {noticed:.2f} s"
        assert job["error"].startswith(f"receiver at 127.0.0.1:{ports['ingest']}: "), job["error"]
        receiver = launch("receiver")
        exact_replay()

        mid_stream()
        killed = kill(sender, "sender")
        run = until(
            lambda: (run := status(receiver, "receiver")["run"])["state"] == "failed" and run, 5, "failure"
        )
        noticed = time.monotonic() - killed
        assert noticed < 1.0, f"the receiver noticed the sender's death after {noticed:.2f} s"
        assert "before the end of stream" in run["last_error"], run["last_error"]
        sender = launch("sender")
        exact_replay()


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """``check()``'s first true answer, polled; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (answer := check()):
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.01)
    return answer
