"""Unit tests build their settings themselves: a token or read-auth mode in the shell must not change them."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_token_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OBM_API_TOKEN", "OBM_READ_AUTH"):
        monkeypatch.delenv(name, raising=False)
