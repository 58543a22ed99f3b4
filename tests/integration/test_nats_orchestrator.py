"""One system view over two receivers on NATS (issue 17): an orchestrator given both receivers' URLs starts a DBEQ
replay through NATS and serves the TCP replay's books, merged and per instrument, and an accounting that sums to
the file's records.

nats-server, the NATS sender, two receivers (DBEQ's two instruments fall in partitions 0 and 2, one each) and
the orchestrator run as processes; the TCP replay is the session's local stack's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from scripts.local_stack import free_port, local_services
from tests.conftest import DBEQ, real_file
from tests.integration.conftest import Stack
from tests.integration.nats_runs import (
    EVERY_BOOK,
    RUN_SECONDS,
    Booked,
    NatsReceiver,
    nats_receiver,
    nats_sender,
    replayed_over_tcp,
    run_booked,
)
from tests.nats_server import running_nats

pytestmark = [pytest.mark.integration, pytest.mark.realdata]

SHARES = ["0,1", "2,3"]


class System:
    def __init__(self, orchestrator: str, receivers: list[NatsReceiver]) -> None:
        self.orchestrator = orchestrator
        self.receivers = receivers

    def get(self, path: str, **params: Any) -> Any:
        answer = httpx.get(f"{self.orchestrator}{path}", params=params, timeout=30)
        assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text}"
        return answer.json()


@pytest.fixture(scope="module")
def system(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """nats-server, a NATS sender, two receivers and an orchestrator over both."""
    root = tmp_path_factory.mktemp("nats-orchestrator")
    with ExitStack() as running:
        nats = running.enter_context(running_nats(root / "nats"))
        sender = running.enter_context(nats_sender(nats.url, stack.data_dir, root))
        receivers = [
            running.enter_context(nats_receiver(nats.url, share, root / f"receiver-{share.replace(',', '')}"))
            for share in SHARES
        ]
        environment = {
            "ORCHESTRATOR_SENDER_URL": sender,
            "ORCHESTRATOR_RECEIVER_URLS": ",".join(receiver.url for receiver in receivers),
        }
        orchestrator = running.enter_context(
            local_services({"orchestrator": environment}, root, {"orchestrator": free_port()})
        )
        yield System(orchestrator.urls["orchestrator"], receivers)


def run_ended(system: System, run_id: str) -> dict[str, Any]:
    """The orchestrator's status once both receivers have ended run ``run_id``."""
    for receiver in system.receivers:
        run_booked(receiver, run_id)
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        status: dict[str, Any] = system.get("/api/microservices/status")
        if status["sender"]["status"]["run"]["state"] != "streaming":
            return status
        time.sleep(0.05)
    raise AssertionError(f"the sender did not end run {run_id}")


def test_the_orchestrator_serves_the_receivers_as_one_market(stack: Stack, system: System) -> None:
    real_file(DBEQ)
    replay: Booked = replayed_over_tcp(stack, f"real/{DBEQ}")
    started = httpx.post(
        f"{system.orchestrator}/api/start-streaming", json={"file": f"real/{DBEQ}"}, timeout=30
    )
    assert started.status_code == 200, started.text
    status = run_ended(system, started.json()["run_id"])

    merged = system.get("/api/order-book", **EVERY_BOOK)
    assert [each["instrument_id"] for each in merged["books"]] == [
        iid for iid in sorted(replay.books) for _ in replay.books[iid]
    ], "the merged books are not each instrument's books in instrument order"
    for instrument_id, books in replay.books.items():
        got = [book for book in merged["books"] if book["instrument_id"] == instrument_id]
        assert got == books, f"instrument {instrument_id}: the merged books differ from the TCP replay's"
        one = system.get("/api/order-book", **EVERY_BOOK, instrument_id=instrument_id)
        assert one["books"] == books, f"instrument {instrument_id}: its books differ from the TCP replay's"
    assert merged["instruments"] == [replay.instruments[iid] for iid in sorted(replay.instruments)]

    receiver = status["receiver"]["status"]
    held = [each["instruments"] for each in receiver["receivers"]]
    assert sorted(iid for instruments in held for iid in instruments) == sorted(replay.books), (
        f"expected the receivers to hold DBEQ's instruments between them, they hold {held}"
    )
    assert all(len(instruments) == 1 for instruments in held), f"expected one instrument each: {held}"
    for each in receiver["receivers"]:
        assert each["partition_lag"] == {str(partition): 0 for partition in each["partitions"]}, (
            f"{each['url']}: a partition behind (or unknown) after the run's end: {each['partition_lag']}"
        )
    run = receiver["run"]
    sent = status["sender"]["status"]["run"]["records_sent"]
    accounting = run["accounting"]
    assert sent == run["records_received"] == replay.records_received, (
        f"sent {sent}, received together {run['records_received']}, the file holds {replay.records_received}"
    )
    assert accounting == replay.accounting, "the receivers together accounted otherwise than the TCP replay"
    assert accounting["records"] == accounting["applied"] + accounting["ignored"] + sum(
        accounting["skipped"].values()
    ), f"the records are not all accounted for: {accounting}"
