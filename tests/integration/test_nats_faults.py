"""Faults on the NATS transport (issue 17): a receiver killed mid-run and restarted, nats-server restarted
mid-run, a records stream too small for the run, and runs that fill it only together.

Each test has its own nats-server, sender and receivers as processes; the books and accounting are compared with
the demo file's direct TCP replay by the session's local stack. The runs are paced (the demo's 35 s of market
time in about 7 s) so that a fault lands while records are still being published.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.integration.conftest import DEMO_FILE, Stack
from tests.integration.nats_runs import (
    PACED_SPEED,
    WAIT_SECONDS,
    Booked,
    assert_books_as_replayed,
    balanced_share,
    nats_receiver,
    nats_sender,
    run_booked,
    sender_run_ended,
    sender_state,
    start_on_nats,
    stream_through_nats,
    union,
    wait_until_under_way,
)
from tests.nats_server import NatsServer

pytestmark = pytest.mark.integration

SHARES = ("0,1", "2,3")
"""Two receivers: the demo's three instruments fall in partitions 0, 2 and 3, so both have books to lose."""
OUTAGE_SECONDS = 3.0
STREAM_LIMIT_BYTES = 1_000_000
"""A third of the demo file's 3.4 MB."""
ONE_RUN_LIMIT_BYTES = 5_000_000
"""Room for the demo's run (its 3.4 MB and the framing), not for two."""
STALL_SECONDS = 3.0
"""The receivers' stall timeout when the stream is full: the run's end never reaches them."""


def test_a_receiver_killed_mid_run_and_restarted_books_its_share_exactly(
    stack: Stack, demo_replay: Booked, nats_server: NatsServer, tmp_path: Path
) -> None:
    survivor_root, doomed_root = tmp_path / "receiver-01", tmp_path / "receiver-23"
    with (
        nats_sender(nats_server.url, stack.data_dir, tmp_path) as sender,
        nats_receiver(nats_server.url, SHARES[0], survivor_root) as survivor,
    ):
        with nats_receiver(nats_server.url, SHARES[1], doomed_root) as doomed:
            run_id = start_on_nats(sender, DEMO_FILE, PACED_SPEED)
            wait_until_under_way(sender, [doomed], run_id, demo_replay.records_received)
            os.kill(doomed.pid, signal.SIGKILL)
            at_kill = sender_state(sender)
        assert at_kill["state"] == "streaming", f"the kill landed after the run: {at_kill}"
        assert at_kill["records_sent"] < demo_replay.records_received

        with nats_receiver(
            nats_server.url, SHARES[1], tmp_path / "receiver-23-again", output_dir=doomed_root / "output"
        ) as restarted:
            sent = sender_run_ended(sender)
            assert sent["state"] == "done", f"the sender's run ended {sent['state']}: {sent['error']}"
            shares = [balanced_share(each, run_id, demo_replay) for each in (survivor, restarted)]
    assert_books_as_replayed(union(shares), demo_replay, sent)


def test_nats_restarted_mid_run_the_run_completes_exactly(
    stack: Stack, demo_replay: Booked, nats_server: NatsServer, tmp_path: Path
) -> None:
    with (
        nats_sender(nats_server.url, stack.data_dir, tmp_path) as sender,
        nats_receiver(nats_server.url, SHARES[0], tmp_path / "receiver-01") as first,
        nats_receiver(nats_server.url, SHARES[1], tmp_path / "receiver-23") as second,
    ):
        run_id = start_on_nats(sender, DEMO_FILE, PACED_SPEED)
        wait_until_under_way(sender, [first, second], run_id, demo_replay.records_received)
        nats_server.stop()
        at_stop = sender_state(sender)
        time.sleep(OUTAGE_SECONDS)
        nats_server.start()
        assert at_stop["state"] == "streaming", f"NATS stopped after the run: {at_stop}"
        assert at_stop["records_sent"] < demo_replay.records_received

        sent = sender_run_ended(sender)
        assert sent["state"] == "done", f"the sender's run ended {sent['state']}: {sent['error']}"
        shares = [balanced_share(each, run_id, demo_replay) for each in (first, second)]
        assert_books_as_replayed(union(shares), demo_replay, sent)

        # The announcement watchers outlived the restart too: the next run is booked as well.
        again = stream_through_nats(sender, DEMO_FILE)
        shares = [balanced_share(each, again["run_id"], demo_replay) for each in (first, second)]
    assert_books_as_replayed(union(shares), demo_replay, again)


def test_a_stream_too_small_for_the_run_fails_it_naming_the_limit(
    stack: Stack, nats_server: NatsServer, tmp_path: Path
) -> None:
    with (
        nats_sender(
            nats_server.url, stack.data_dir, tmp_path, SENDER_NATS_STREAM_MAX_BYTES=STREAM_LIMIT_BYTES
        ) as sender,
        nats_receiver(
            nats_server.url, "0,1,2,3", tmp_path / "receiver", RECEIVER_STALL_TIMEOUT_SECONDS=STALL_SECONDS
        ) as receiver,
    ):
        run_id = start_on_nats(sender, DEMO_FILE)
        sent = sender_run_ended(sender)
        assert sent["state"] == "failed", f"a run larger than the stream ended {sent['state']}"
        assert "SENDER_NATS_STREAM_MAX_BYTES" in sent["error"] and str(STREAM_LIMIT_BYTES) in sent["error"], (
            f"the sender's error does not name the stream's limit: {sent['error']}"
        )
        booked = run_booked(receiver, run_id, timeout=STALL_SECONDS + WAIT_SECONDS)
        assert booked["state"] == "failed", (
            f"the receiver's run of a failed send ended {booked['state']}: {booked['last_error']}"
        )


def test_runs_that_fill_the_stream_only_together_both_complete(
    stack: Stack, demo_replay: Booked, nats_server: NatsServer, tmp_path: Path
) -> None:
    with (
        nats_sender(
            nats_server.url, stack.data_dir, tmp_path, SENDER_NATS_STREAM_MAX_BYTES=ONE_RUN_LIMIT_BYTES
        ) as sender,
        nats_receiver(nats_server.url, "0,1,2,3", tmp_path / "receiver") as receiver,
    ):
        for _ in range(2):
            sent = stream_through_nats(sender, DEMO_FILE)
            share = balanced_share(receiver, sent["run_id"], demo_replay)
            assert_books_as_replayed(share, demo_replay, sent)
