"""Who may change state and read it, for each of the three services as it is served (issue 14).

The routes come from each app's OpenAPI, so a route added later is checked without anyone listing it here.
The apps run in-process with their lifespans; the orchestrator's services are absent (it answers 503 for
them once its own guard lets a request through).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from orchestrator.book_fast_path import BookReadFastPath
from orchestrator.core.config import Settings as OrchestratorSettings
from orchestrator.main import create_app as create_orchestrator
from receiver.core.config import Settings as ReceiverSettings
from receiver.main import create_app as create_receiver
from scripts.local_stack import free_port
from sender.core.config import Settings as SenderSettings
from sender.main import create_app as create_sender

TOKEN = secrets.token_urlsafe(32)
GRANTED = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": f"Bearer {TOKEN[::-1]}"}
SERVICES = ("orchestrator", "sender", "receiver")
REFUSALS = (401, 403, 415)

# Routes each service must have among its state-changing ones (the list itself comes from the OpenAPI).
KNOWN_ACTIONS = {
    "orchestrator": {("POST", "/api/start-streaming"), ("POST", "/api/stop")},
    "sender": {("POST", "/start-streaming"), ("POST", "/start-streaming/check"), ("POST", "/stop")},
    "receiver": {("POST", "/start-processing")},
}
# What an authorised ``{}`` gets where it is known: the orchestrator's services are absent, the sender's
# default file is missing from its empty data folder.
GRANTED_STATUS = {
    ("orchestrator", "/api/start-streaming"): 503,
    ("orchestrator", "/api/stop"): 503,
    ("sender", "/start-streaming"): 404,
    ("sender", "/start-streaming/check"): 404,
    ("sender", "/stop"): 200,
    ("receiver", "/start-processing"): 200,
}


@dataclass
class Served:
    """A service as it is served (``client``) and its FastAPI app (for the OpenAPI)."""

    name: str
    client: TestClient
    app: FastAPI

    def operations(self, changing: bool) -> list[tuple[str, str]]:
        """(method, path) of every documented operation that changes state (or every read), path
        parameters filled in."""
        return [
            (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
            for path, item in self.app.openapi()["paths"].items()
            for method in item
            if (method != "get") == changing
        ]


def unreachable() -> str:
    return f"http://127.0.0.1:{free_port()}"


def hang_up(served: Served, socket: Any) -> None:
    """Close a live socket and wait until the server has let its client go (the test client cancels the
    server's side at once otherwise)."""
    socket.close()
    deadline = time.monotonic() + 5
    while served.app.state.live.subscribers and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """``serve(name, read_auth)``: the service running in-process with the token set."""
    with_lifespans: list[TestClient] = []

    def start(name: str, read_auth: str = "open") -> Served:
        common: dict[str, Any] = {"api_token": TOKEN, "read_auth": read_auth}
        served: Any
        if name == "orchestrator":
            app = create_orchestrator(
                OrchestratorSettings(sender_url=unreachable(), receiver_url=unreachable(), **common)
            )
            served = BookReadFastPath(app)
        elif name == "sender":
            app = served = create_sender(SenderSettings(data_dir=tmp_path, **common))
        else:
            settings = ReceiverSettings(ingest_port=free_port(), output_dir=tmp_path, **common)
            app = served = create_receiver(settings)
        client = TestClient(served)
        with_lifespans.append(client.__enter__())
        return Served(name, client, app)

    yield start
    for client in with_lifespans:
        client.__exit__(None, None, None)


@pytest.mark.parametrize("service", SERVICES)
def test_every_state_changing_route_answers_401_without_the_token(serve: Any, service: str) -> None:
    served: Served = serve(service)
    actions = served.operations(changing=True)
    assert KNOWN_ACTIONS[service] <= set(actions), f"{service}: routes missing from the OpenAPI: {actions}"
    for method, path in actions:
        for headers, why in (({}, "no token"), (WRONG, "a wrong token")):
            answer = served.client.request(method, path, json={}, headers=headers)
            assert answer.status_code == 401, f"{service} {method} {path} with {why}: {answer.status_code}"
            assert answer.headers["www-authenticate"] == "Bearer"
        granted = served.client.request(method, path, json={}, headers=GRANTED)
        expected = GRANTED_STATUS.get((service, path))
        if expected is not None:
            assert granted.status_code == expected, f"{service} {method} {path}: {granted.text}"
        assert granted.status_code not in REFUSALS, f"{service} {method} {path} refused the token"


@pytest.mark.parametrize("service", SERVICES)
def test_state_changing_requests_must_be_json(serve: Any, service: str) -> None:
    served: Served = serve(service)
    for method, path in served.operations(changing=True):
        for content_type in ("application/x-www-form-urlencoded", "text/plain", None):
            headers = GRANTED | ({"content-type": content_type} if content_type else {})
            answer = served.client.request(method, path, content=b"x=1", headers=headers)
            assert answer.status_code == 415, f"{service} {method} {path} as {content_type}: {answer.text}"


@pytest.mark.parametrize("headers", [{}, GRANTED], ids=["without token", "with token"])
def test_a_cross_site_form_post_is_refused(serve: Any, headers: dict[str, str]) -> None:
    client = serve("orchestrator").client
    answer = client.post(
        "/api/stop",
        content=b"x=1",
        headers=headers
        | {"origin": "http://evil.example", "content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code in (403, 415), answer.text
    as_json = client.post("/api/stop", json={}, headers=headers | {"origin": "http://evil.example"})
    assert as_json.status_code == 403, "another site's page must not change state, even with JSON"
    own_page = client.post("/api/stop", json={}, headers=GRANTED | {"origin": "http://testserver"})
    assert own_page.status_code == 503, f"the UI's own page must pass the guard: {own_page.text}"


@pytest.mark.parametrize("service", SERVICES)
def test_reads_are_open_by_default(serve: Any, service: str) -> None:
    served: Served = serve(service)
    reads = served.operations(changing=False)
    assert ("GET", "/metrics") in reads and len(reads) > 2, reads
    for method, path in reads:
        answer = served.client.request(method, path)
        assert answer.status_code not in REFUSALS, f"{service} {path} without a token: {answer.text}"
    assert served.client.get("/metrics").status_code == 200


@pytest.mark.parametrize("service", SERVICES)
def test_reads_need_the_token_when_read_auth_is_token(serve: Any, service: str) -> None:
    served: Served = serve(service, "token")
    for method, path in served.operations(changing=False):
        for headers, why in (({}, "no token"), (WRONG, "a wrong token")):
            answer = served.client.request(method, path, headers=headers)
            assert answer.status_code == 401, f"{service} {path} with {why}: {answer.status_code}"
        granted = served.client.request(method, path, headers=GRANTED)
        assert granted.status_code not in REFUSALS, f"{service} {path} refused the token: {granted.text}"
    metrics = served.client.get("/metrics", headers=GRANTED)
    assert metrics.status_code == 200 and "obm_http_request_duration_seconds" in metrics.text


def test_the_orchestrators_fast_book_read_needs_the_token_too(serve: Any) -> None:
    client = serve("orchestrator", "token").client
    plain_read = "/api/order-book?depth=5"
    assert client.get(plain_read).status_code == 401
    assert client.get(plain_read, headers=WRONG).status_code == 401
    assert client.get(plain_read, headers=GRANTED).status_code == 503, "the receiver is absent"


def test_the_page_itself_loads_without_the_token(serve: Any) -> None:
    page = serve("orchestrator", "token").client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower(), "the UI cannot ask for a token"


@pytest.mark.parametrize(
    "subprotocols",
    [[], ["obm.live"], ["obm.live", f"bearer.{TOKEN[::-1]}"]],
    ids=["none", "no token", "wrong token"],
)
def test_the_live_feed_closes_1008_without_the_token(serve: Any, subprotocols: list[str]) -> None:
    client = serve("orchestrator", "token").client
    with (
        client.websocket_connect("/api/live", subprotocols=subprotocols) as socket,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        socket.receive_text()
    assert closed.value.code == 1008
    assert "token" in closed.value.reason


@pytest.mark.parametrize("read_auth", ["token", "open"])
def test_the_live_feed_takes_the_token_as_a_subprotocol(serve: Any, read_auth: str) -> None:
    served: Served = serve("orchestrator", read_auth)
    offered = ["obm.live", f"bearer.{TOKEN}"]
    with served.client.websocket_connect("/api/live", subprotocols=offered) as socket:
        assert socket.accepted_subprotocol == "obm.live", "the token must never be echoed back"
        assert socket.receive_json()["type"] == "frame"
        hang_up(served, socket)


def test_the_live_feed_stays_open_without_a_subprotocol_by_default(serve: Any) -> None:
    served: Served = serve("orchestrator")
    with served.client.websocket_connect("/api/live") as socket:
        assert socket.accepted_subprotocol is None
        assert socket.receive_json()["type"] == "frame"
        hang_up(served, socket)
