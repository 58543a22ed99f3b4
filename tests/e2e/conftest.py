"""The real images from docker-compose.yml, started the way a user starts them (images built by `make images`)."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DATA_DIR

REPO = Path(__file__).resolve().parents[2]
PROJECT = "obm-e2e"
PORTS = {"orchestrator": 8000, "sender": 8081, "receiver": 8082}


@dataclass(frozen=True)
class ComposeStack:
    """Published URLs of the running containers."""

    compose: object
    orchestrator: str
    sender: str
    receiver: str
    token: str
    """The API token the containers were given (compose refuses to start without one)."""

    @property
    def auth(self) -> dict[str, str]:
        """Headers of a request that may change state."""
        return {"Authorization": f"Bearer {self.token}"}

    def published(self, service: str) -> str:
        """The service's URL now: a container started again is published on a new ephemeral port."""
        compose: Any = self.compose
        return "http://{}:{}".format(*compose.get_service_host_and_port(service, PORTS[service]))

    def docker_compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``docker compose`` on this project (e.g. to stop one service)."""
        return subprocess.run(
            [
                "docker",
                "compose",
                "-p",
                PROJECT,
                "-f",
                "docker-compose.yml",
                "-f",
                "tests/e2e/docker-compose.e2e.yml",
                *args,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )


@pytest.fixture(scope="module")
def compose_stack() -> Iterator[ComposeStack]:
    """``docker compose up --wait`` of the project's images, with the real data mounted as the user's data."""
    testcontainers_compose = pytest.importorskip("testcontainers.compose")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine answers: run `make images` (it installs and starts one where needed)")
    # compose reads these from the environment; they are put back when the module's tests are done, so that no
    # later test runs with them.
    token = secrets.token_urlsafe(32)  # the tests' own, over any .env, as `make up` would make one
    settings = {
        "TESTCONTAINERS_RYUK_DISABLED": os.environ.get("TESTCONTAINERS_RYUK_DISABLED", "true"),
        "COMPOSE_PROJECT_NAME": PROJECT,
        "OBM_USER_DATA": str(DATA_DIR.resolve()) if DATA_DIR.is_dir() else str(REPO / "data"),
        "OBM_API_TOKEN": token,
    }
    with pytest.MonkeyPatch.context() as environment:
        for name, value in settings.items():
            environment.setenv(name, value)
        yield from _compose_up(testcontainers_compose, token)


def _compose_up(testcontainers_compose: Any, token: str) -> Iterator[ComposeStack]:
    compose = testcontainers_compose.DockerCompose(
        REPO,
        compose_file_name=["docker-compose.yml", "tests/e2e/docker-compose.e2e.yml"],
        build=False,
        wait=True,
    )
    compose.start()
    try:
        urls = {
            service: "http://{}:{}".format(*compose.get_service_host_and_port(service, port))
            for service, port in PORTS.items()
        }
        yield ComposeStack(compose, urls["orchestrator"], urls["sender"], urls["receiver"], token)
    finally:
        compose.stop()
