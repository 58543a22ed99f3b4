"""The web UI against services that need the API token for everything, reads and the live feed included.

The page gets the token from the address `make up` prints (``#token=...``) or asks for it once after a 401;
it keeps it in sessionStorage, never in a cookie.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration import test_ui_browser
from tests.integration.conftest import Stack, running_stack

pytestmark = [pytest.mark.browser, pytest.mark.integration]

browser = test_ui_browser.browser
page = test_ui_browser.page
LOAD_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def locked_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The three services with a token that reads need too (OBM_READ_AUTH=token)."""
    with running_stack(tmp_path_factory.mktemp("locked"), secrets.token_urlsafe(32), "token") as running:
        yield running


def assert_the_page_works_with_the_token(page: Any, stack: Stack) -> None:
    """Live frames are drawn (the feed let the page in), and the file list came through."""
    page.wait_for_function(
        "() => /^frame \\d+$/.test(document.querySelector('#frame-seq').textContent)",
        timeout=LOAD_TIMEOUT_MS,
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('#file option')].some((o) => o.value === 'demo/demo.mbo.dbn')",
        timeout=LOAD_TIMEOUT_MS,
    )
    assert page.evaluate("() => sessionStorage.getItem('obm.token')") == stack.token
    assert page.context.cookies() == [], "the token must never travel as a cookie"
    alerts = page.locator("#alerts").inner_text()
    assert "token" not in alerts.lower(), f"the page still reports a refusal: {alerts!r}"


def test_the_page_takes_the_token_from_its_address_and_drops_it_from_there(
    page: Any, locked_stack: Stack
) -> None:
    page.on("dialog", lambda dialog: pytest.fail(f"the page asked although it had the token: {dialog}"))
    page.goto(f"{locked_stack.orchestrator}/#token={locked_stack.token}")
    assert_the_page_works_with_the_token(page, locked_stack)
    assert "token" not in page.url, f"the token stayed in the address bar: {page.url}"


def test_the_page_asks_once_for_the_token_after_a_401(page: Any, locked_stack: Stack) -> None:
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept(locked_stack.token)

    page.on("dialog", answer)
    page.goto(locked_stack.orchestrator)
    assert_the_page_works_with_the_token(page, locked_stack)
    assert len(asked) == 1, f"asked {len(asked)} times: {asked}"
    assert "API token" in asked[0]
