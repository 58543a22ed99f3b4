"""Starting a live run: only from an allowed gateway, and a session that cannot start (unreachable, wrong key)
is refused with the reason while the current run and books stay as they were; the key never shows."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from obm_shared.dbn_file import open_mbo_file
from obm_shared.live_protocol import MAX_LINE_BYTES, AuthRequest, decode_line, read_line
from receiver.core.config import Settings
from receiver.ingest import Receiver
from receiver.main import create_app
from receiver.processing import RunState

KEY = "db-" + "K" * 24 + "secrt"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def live_body(port: int) -> dict[str, Any]:
    return {"live": {"host": "127.0.0.1", "port": port, "dataset": "GLBX.MDP3", "api_key": KEY}}


async def endless_gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> None:
    """A gateway that takes any key, sends ``data`` (DBN) and then nothing, as a live feed on a quiet market."""
    writer.write(b"lsg_version=0.0.0\ncram=challenge\n")
    decode_line(await read_line(reader), AuthRequest)
    writer.write(b"success=1|session_id=1\n")
    while not (await read_line(reader)).startswith(b"start_session"):
        pass
    writer.write(data)
    await writer.drain()
    await reader.read()  # until the receiver leaves


async def refusing_gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A gateway that greets, challenges, and refuses whatever key answers."""
    writer.write(b"lsg_version=0.0.0\ncram=challenge\n")
    decode_line(await read_line(reader), AuthRequest)
    writer.write(b"success=0|error=Authentication failed.\n")
    await writer.drain()
    writer.close()


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Receiver, int]]:
    """The receiver's app in process, allowed to book from one gateway port (nothing listens there yet)."""
    port = free_port()
    settings = Settings(output_dir=tmp_path, live_gateways=frozenset({("127.0.0.1", port)}))
    app = create_app(settings)
    app.state.receiver = Receiver(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        yield client, app.state.receiver, port


async def test_a_gateway_not_allowed_is_refused_and_nothing_changes(
    receiver: tuple[httpx.AsyncClient, Receiver, int],
) -> None:
    client, state, port = receiver
    before = (await client.post("/start-processing", json={})).json()["run_id"]
    answer = await client.post("/start-processing", json=live_body(port + 1))
    assert answer.status_code == 403, answer.text
    assert "RECEIVER_LIVE_GATEWAYS" in answer.json()["detail"]
    assert state.run is not None and state.run.run_id == before and not state.receiving


async def test_an_unreachable_gateway_is_a_502_with_the_reason_and_the_run_stays(
    receiver: tuple[httpx.AsyncClient, Receiver, int],
) -> None:
    client, state, port = receiver
    before = (await client.post("/start-processing", json={})).json()["run_id"]
    answer = await client.post("/start-processing", json=live_body(port))
    assert answer.status_code == 502, answer.text
    assert f"gateway 127.0.0.1:{port} cannot be reached" in answer.json()["detail"]
    assert state.run is not None and state.run.run_id == before and not state.receiving


@pytest.mark.parametrize("start", ["yesterday", -1])
async def test_a_malformed_start_is_a_422_before_any_connection(
    receiver: tuple[httpx.AsyncClient, Receiver, int], start: object
) -> None:
    client, state, port = receiver
    body = live_body(port)
    body["live"]["start"] = start
    answer = await client.post("/start-processing", json=body)
    assert answer.status_code == 422, answer.text
    assert state.run is None and not state.receiving


async def test_a_refused_key_is_a_502_in_the_gateways_words_and_the_key_never_shows(
    receiver: tuple[httpx.AsyncClient, Receiver, int], caplog: pytest.LogCaptureFixture
) -> None:
    client, state, port = receiver
    server = await asyncio.start_server(refusing_gateway, "127.0.0.1", port, limit=MAX_LINE_BYTES)
    async with server:
        answer = await client.post("/start-processing", json=live_body(port))
    assert answer.status_code == 502, answer.text
    assert "refused the session: Authentication failed." in answer.json()["detail"]
    assert not state.receiving, "a refused session must free the receiver for the next stream"
    for text in (answer.text, (await client.get("/status")).text, caplog.text):
        assert KEY not in text and KEY[-5:] + '"' not in text, "the API key must never be shown"


@pytest.mark.realdata
async def test_stop_ends_a_live_feed_stopped_with_what_it_booked(
    receiver: tuple[httpx.AsyncClient, Receiver, int], clx5: Path
) -> None:
    client, state, port = receiver
    mbo_file = open_mbo_file(clx5)
    records = next(mbo_file.batches(10_000))
    data = mbo_file.header() + records.tobytes()
    server = await asyncio.start_server(
        lambda reader, writer: endless_gateway(reader, writer, data), "127.0.0.1", port, limit=MAX_LINE_BYTES
    )
    async with server:
        started = await client.post("/start-processing", json=live_body(port))
        assert started.status_code == 200, started.text
        assert KEY not in started.text
        run = state.run
        assert run is not None
        for _ in range(200):  # until the records sent are booked
            if run.market.accounting.records == len(records):
                break
            await asyncio.sleep(0.01)
        stopped = await client.post("/stop", json={})
        assert stopped.json() == {"stopped": True}
    assert run.state == RunState.STOPPED, f"run {run.state}: {run.last_error}"
    assert run.market.accounting.records == len(records) and run.market.accounting.balanced
    assert not state.receiving, "a stopped feed must free the receiver for the next stream"
    assert (await client.post("/stop", json={})).json() == {"stopped": False}


@pytest.mark.realdata
async def test_a_feed_that_goes_quiet_fails_its_run_stalled(tmp_path: Path, clx5: Path) -> None:
    port = free_port()
    settings = Settings(
        output_dir=tmp_path, live_gateways=frozenset({("127.0.0.1", port)}), stall_timeout_seconds=0.3
    )
    app = create_app(settings)
    state = app.state.receiver = Receiver(settings)
    mbo_file = open_mbo_file(clx5)
    data = mbo_file.header() + next(mbo_file.batches(1000)).tobytes()
    server = await asyncio.start_server(
        lambda reader, writer: endless_gateway(reader, writer, data), "127.0.0.1", port, limit=MAX_LINE_BYTES
    )
    async with (
        server,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client,
    ):
        assert (await client.post("/start-processing", json=live_body(port))).status_code == 200
        run = state.run
        assert run is not None
        for _ in range(300):
            if run.state != RunState.RECEIVING and run.state != RunState.READY:
                break
            await asyncio.sleep(0.01)
    assert run.state == RunState.FAILED, f"run {run.state}"
    assert run.last_error == "stalled: no data from the gateway for 0.3 s"
    assert run.market.accounting.records == 1000 and not state.receiving
