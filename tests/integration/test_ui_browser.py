"""The web UI in real headless Chromium (Playwright) against the three services as local processes.

Needs the ``playwright`` Python package and Debian's ``chromium`` at /usr/bin/chromium; without them the
tests are skipped, or fail when OBM_REQUIRE_BROWSER=1 (as in CI).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.local_stack import free_port, local_services
from tests.conftest import CLX5, real_file
from tests.integration.conftest import Stack

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = Path(os.environ.get("OBM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VIEWPORT = {"width": 1440, "height": 900}
REPLAY_TIMEOUT_MS = 120_000
COMPARED_LEVELS = 10

LADDER_JS = """() => [...document.querySelectorAll('#ladder .ladder-row')]
    .filter((row) => !row.hidden)
    .map((row) => Object.fromEntries(['bid', 'ask'].map((side) => [side, {
        price: row.querySelector(`.${side} .price`).textContent,
        size: row.querySelector(`.${side} .size`).textContent,
        count: row.querySelector(`.${side} .count`).textContent,
    }])))"""


def _missing(reason: str) -> None:
    message = f"browser tests need {reason}"
    if os.environ.get("OBM_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright, for the module."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package (pip install playwright)")
    if not CHROMIUM.is_file():
        _missing(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab; JavaScript errors on the page fail the test."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"the page raised JavaScript errors: {errors}"


def wait_until_sender_idle(stack: Stack, timeout: float = 60) -> None:
    """Another test may have left a replay running; starting now would be refused as busy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{stack.sender}/status", timeout=5).json()["state"] != "streaming":
            return
        time.sleep(0.2)
    raise AssertionError(f"the sender was still streaming after {timeout} s; cannot start a replay")


def page_summary(page: Any) -> str:
    """What the page says about the replay and its problems, for failure messages."""
    progress = page.locator("#progress").inner_text().replace("\n", " ")
    alerts = page.locator("#alerts").inner_text().replace("\n", " ") or "none"
    return f"progress: {progress!r}; alerts: {alerts!r}"


def number(text: str) -> int | None:
    """A size or order count as the ladder shows it ("1,234"; "—" for none)."""
    return None if text.strip() in ("", "—") else int(text.replace(",", ""))


def api_levels(book: dict[str, Any], side: str) -> list[tuple[Decimal, int, int | None]]:
    return [
        (Decimal(level["price"]), level["size"], level["count"] or None)
        for level in book[side][:COMPARED_LEVELS]
    ]


def page_levels(rows: list[dict[str, Any]], side: str) -> list[tuple[Decimal, int, int | None]]:
    shown = [row[side] for row in rows[:COMPARED_LEVELS] if row[side]["price"]]
    return [(Decimal(cell["price"]), number(cell["size"]) or 0, number(cell["count"])) for cell in shown]


@pytest.mark.realdata
def test_clx5_replay_shows_the_final_book_live(stack: Stack, page: Any) -> None:
    real_file(CLX5)
    wait_until_sender_idle(stack)
    name = f"real/{CLX5}"
    page.goto(stack.orchestrator)
    page.wait_for_selector(f'#file option[value="{name}"]', state="attached", timeout=15_000)
    page.select_option("#file", name)
    page.select_option("#speed", "max")
    info = page.locator("#file-info").inner_text()
    assert "CLX5" in info and "38,212" in info, f"the file details should show symbol and records: {info!r}"
    page.locator("#start").click()

    done_with_every_record = """() => {
        const progress = document.querySelector('#progress');
        const records = document.querySelector('#progress-records');
        return progress.dataset.state === 'done' && records.textContent.trim() === '38,212 / 38,212';
    }"""
    try:  # a frame of the previous run may still say "done": wait for this run's totals
        page.wait_for_function(done_with_every_record, timeout=REPLAY_TIMEOUT_MS)
    except Exception:
        pytest.fail(f"the page never showed the CLX5 replay as done; {page_summary(page)}")
    progress = page.locator("#progress-records").inner_text()
    assert progress == "38,212 / 38,212", (
        f"progress should read 38,212 / 38,212 records sent, got {progress!r}"
    )

    response = httpx.get(
        f"{stack.orchestrator}/api/order-book", params={"depth": 20, "per_publisher": False}, timeout=5
    )
    book = response.json()["books"][0]
    want_bids, want_asks = api_levels(book, "bids"), api_levels(book, "asks")
    # The ladder follows the live feed: give it a few frames to catch up with the finished book.
    deadline = time.monotonic() + 10
    while True:
        rows = page.evaluate(LADDER_JS)
        got_bids, got_asks = page_levels(rows, "bid"), page_levels(rows, "ask")
        if (got_bids, got_asks) == (want_bids, want_asks) or time.monotonic() > deadline:
            break
        page.wait_for_timeout(200)
    assert got_bids == want_bids, (
        f"ladder bids (price, size, orders) {got_bids} differ from the API's {want_bids}"
    )
    assert got_asks == want_asks, (
        f"ladder asks (price, size, orders) {got_asks} differ from the API's {want_asks}"
    )

    bbo = {
        key: page.locator(f"#bbo-{key}").inner_text()
        for key in ("bid-price", "bid-size", "ask-price", "ask-size")
    }
    assert (bbo["bid-price"], bbo["bid-size"]) == ("65.40", "1"), (
        f"best bid 65.40 x 1 expected, the page shows {bbo['bid-price']} x {bbo['bid-size']}"
    )
    assert (bbo["ask-price"], bbo["ask-size"]) == ("64.78", "3"), (
        f"best ask 64.78 x 3 expected, the page shows {bbo['ask-price']} x {bbo['ask-size']}"
    )
    assert page.locator("#badge-crossed").is_visible(), (
        "the CLX5 book ends crossed: the Crossed badge is not shown"
    )
    assert not page.locator("#badge-locked").is_visible(), "a crossed book is not locked, yet Locked is shown"
    assert page.locator("#tape .tape-row").count() > 0, "the trade tape is empty after a replay with trades"
    services = ", ".join(
        f'#health .pill.up[data-service="{name}"]' for name in ("orchestrator", "sender", "receiver")
    )
    health = page.locator(services).count()
    assert health == 3, f"all three services are up, the page shows {health} up"
    gateway = page.locator('#health .pill[data-service="gateway"]')
    assert gateway.count() == 1, "the health panel should show the sender's live gateway"

    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(500)  # let the last flashes of changed sizes fade before the screenshot
    page.screenshot(path=str(ARTIFACTS / "ui-clx5.png"))


