"""The NATS server of the scale profile takes only clients presenting the services' token (services/nats/nats.conf):
without it nobody can announce a run or publish records for the receivers to book, and a sender given a wrong one
fails its run saying so, and a receiver keeps trying and shows why, without the token in their answers or logs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import nats
import nats.errors
import pytest

from obm_shared.nats_stream import CURRENT_RUN_KEY, RUN_BUCKET, STREAM_NAME, subject
from tests.integration.conftest import DEMO_FILE, Stack
from tests.integration.nats_runs import nats_receiver, nats_sender, sender_run_ended, start_on_nats
from tests.nats_server import NATS_TOKEN, NatsServer

pytestmark = pytest.mark.integration

WRONG_TOKEN = "not-the-token-0123456789"


async def refusal(url: str, token: str | None) -> str:
    """What the server answers a client presenting ``token`` (nothing: no token) that asks for the stream."""
    errors: list[str] = []

    async def note(error: Exception) -> None:
        errors.append(str(error))

    try:
        client = await asyncio.wait_for(
            nats.connect(url, token=token, allow_reconnect=False, error_cb=note), timeout=5
        )
    except (nats.errors.Error, OSError, TimeoutError) as error:
        return " ".join([*errors, str(error)])
    try:
        await client.jetstream().stream_info(STREAM_NAME)
    except nats.errors.Error as error:  # connected and allowed: the stream may not exist yet
        return f"connected ({type(error).__name__})"
    finally:
        await client.close()
    return "connected"


@pytest.mark.parametrize("token", [None, WRONG_TOKEN], ids=["no token", "a wrong token"])
def test_a_client_without_the_token_cannot_reach_the_stream(
    nats_server: NatsServer, token: str | None
) -> None:
    assert asyncio.run(refusal(nats_server.url, token)).lower().count("authorization violation"), (
        "the server took a client without its token"
    )
    assert asyncio.run(refusal(nats_server.url, NATS_TOKEN)).startswith("connected"), (
        "the server refused its own token: the refusal above proves nothing"
    )


def test_a_client_with_the_token_can_announce_a_run(nats_server: NatsServer) -> None:
    async def announce() -> bytes:
        client = await nats.connect(nats_server.url, token=NATS_TOKEN)
        try:
            bucket = await client.jetstream().create_key_value(bucket=RUN_BUCKET)
            await bucket.put(CURRENT_RUN_KEY, b"x")
            await client.publish(subject(0), b"y")
            return (await bucket.get(CURRENT_RUN_KEY)).value or b""
        finally:
            await client.close()

    assert asyncio.run(announce()) == b"x"


def test_a_sender_with_a_wrong_token_fails_its_run_saying_so(
    stack: Stack, nats_server: NatsServer, tmp_path: Path
) -> None:
    with nats_sender(nats_server.url, stack.data_dir, tmp_path, SENDER_NATS_TOKEN=WRONG_TOKEN) as sender:
        start_on_nats(sender, DEMO_FILE)
        sent = sender_run_ended(sender)
    assert sent["state"] == "failed", f"a run published with a wrong token ended {sent['state']}"
    assert "refused this client's token" in sent["error"] and "SENDER_NATS_TOKEN" in sent["error"], sent[
        "error"
    ]
    log = (tmp_path / "sender.log").read_text()
    assert "refused" in log, "the refusal is not in the sender's log"
    assert WRONG_TOKEN not in log and WRONG_TOKEN not in str(sent), "the token was shown"


def test_a_receiver_with_a_wrong_token_keeps_trying_and_shows_why(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    with nats_receiver(nats_server.url, "0", tmp_path, RECEIVER_NATS_TOKEN=WRONG_TOKEN) as receiver:
        deadline = time.monotonic() + 20
        status = httpx.get(f"{receiver.url}/status", timeout=5).json()
        while not status["nats_problem"] and time.monotonic() < deadline:
            time.sleep(0.2)
            status = httpx.get(f"{receiver.url}/status", timeout=5).json()
        problem = status["nats_problem"] or ""
        assert "refused this client's token" in problem and "RECEIVER_NATS_TOKEN" in problem, status
        log = (tmp_path / "receiver.log").read_text()
        while log.count("NATS refused the token") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            log = (tmp_path / "receiver.log").read_text()
    assert log.count("NATS refused the token") >= 2, (
        "the receiver did not log the refusal, or gave up after one"
    )
    assert WRONG_TOKEN not in log and WRONG_TOKEN not in str(status), "the token was shown"
