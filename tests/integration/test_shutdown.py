"""Each service stops cleanly on SIGTERM, as `docker compose stop` asks it to."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from scripts.local_stack import free_port, local_services

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", ["receiver", "sender", "orchestrator"])
def test_service_exits_cleanly_on_sigterm(service: str, tmp_path: Path) -> None:
    settings = {
        "receiver": {"RECEIVER_INGEST_PORT": free_port(), "RECEIVER_OUTPUT_DIR": tmp_path / "output"},
        "sender": {"SENDER_DATA_DIR": tmp_path},
        "orchestrator": {},
    }[service]
    with local_services({service: settings}, tmp_path, {service: free_port()}) as stack:
        process = stack.processes[service]
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=15)
        log = stack.logs[service].read_text()
    # uvicorn finishes its shutdown, then re-raises the signal so the exit status says why it ended
    assert exit_code in (0, -signal.SIGTERM), f"{service} exited with {exit_code} on SIGTERM:\n{log[-2000:]}"
    assert "Application shutdown complete" in log, f"{service} did not run its shutdown:\n{log[-2000:]}"
