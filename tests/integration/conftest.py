"""The three services as local processes on loopback ports, the way a developer runs them without Docker."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from scripts.local_stack import free_port, local_services
from tests.conftest import DATA_DIR
from tests.nats_server import NatsServer, running_nats

if TYPE_CHECKING:
    from tests.integration.nats_runs import Booked

DEMO_RECORDS = 60_000
DEMO_FILE = "demo/demo.mbo.dbn"
"""The demo file the stack writes, as the sender names it."""
GATEWAY_KEY = "db-" + "Stack" * 5 + "Gate"
"""The API key the stack's live gateway takes (Databento's format: db- and 29 letters or digits)."""


@dataclass(frozen=True)
class Stack:
    """URLs of the running services and the sender's data folder."""

    orchestrator: str
    sender: str
    receiver: str
    data_dir: Path
    output_dir: Path
    logs_dir: Path
    token: str | None = None
    """The OBM_API_TOKEN the services share, if they were given one."""
    ingest_port: int = 0
    """The receiver's TCP ingest port (the one target the sender is allowed)."""
    gateway_port: int = 0
    """The sender's live gateway (the one gateway the receiver may book from), which takes :data:`GATEWAY_KEY`."""

    @property
    def auth(self) -> dict[str, str]:
        """Headers of a request that may change state."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Receiver, sender and orchestrator on free loopback ports; the real data folder linked in as ``real/``."""
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="module")
def secured_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The same stack with an API token shared by the three services."""
    with running_stack(tmp_path_factory.mktemp("secured"), secrets.token_urlsafe(32)) as running:
        yield running


@pytest.fixture(scope="session")
def demo_replay(stack: Stack) -> Booked:
    """What the stack's receiver books of the demo file replayed over direct TCP, to compare NATS runs with."""
    # imported here: nats_runs imports this module
    from tests.integration.nats_runs import replayed_over_tcp

    return replayed_over_tcp(stack, DEMO_FILE)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of the test's own, its store and log under ``tmp_path/nats``."""
    with running_nats(tmp_path / "nats") as server:
        yield server


@contextmanager
def running_stack(root: Path, token: str | None = None, read_auth: str = "open") -> Iterator[Stack]:
    """The three services as processes with their folders under ``root``; ``token`` as their OBM_API_TOKEN,
    ``read_auth`` as their OBM_READ_AUTH."""
    from demo_market.writer import write_demo_file

    data_dir, output_dir, logs_dir = root / "data", root / "output", root / "logs"
    for folder in (data_dir / "demo", output_dir, logs_dir):
        folder.mkdir(parents=True)
    if DATA_DIR.is_dir():
        (data_dir / "real").symlink_to(DATA_DIR.resolve(), target_is_directory=True)
    write_demo_file(data_dir / DEMO_FILE, records=DEMO_RECORDS)

    ports = {name: free_port() for name in ("receiver", "sender", "orchestrator", "ingest", "gateway")}
    services = {
        "receiver": {
            "RECEIVER_INGEST_PORT": ports["ingest"],
            "RECEIVER_OUTPUT_DIR": output_dir,
            "RECEIVER_LIVE_GATEWAYS": f"127.0.0.1:{ports['gateway']}",
        },
        "sender": {
            "SENDER_DATA_DIR": data_dir,
            "SENDER_RECEIVER_PORT": ports["ingest"],
            "SENDER_GATEWAY_PORT": ports["gateway"],
            "SENDER_GATEWAY_API_KEYS": GATEWAY_KEY,
        },
        "orchestrator": {
            "ORCHESTRATOR_SENDER_URL": f"http://127.0.0.1:{ports['sender']}",
            "ORCHESTRATOR_RECEIVER_URL": f"http://127.0.0.1:{ports['receiver']}",
            "ORCHESTRATOR_RECEIVER_INGEST_PORT": ports["ingest"],
        },
    }
    for environment in services.values():
        environment["OBM_READ_AUTH"] = read_auth
        if token is not None:
            environment["OBM_API_TOKEN"] = token
    with local_services(services, logs_dir, ports) as running:
        yield Stack(
            running.urls["orchestrator"],
            running.urls["sender"],
            running.urls["receiver"],
            data_dir,
            output_dir,
            logs_dir,
            token,
            ports["ingest"],
            ports["gateway"],
        )
