"""A service asked to listen beyond loopback without a token refuses to start, saying why (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scripts.local_stack import free_port

pytestmark = pytest.mark.integration

START_SECONDS = 30


@pytest.mark.parametrize("service", ["orchestrator", "sender", "receiver"])
def test_listening_on_every_interface_without_a_token_is_refused(service: str) -> None:
    prefix = service.upper()
    environment = {key: value for key, value in os.environ.items() if key != "OBM_API_TOKEN"}
    environment |= {f"{prefix}_HOST": "0.0.0.0", f"{prefix}_HTTP_PORT": str(free_port())}
    if service == "receiver":
        environment["RECEIVER_INGEST_PORT"] = str(free_port())
    try:
        finished = subprocess.run(
            [sys.executable, "-m", service],
            env=environment,
            capture_output=True,
            text=True,
            timeout=START_SECONDS,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the {service} started on 0.0.0.0 without OBM_API_TOKEN instead of refusing")
    assert finished.returncode != 0
    assert "refusing to listen on 0.0.0.0 without OBM_API_TOKEN" in finished.stderr, finished.stderr[-2000:]