@pytest.mark.realdata
def test_files_that_cannot_be_replayed_are_listed_disabled_with_their_problem(
    stack: Stack, page: Any
) -> None:
    real_file("fixtures/test_data.mbp-1.dbn")
    page.goto(stack.orchestrator)
    option = page.locator('#file option[value="real/fixtures/test_data.mbp-1.dbn"]')
    option.wait_for(state="attached", timeout=15_000)
    assert option.is_disabled(), "an MBP-1 file cannot be replayed, yet it can be chosen"
    assert "not MBO" in option.inner_text(), f"the option should say why: {option.inner_text()!r}"


@pytest.fixture
def orchestrator_without_receiver(stack: Stack, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A second orchestrator whose receiver URL points at a port nothing listens on."""
    port, dead = free_port(), free_port()
    receiver_url = f"http://127.0.0.1:{dead}"
    environment = {
        "ORCHESTRATOR_SENDER_URL": stack.sender,
        "ORCHESTRATOR_RECEIVER_URL": receiver_url,
        "ORCHESTRATOR_RECEIVER_INGEST_PORT": stack.ingest_port,
        "ORCHESTRATOR_REQUEST_TIMEOUT_SECONDS": 2,
    }
    with local_services({"orchestrator": environment}, tmp_path, {"orchestrator": port}) as running:
        yield running.urls["orchestrator"], receiver_url


def test_page_says_in_words_when_the_receiver_is_down(
    orchestrator_without_receiver: tuple[str, str], page: Any
) -> None:
    url, receiver_url = orchestrator_without_receiver
    page.goto(url)
    alerts = page.locator("#alerts")
    try:
        alerts.get_by_text("is down").first.wait_for(timeout=15_000)
    except Exception:
        pytest.fail(f"the page never said the receiver is down; {page_summary(page)}")
    said = alerts.inner_text()
    assert "Receiver" in said and "unreachable" in said and receiver_url in said, (
        f"the alert should name the receiver, say it is unreachable and where: {said!r}"
    )
    # The alert can come from the page's first requests, before the live feed's first frame: wait for it.
    expectations = {
        '#health .pill[data-service="receiver"][data-state="down"]': "the receiver's health pill shows it down",
        '#health .pill[data-service="sender"][data-state="up"]': "the sender's health pill shows it up",
        '#book .ladder-empty:has-text("Receiver unreachable")': "the book panel says why it is empty",
    }
    for selector, expectation in expectations.items():
        try:
            page.wait_for_selector(selector, timeout=10_000)
        except Exception:
            pytest.fail(f"expected: {expectation}; {page_summary(page)}")

    # Start fails at the receiver (it prepares the run first): the page says where and why.
    page.wait_for_selector('#file option[value="demo/demo.mbo.dbn"]', state="attached", timeout=15_000)
    page.select_option("#file", "demo/demo.mbo.dbn")
    page.locator("#start").click()
    failure = alerts.locator(".alert").filter(has_text="Start failed at the receiver")
    try:
        failure.wait_for(timeout=10_000)
    except Exception:
        pytest.fail(f"pressing Start with the receiver down should say so; {page_summary(page)}")
    row = failure.inner_text()
    assert "unreachable" in row, f"the start failure should give the receiver's reason: {row!r}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-receiver-down.png"))
