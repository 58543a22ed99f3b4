"""Who the sender's gateway lets in, and the reason it gives everyone else."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from pydantic import SecretStr

from obm_shared.live_protocol import AuthRequest, cram_response, new_challenge
from sender.catalog import Catalog
from sender.core.config import Settings
from sender.gateway.server import Gateway
from tests.conftest import DATA_DIR

KEY = "db-" + "K3y" * 9 + "ab"
CLX5 = DATA_DIR / "CLX5" / "CLX5_mbo.dbn"


def gateway(tmp_path: Path, *keys: str) -> Gateway:
    shutil.copy(CLX5, tmp_path / CLX5.name)
    settings = Settings(data_dir=tmp_path, gateway_api_keys=tuple(SecretStr(key) for key in keys))
    return Gateway(settings, Catalog(tmp_path))


def refusal(gateway: Gateway, key: str, **fields: object) -> str | None:
    challenge = new_challenge()
    options: dict[str, object] = {"dataset": "GLBX.MDP3"} | fields
    return asyncio.run(gateway.admit(challenge, AuthRequest(auth=cram_response(challenge, key), **options)))  # type: ignore[arg-type]


pytestmark = pytest.mark.skipif(not CLX5.is_file(), reason=f"{CLX5} not found")


def test_the_right_key_is_let_in(tmp_path: Path) -> None:
    assert refusal(gateway(tmp_path, "db-" + "Z" * 29, KEY), KEY) is None


def test_without_keys_every_client_is_told_why(tmp_path: Path) -> None:
    served = gateway(tmp_path)
    assert refusal(served, KEY) == (
        "authentication failed: this gateway has no API keys configured (SENDER_GATEWAY_API_KEYS)"
    )
    assert served.auth_failures_total == 1


def test_a_wrong_key_is_counted(tmp_path: Path) -> None:
    served = gateway(tmp_path, KEY)
    assert refusal(served, "db-" + "W" * 29) == "authentication failed: unknown API key"
    assert served.auth_failures_total == 1


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"dataset": "XNAS.ITCH"}, "unknown dataset 'XNAS.ITCH': this sender offers GLBX.MDP3"),
        ({"compression": "zstd"}, "only encoding=dbn, compression=none and ts_out=0 are offered"),
        ({"ts_out": 1}, "only encoding=dbn, compression=none and ts_out=0 are offered"),
    ],
)
def test_what_is_not_offered_is_refused(tmp_path: Path, fields: dict[str, object], reason: str) -> None:
    assert refusal(gateway(tmp_path, KEY), KEY, **fields) == reason


def test_keys_must_have_databentos_format() -> None:
    with pytest.raises(ValueError, match="29 letters or digits"):
        Settings.model_validate({"gateway_api_keys": f"{KEY},db-short"})
