"""Every service's HTTP API fuzzed from its own OpenAPI spec (schemathesis, in-process through ASGI): valid and
invalid requests for every operation, no 5xx, and every status answered is one the spec documents.

Bounded: ``FUZZ``'s examples per operation. A service joins by adding one entry to ``APPS``: a function that
makes its app, with whatever it reads or writes in the test's temporary folder.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, status_code_conformance
from schemathesis.config import NotAServerErrorConfig
from schemathesis.core.result import Ok

from tests.conftest import real_file

CHECKS = [not_a_server_error, status_code_conformance]
FUZZ = settings(max_examples=50, deadline=timedelta(seconds=5), suppress_health_check=list(HealthCheck))
"""At most 50 requests per operation and generation mode."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sender_app(root: Path) -> FastAPI:
    """A sender whose data folder holds one MBO and one trades file; its receiver port refuses connections,
    so a start the fuzzer gets through ends at once."""
    from sender.core.config import Settings
    from sender.main import create_app

    data = root / "data"
    data.mkdir()
    fixtures = real_file("fixtures/test_data.mbo.dbn").parent
    shutil.copy(fixtures / "test_data.mbo.dbn", data / "mbo.dbn")
    shutil.copy(fixtures / "test_data.trades.dbn", data / "trades.dbn")
    settings = Settings(
        data_dir=data, default_file="mbo.dbn", receiver_port=free_port(), connect_timeout_seconds=1
    )
    return create_app(settings)


def receiver_app(root: Path) -> FastAPI:
    """A receiver with its ingest port on a free loopback port and its output in ``root``."""
    from receiver.core.config import Settings
    from receiver.main import create_app

    settings = Settings(ingest_port=free_port(), output_dir=root / "output")
    return create_app(settings)


def orchestrator_app(root: Path) -> FastAPI:
    """An orchestrator whose sender and receiver are down (nothing listens on their ports): every route that
    asks them must answer the documented 503, never a 500."""
    from orchestrator.core.config import Settings
    from orchestrator.main import create_app

    settings = Settings(
        sender_url=f"http://127.0.0.1:{free_port()}",
        receiver_url=f"http://127.0.0.1:{free_port()}",
        request_timeout_seconds=1,
        frontend_dir=root / "no-frontend",
    )
    return create_app(settings)


SERVICE_DOWN = ["502", "503"]
"""The 5xx an orchestrator answers when a service it asks is down or broken: documented, never a fault of its own."""
APPS: dict[str, Callable[[Path], FastAPI]] = {
    "orchestrator": orchestrator_app,
    "receiver": receiver_app,
    "sender": sender_app,
}
EXPECTED_5XX = {"orchestrator": SERVICE_DOWN}
"""5xx a service may answer (each operation must document it, or ``status_code_conformance`` fails); any other
5xx fails ``not_a_server_error``."""


@pytest.mark.parametrize("mode", list(GenerationMode), ids=str)
@pytest.mark.parametrize("service", sorted(APPS))
def test_no_server_error_and_only_documented_statuses(
    tmp_path: Path, service: str, mode: GenerationMode
) -> None:
    """Requests that fit the spec (positive) and that break it (negative), for every operation."""
    # loading the spec starts the app's lifespan; schemathesis's pytest plugin ends it when the test does
    schema = schemathesis.openapi.from_asgi("/openapi.json", APPS[service](tmp_path))
    schema.config.checks.not_a_server_error = NotAServerErrorConfig(
        expected_statuses=["2xx", "3xx", "4xx", *EXPECTED_5XX.get(service, [])]
    )
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), f"{service}'s spec has operations schemathesis cannot read"
    assert operations, f"{service} documents no operations"
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @FUZZ
        def call(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(checks=CHECKS)

        call()
