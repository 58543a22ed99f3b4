"""The history view in real headless Chromium (Playwright) against the three services as local processes
(issue 15): replay CLX5, open the history while it is received, click a point, step events with the keyboard,
return to live; at every point the ladder and the BBO are the API's book at the time (or event) the page shows.

Screenshots go to test-artifacts/ (history-view.png is the one the closing note describes).
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from receiver.history.points import parse_time
from tests.conftest import CLX5, real_file
from tests.integration import test_ui_browser
from tests.integration.conftest import Stack
from tests.integration.test_ui_browser import (
    ARTIFACTS,
    LADDER_JS,
    number,
    page_summary,
    wait_until_sender_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.realdata]

browser = test_ui_browser.browser
page = test_ui_browser.page

CLX5_RECORDS = "38,212"
CLX5_EVENTS = 32_053
SPEED = "1000"
"""CLX5 spans 2.5 hours of market time: about 9 s at 1000x, long enough to travel while it is received."""
WAIT_MS = 30_000
REPLAY_TIMEOUT_MS = 120_000
SHOWN_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}\.\d{9}) UTC")

Level = tuple[Decimal, int, int | None]


def shown_levels(page: Any, rows: int) -> tuple[list[Level], list[Level]]:
    """The ladder's (price, size, orders) per side, best first, as the page shows them."""
    shown = page.evaluate(LADDER_JS)[:rows]

    def side(name: str) -> list[Level]:
        cells = [row[name] for row in shown if row[name]["price"]]
        return [(Decimal(cell["price"]), number(cell["size"]) or 0, number(cell["count"])) for cell in cells]

    return side("bid"), side("ask")


