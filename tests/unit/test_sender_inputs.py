"""The sender's inputs, tried as an attacker would: every bad input is a 4xx with a reason, never a 500, a
memory blow-up, a stuck sender or a connection to a host it was not allowed to reach.

The app runs in-process (its lifespan included); data folders are made in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import zstandard
from fastapi.testclient import TestClient
from pydantic import ValidationError

from obm_shared.dbn_file import DbnFileError, open_mbo_file
from obm_shared.limits import MAX_FILE_NAME_CHARS, MAX_REQUEST_BODY_BYTES
from sender.core.config import Settings
from sender.main import create_app

MBO = "mbo.dbn"
TRADES = "trades.dbn"
BOMB_CLAIM_BYTES = 4_000_000_000
ADDRESS_SPACE_LIMIT_BYTES = 1 << 30
BOMB_PROBLEM = f"not a DBN file: metadata length {BOMB_CLAIM_BYTES} exceeds the limit"


def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def data_dir(tmp_path: Path, fixtures_dir: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(fixtures_dir / "test_data.mbo.dbn", folder / MBO)
    shutil.copy(fixtures_dir / "test_data.trades.dbn", folder / TRADES)
    return folder


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, default_file=MBO, receiver_port=free_port(), connect_timeout_seconds=1)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def post_json(client: TestClient, path: str, body: bytes | str) -> httpx.Response:
    """POST a raw JSON text (NaN and Infinity are tokens Python's JSON reader takes; httpx would refuse them)."""
    response: httpx.Response = client.post(path, content=body, headers={"content-type": "application/json"})
    return response


def write_zstd_bomb(path: Path) -> Path:
    """A ~124 KB .dbn.zst whose prelude claims 4 GB of metadata, followed by 4 GB of zeros (frames of 64 MiB)."""
    compressor = zstandard.ZstdCompressor(level=19)
    prelude = compressor.compress(b"DBN\x02" + BOMB_CLAIM_BYTES.to_bytes(4, "little"))
    zeros = compressor.compress(bytes(64 << 20))
    path.write_bytes(prelude + zeros * (BOMB_CLAIM_BYTES // (64 << 20) + 1))
    return path


# --- 1. the DBN header bomb ---------------------------------------------------------------------------------


def test_a_header_claiming_4_gb_of_metadata_is_refused_before_it_is_read(tmp_path: Path) -> None:
    raw = tmp_path / "bomb.mbo.dbn"
    raw.write_bytes(b"DBN\x02" + BOMB_CLAIM_BYTES.to_bytes(4, "little") + bytes(1000))
    for path in (raw, write_zstd_bomb(tmp_path / "bomb.mbo.dbn.zst")):
        with pytest.raises(DbnFileError) as error:
            open_mbo_file(path)
        assert error.value.problem == BOMB_PROBLEM, path.name


def test_listing_a_header_bomb_under_a_1_gb_address_space_limit_names_the_problem(tmp_path: Path) -> None:
    """What the UI does on load (GET /files), in a process that would die if it allocated the claimed 4 GB."""
    data = tmp_path / "data"
    data.mkdir()
    bomb = write_zstd_bomb(data / "bomb.mbo.dbn.zst")
    assert bomb.stat().st_size < 200_000
    (data / "raw-bomb.mbo.dbn").write_bytes(b"DBN\x02" + BOMB_CLAIM_BYTES.to_bytes(4, "little"))
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from fastapi.testclient import TestClient
        from sender.core.config import Settings
        from sender.main import create_app

        with TestClient(create_app(Settings(data_dir=Path(sys.argv[1]))), raise_server_exceptions=False) as c:
            listed = c.get("/files")
            checked = c.post("/start-streaming/check", json={"file": "bomb.mbo.dbn.zst"})
        print(json.dumps({"files": [listed.status_code, listed.text], "check": [checked.status_code, checked.text]}))
        """
    )

    def limit_address_space() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT_BYTES, ADDRESS_SPACE_LIMIT_BYTES))

    result = subprocess.run(
        [sys.executable, "-c", script, str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_address_space,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, f"the sender died listing the bomb: {result.stderr[-2000:]}"
    answers = json.loads(result.stdout.splitlines()[-1])
    status, text = answers["files"]
    assert status == 200, f"GET /files answered {status}: {text[:500]}"
    problems = {info["name"]: info["problem"] for info in json.loads(text)}
    assert problems == {"bomb.mbo.dbn.zst": BOMB_PROBLEM, "raw-bomb.mbo.dbn": BOMB_PROBLEM}
    status, text = answers["check"]
    assert (status, json.loads(text)["detail"]) == (422, f"bomb.mbo.dbn.zst: {BOMB_PROBLEM}")


# --- 2. bounded inputs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("speed", ["NaN", "Infinity", "-Infinity", "1e309", "-1e309"])
@pytest.mark.parametrize("route", ["/start-streaming", "/start-streaming/check"])
def test_a_non_finite_speed_is_a_422_with_a_reason(client: TestClient, route: str, speed: str) -> None:
    answer = post_json(client, route, f'{{"file": "{MBO}", "speed": {speed}}}')
    assert answer.status_code == 422, f"speed {speed}: {answer.status_code} {answer.text[:300]}"
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body", "speed"]
    assert "finite" in error["msg"]
    assert client.get("/status").json()["state"] == "idle"


@pytest.mark.parametrize("speed", ["1e-300", "0", "-1", "1e300"])
def test_a_speed_outside_the_documented_range_is_a_422(client: TestClient, speed: str) -> None:
    answer = post_json(client, "/start-streaming", f'{{"file": "{MBO}", "speed": {speed}}}')
    assert answer.status_code == 422, f"speed {speed}: {answer.status_code} {answer.text[:300]}"
    assert client.get("/status").json()["state"] == "idle"


@pytest.mark.parametrize(
    "name",
    [
        "x" * (MAX_FILE_NAME_CHARS + 1),
        "a/" * 600 + MBO,
        "x" * 300 + ".dbn",  # one path component longer than the file system allows
    ],
    ids=["1025 characters", "1200 characters of folders", "300-character component"],
)
def test_a_long_file_name_is_a_400(client: TestClient, name: str) -> None:
    for route in ("/start-streaming/check", "/start-streaming"):
        answer = client.post(route, json={"file": name})
        assert (answer.status_code, answer.json()) == (400, {"detail": "file name too long"}), route


def test_a_10_mb_file_name_is_refused_before_it_is_read(client: TestClient) -> None:
    answer = client.post("/start-streaming", json={"file": "x" * 10_000_000})
    assert answer.status_code == 413


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_request_body_over_64_kib_is_a_413(client: TestClient, chunked: bool) -> None:
    body = b'{"file": "' + b"x" * MAX_REQUEST_BODY_BYTES + b'"}'
    content: bytes | Iterator[bytes] = iter([body[:1000], body[1000:]]) if chunked else body
    answer = client.post("/start-streaming", content=content, headers={"content-type": "application/json"})
    assert answer.status_code == 413
    # just under the limit is read (and refused for what it says, not for its size)
    fits = b'{"file": "' + b"x" * (MAX_REQUEST_BODY_BYTES - 100) + b'"}'
    assert post_json(client, "/start-streaming", fits).status_code == 400


def test_symlink_loops_and_dangling_links_do_not_break_the_listing(
    client: TestClient, data_dir: Path
) -> None:
    (data_dir / "self.mbo.dbn").symlink_to("self.mbo.dbn")
    (data_dir / "gone.mbo.dbn").symlink_to("nowhere.mbo.dbn")
    (data_dir / "here").symlink_to(".", target_is_directory=True)
    answer = client.get("/files")
    assert answer.status_code == 200, answer.text[:500]
    listed = {info["name"]: info for info in answer.json()}
    assert sorted(listed) == ["gone.mbo.dbn", MBO, "self.mbo.dbn", TRADES], "each real file listed once"
    assert listed[MBO]["streamable"]
    assert "symbolic links" in listed["self.mbo.dbn"]["problem"]
    assert not listed["gone.mbo.dbn"]["streamable"]
    for name, status in (("self.mbo.dbn", 404), ("gone.mbo.dbn", 404), ("here/here/" + MBO, 200)):
        assert client.post("/start-streaming/check", json={"file": name}).status_code == status, name


# --- 3. allowed receivers -------------------------------------------------------------------------------------

NOT_ALLOWED = [
    {"receiver_host": "x" * 300},
    {"receiver_host": ".."},
    {"receiver_host": "169.254.169.254", "receiver_port": 80},
    {"receiver_host": "127.0.0.1", "receiver_port": 22},
    {"receiver_host": "no-such-host.invalid"},
    {"receiver_host": "localhost"},
]


@pytest.mark.parametrize("target", NOT_ALLOWED, ids=lambda target: str(target)[:40])
def test_a_target_not_allowed_is_403_with_one_fixed_message(
    client: TestClient, target: dict[str, object]
) -> None:
    for route in ("/start-streaming/check", "/start-streaming"):
        answer = client.post(route, json={"file": MBO, **target})
        assert (answer.status_code, answer.json()) == (403, {"detail": "receiver not allowed"}), route
    assert client.get("/status").json()["state"] == "idle", "nothing started"


def test_allowed_receivers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("SENDER_ALLOWED_RECEIVERS", "Receiver-A:9000, [::1]:9001")
    settings = Settings(data_dir=data_dir, default_file=MBO)
    assert settings.receiver_allowed("receiver-a", 9000)
    assert settings.receiver_allowed("::1", 9001)
    assert not settings.receiver_allowed("127.0.0.1", 9000), "the list replaces the default"
    monkeypatch.setenv("SENDER_ALLOWED_RECEIVERS", "no-port")
    with pytest.raises(ValueError, match="not host:port"):
        Settings(data_dir=data_dir)


def test_the_configured_receiver_is_allowed_by_default(client: TestClient, settings: Settings) -> None:
    answer = client.post(
        "/start-streaming/check",
        json={"file": MBO, "receiver_host": settings.receiver_host, "receiver_port": settings.receiver_port},
    )
    assert answer.status_code == 200, answer.text


# --- 4. /start-streaming/check answers what /start-streaming would, starting nothing --------------------------


def test_check_answers_with_the_plan_and_starts_nothing(client: TestClient, settings: Settings) -> None:
    answer = client.post("/start-streaming/check", json={"file": MBO, "speed": 2})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "file": MBO,
        "records_total": 2,
        "receiver": f"127.0.0.1:{settings.receiver_port}",
        "speed": 2.0,
    }
    status = client.get("/status").json()
    assert (status["state"], status["run"]) == ("idle", None), "a check must start nothing"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"file": "../etc/passwd.dbn"}, 400),
        ({"file": "notes.txt"}, 400),
        ({"file": "missing.mbo.dbn"}, 404),
        ({"file": TRADES}, 422),
        ({"file": MBO, "receiver_port": 1}, 403),
        ({"file": MBO, "speed": 0}, 422),
        ({"file": MBO, "receiver_port": 0}, 422),
    ],
)
def test_check_refuses_exactly_as_start_would(
    client: TestClient, body: dict[str, object], status: int
) -> None:
    checked = client.post("/start-streaming/check", json=body)
    assert client.get("/status").json()["state"] == "idle", "the check started nothing"
    started = client.post("/start-streaming", json=body)
    assert (checked.status_code, checked.json()) == (started.status_code, started.json())
    assert checked.status_code == status
    assert client.get("/status").json()["state"] == "idle", "a refused start started nothing"


class SilentReceiver:
    """A TCP listener that accepts and then neither reads nor writes: a stream to it stays running."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        try:
            while True:
                self.connections.append(self.server.accept()[0])
        except OSError:
            return

    def close(self) -> None:
        self.server.close()
        for connection in self.connections:
            connection.close()


def wait_for_state(client: TestClient, *states: str) -> dict[str, object]:
    deadline = time.monotonic() + 10
    status: dict[str, object]
    while (status := client.get("/status").json())["state"] not in states:
        assert time.monotonic() < deadline, f"sender still {status['state']}, expected {states}"
        time.sleep(0.02)
    return status


def test_busy_is_409_from_check_and_start_and_stop_says_what_it_did(data_dir: Path, tmp_path: Path) -> None:
    from demo_market.writer import write_demo_file

    write_demo_file(data_dir / "demo.mbo.dbn", records=5_000)
    receiver = SilentReceiver()
    settings = Settings(data_dir=data_dir, default_file=MBO, receiver_port=receiver.port)
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            started = client.post("/start-streaming", json={"file": "demo.mbo.dbn", "speed": 0.001})
            assert started.status_code == 200, started.text
            wait_for_state(client, "streaming")
            for route in ("/start-streaming/check", "/start-streaming"):
                answer = client.post(route, json={"file": MBO})
                assert answer.status_code == 409, (
                    f"{route} while streaming: {answer.status_code} {answer.text}"
                )
                assert "already streaming demo.mbo.dbn" in answer.json()["detail"]
            stopped = client.post("/stop", json={}).json()
            assert stopped["stopped"] is True
            assert stopped["run"]["state"] == "stopped"
            assert client.post("/stop", json={}).json()["stopped"] is False, "a second stop stops nothing"
    finally:
        receiver.close()


def test_stop_after_a_finished_run_says_nothing_was_stopped(client: TestClient) -> None:
    assert client.post("/stop", json={}).json() == {"stopped": False, "run": None}
    assert client.post("/start-streaming", json={"file": MBO}).status_code == 200
    wait_for_state(client, "done", "failed")
    answer = client.post("/stop", json={}).json()
    assert answer["stopped"] is False
    assert answer["run"]["state"] in ("done", "failed")


@pytest.mark.parametrize(
    ("variable", "secret"),
    [("SENDER_GATEWAY_API_KEYS", "db-notAValidKeyButStillSecret"), ("OBM_API_TOKEN", "tooShortSecret")],
)
def test_a_secret_refused_at_start_is_named_not_shown(
    variable: str, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, secret)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert secret not in str(refused.value), f"the refusal of {variable} shows the secret: {refused.value}"
