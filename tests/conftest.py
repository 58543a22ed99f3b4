"""Shared fixtures: where the real DBN files are, and whether their absence is a skip or a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from receiver.book import hot_path_build
from receiver.book.market import Market

DATA_DIR = Path(
    os.environ.get("OBM_DATA_DIR", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
)
REQUIRE_DATA = os.environ.get("OBM_REQUIRE_DATA") == "1"
EXPECTED_HOT_PATH = os.environ.get("OBM_EXPECT_HOT_PATH")
"""Set (to "compiled" or "python") by a run of the tests that must exercise that build of the receiver's book."""

CLX5 = "CLX5/CLX5_mbo.dbn"
ESM4 = "ESM4/esm4-glbx-mdp3-20240508.mbo.dbn.zst"
DBEQ = "DBEQ/dbeq-basic-20240403.mbo.dbn.zst"


def real_file(relative: str) -> Path:
    """Path of a real data file; skips the test (or fails it, when OBM_REQUIRE_DATA=1) if it is absent."""
    path = DATA_DIR / relative
    if not path.is_file():
        message = (
            f"real data file {path} not found (set OBM_DATA_DIR to the folder holding CLX5/, ESM4/, DBEQ/)"
        )
        if REQUIRE_DATA:
            pytest.fail(message)
        pytest.skip(message)
    return path.resolve()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to run against another build of the book than the one asked for (a wrong path would pass)."""
    if EXPECTED_HOT_PATH and hot_path_build() != EXPECTED_HOT_PATH:
        raise pytest.UsageError(
            f"OBM_EXPECT_HOT_PATH={EXPECTED_HOT_PATH}, but the book is {hot_path_build()}"
        )


@pytest.fixture
def clx5() -> Path:
    return real_file(CLX5)


@pytest.fixture
def esm4() -> Path:
    return real_file(ESM4)


@pytest.fixture
def dbeq() -> Path:
    return real_file(DBEQ)


@pytest.fixture
def fixtures_dir() -> Path:
    return real_file("fixtures/test_data.mbo.dbn").parent


QueuedBooks = dict[tuple[int, int], tuple[list[object], list[object]]]


def queued_books(market: Market) -> QueuedBooks:
    """Every book of ``market``, level by level with its orders in queue order, keyed by (instrument, publisher)."""
    return {
        key: (
            [(price, level.size, list(level.orders.items())) for price, level in book.bids.items()],
            [(price, level.size, list(level.orders.items())) for price, level in book.asks.items()],
        )
        for key, book in market.books.items()
    }