def api_book(stack: Stack, rows: int, **point: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The API's consolidated CLX5 book at ``point`` (``at`` or ``at_event``; none: the live book), and the
    point it answers for."""
    params: dict[str, str | int] = {"depth": rows, "per_publisher": "false", **point}
    answer = httpx.get(f"{stack.orchestrator}/api/order-book", params=params, timeout=10)
    assert answer.status_code == 200, (
        f"GET /api/order-book?{point} answered {answer.status_code}: {answer.text}"
    )
    body = answer.json()
    return body["books"][0], body.get("point")


def levels(book: dict[str, Any], side: str, rows: int) -> list[Level]:
    return [(Decimal(level["price"]), level["size"], level["count"] or None) for level in book[side][:rows]]


def shown_point(page: Any) -> tuple[str, int]:
    """The market time the page shows (as ISO-8601 UTC, to the nanosecond) and the event index."""
    text = page.locator("#history-time").inner_text()
    match = SHOWN_TIME.fullmatch(text.strip())
    assert match, f"the history should show the book's market time to the nanosecond, it shows {text!r}"
    event = number(page.locator("#history-event").inner_text())
    assert event is not None, "the history shows no event index for the point"
    return f"{match[1]}T{match[2]}Z", event


def assert_page_shows(page: Any, book: dict[str, Any], rows: int, where: str) -> None:
    """The ladder's levels and the BBO strip are ``book``'s."""
    bids, asks = shown_levels(page, rows)
    assert bids == levels(book, "bids", rows), f"{where}: ladder bids {bids} differ from the API's"
    assert asks == levels(book, "asks", rows), f"{where}: ladder asks {asks} differ from the API's"
    for side, key in (("bid", "best_bid"), ("ask", "best_ask")):
        price = page.locator(f"#bbo-{side}-price").inner_text()
        size = page.locator(f"#bbo-{side}-size").inner_text()
        best = book[key]
        assert (Decimal(price), number(size)) == (Decimal(best["price"]), best["size"]), (
            f"{where}: best {side} {best['price']} x {best['size']} expected, the page shows {price} x {size}"
        )


def started_run(stack: Stack) -> str:
    """The id of the replay the page has just started, from the sender (the page may still show the last run's
    timeline and frames for a moment: the orchestrator answers from its read caches meanwhile)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        status = httpx.get(f"{stack.sender}/status", timeout=5).json()
        if status["state"] == "streaming":
            return str(status["run"]["run_id"])
        time.sleep(0.05)
    raise AssertionError(f"the sender did not start streaming within {WAIT_MS / 1000:g} s")


def travel_by_click(page: Any, stack: Stack, fraction: float, rows: int, where: str) -> int:
    """Click the history at ``fraction`` of its width; the page shows the API's book at the time it shows.
    Returns the event index shown."""
    before = page.locator("#history-time").inner_text()
    canvas = page.locator("#history-canvas").bounding_box()
    page.mouse.click(canvas["x"] + canvas["width"] * fraction, canvas["y"] + canvas["height"] * 0.5)
    try:
        page.wait_for_function(
            """(before) => {
                const history = document.querySelector('#history');
                const time = document.querySelector('#history-time').textContent;
                return history.dataset.mode === 'travel' && / UTC$/.test(time) && time !== before;
            }""",
            arg=before,
            timeout=WAIT_MS,
        )
    except Exception:
        mode = page.locator("#history").get_attribute("data-mode")
        shown = page.locator("#history-time").inner_text()
        note = page.locator("#history-note").inner_text()
        pytest.fail(
            f"{where}: a click at {fraction:.0%} of the history did not travel (mode {mode}, shows {shown!r},"
            f" note {note!r}); {page_summary(page)}"
        )
    at, event = shown_point(page)
    book, point = api_book(stack, rows, at=at)
    assert point is not None, f"{where}: the API's answer at {at} names no point"
    assert point["ts_recv"] == parse_time(at), (
        f"{where}: the page shows {at}, the book's event was received at {point['ts_recv']} ns"
    )
    assert point["event_index"] == event, (
        f"{where}: the page shows event {event}, the API {point['event_index']}"
    )
    assert_page_shows(page, book, rows, f"{where} (at {at})")
    assert page.locator("#badge-history").is_visible(), (
        f"{where}: the book panel does not say it shows history"
    )
    return event


def step(page: Any, stack: Stack, key: str, expected_event: int, rows: int) -> None:
    """Press ``key``; the page shows event ``expected_event`` and the API's book at that event."""
    page.keyboard.press(key)
    try:
        page.wait_for_function(
            "(want) => document.querySelector('#history-event').textContent.replace(/,/g, '') === String(want)",
            arg=expected_event,
            timeout=WAIT_MS,
        )
    except Exception:
        shown = page.locator("#history-event").inner_text()
        pytest.fail(f"{key} should show event {expected_event}, the page shows {shown}; {page_summary(page)}")
    book, point = api_book(stack, rows, at_event=str(expected_event))
    assert point is not None and point["event_index"] == expected_event, f"the API answered for {point}"
    assert_page_shows(page, book, rows, f"after {key}, event {expected_event}")
    _, shown_event = shown_point(page)
    assert shown_event == expected_event


def test_travel_through_a_clx5_replay_in_the_history_view(stack: Stack, page: Any) -> None:
    real_file(CLX5)
    wait_until_sender_idle(stack)
    ARTIFACTS.mkdir(exist_ok=True)
    name = f"real/{CLX5}"
    page.goto(stack.orchestrator)
    page.wait_for_selector(f'#file option[value="{name}"]', state="attached", timeout=15_000)
    page.locator("#history-toggle").click()
    assert page.locator("#history-canvas").is_visible(), "the history did not open"
    rows = int(page.locator("#rows").input_value())
    page.select_option("#file", name)
    page.select_option("#speed", SPEED)
    page.locator("#start").click()
    run_id = started_run(stack)

    # While the run is received, its timeline fills the history and a point in it can be traveled to.
    try:
        page.wait_for_function(
            """(runId) => {
                const history = document.querySelector('#history');
                return document.querySelector('#progress').dataset.state === 'streaming'
                    && history.dataset.run === runId && Number(history.dataset.events) > 0;
            }""",
            arg=run_id,
            timeout=WAIT_MS,
        )
    except Exception:
        pytest.fail(f"the history never showed run {run_id} while it was received; {page_summary(page)}")
    # early in the timeline: its end is the last record received, which may not be applied yet (409 there)
    travel_by_click(page, stack, 0.2, rows, "during the replay")
    page.screenshot(path=str(ARTIFACTS / "history-during-replay.png"), full_page=True)

    try:  # after the run: the timeline covers all of it
        page.wait_for_function(
            f"""() => document.querySelector('#progress-records').textContent.trim() === '{CLX5_RECORDS} / {CLX5_RECORDS}'
                && document.querySelector('#history').dataset.events === '{CLX5_EVENTS}'""",
            timeout=REPLAY_TIMEOUT_MS,
        )
    except Exception:
        pytest.fail(f"the history never showed the whole CLX5 run; {page_summary(page)}")
    event = travel_by_click(page, stack, 0.35, rows, "after the replay")
    page.wait_for_timeout(400)  # let the ladder's flashes of changed sizes fade before the screenshot
    page.screenshot(path=str(ARTIFACTS / "history-view.png"), full_page=True)

    step(page, stack, "ArrowRight", event + 1, rows)
    step(page, stack, "ArrowLeft", event, rows)
    step(page, stack, "ArrowLeft", event - 1, rows)
    page.screenshot(path=str(ARTIFACTS / "history-stepped.png"), full_page=True)

    page.locator("#history-live").click()
    page.wait_for_function(
        "() => document.querySelector('#history').dataset.mode === 'live'", timeout=WAIT_MS
    )
    live, _ = api_book(stack, rows)
    assert_page_shows(page, live, rows, "back to live, the final book")
    assert not page.locator("#badge-history").is_visible(), "back to live, the book still says it is history"
    page.screenshot(path=str(ARTIFACTS / "history-live-again.png"), full_page=True)
