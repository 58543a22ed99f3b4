"""Records through NATS JetStream to 1, 2 and 3 receivers partitioned by instrument (issue 17): together they give
the direct TCP replay's books, accounting and per-instrument event lines.

A real nats-server, the sender (SENDER_TRANSPORT=nats, 4 partitions) and each receiver (RECEIVER_TRANSPORT=nats,
its share of the partitions) run as processes; the TCP replay of each file is the session's local stack's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.conftest import CLX5, DBEQ, real_file
from tests.integration.conftest import DEMO_FILE, Stack
from tests.integration.nats_runs import (
    Booked,
    NatsReceiver,
    assert_books_as_replayed,
    assert_history_as_replayed,
    balanced_share,
    nats_receiver,
    nats_sender,
    replayed_over_tcp,
    stream_through_nats,
    union,
)
from tests.nats_server import NatsServer, running_nats

pytestmark = [pytest.mark.integration, pytest.mark.realdata]

SHARES = {1: ["0,1,2,3"], 2: ["0,1", "2,3"], 3: ["0", "1,2", "3"]}
"""Each receiver's RECEIVER_PARTITIONS, by the number of receivers: DBEQ's two instruments fall in partitions 0
and 2, the demo's three in 0, 2 and 3, CLX5's one in 0, so the files spread over two or three receivers (and a
receiver whose share holds nothing books an empty run)."""
FILES = {"clx5": f"real/{CLX5}", "dbeq": f"real/{DBEQ}", "demo": DEMO_FILE}


@pytest.fixture(scope="module")
def tcp_replays(stack: Stack) -> Iterator[dict[str, Booked]]:
    """Each file replayed over TCP by the local stack, once, when a test first needs it."""

    class Replays(dict[str, Booked]):
        def __missing__(self, name: str) -> Booked:
            self[name] = replayed_over_tcp(stack, FILES[name])
            return self[name]

    yield Replays()


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with running_nats(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture(scope="module")
def sender_on_nats(
    stack: Stack, nats_server: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A sender publishing to NATS, streaming the stack's data folder; its URL."""
    with nats_sender(nats_server.url, stack.data_dir, tmp_path_factory.mktemp("nats-sender")) as url:
        yield url


@pytest.fixture(scope="module", params=sorted(SHARES), ids=lambda count: f"{count}-receivers")
def nats_receivers(
    request: pytest.FixtureRequest, nats_server: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[NatsReceiver]]:
    """N receivers booking their shares of each run announced on NATS."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                nats_receiver(
                    nats_server.url,
                    partitions,
                    tmp_path_factory.mktemp(f"nats-receiver-{partitions.replace(',', '')}"),
                )
            )
            for partitions in SHARES[request.param]
        ]


@pytest.mark.parametrize("name", sorted(FILES))
def test_receivers_on_nats_together_book_what_the_tcp_replay_books(
    name: str,
    stack: Stack,
    tcp_replays: dict[str, Booked],
    sender_on_nats: str,
    nats_receivers: list[NatsReceiver],
) -> None:
    if FILES[name].startswith("real/"):
        real_file(FILES[name].removeprefix("real/"))
    replay = tcp_replays[name]
    sent = stream_through_nats(sender_on_nats, FILES[name])
    assert sent["records_sent"] == replay.records_received, "the NATS sender sent another number of records"

    together = union([balanced_share(receiver, sent["run_id"], replay) for receiver in nats_receivers])
    assert_books_as_replayed(together, replay, sent)
    for receiver in nats_receivers:
        assert_history_as_replayed(receiver, sent["run_id"], replay, stack.receiver)
