"""The chat page tells the bot that the agent is typing, in real headless Chromium.

The page's clock is Playwright's, paused, so "at most one report every 2.5 s" is counted
in the page's own time, never in the machine's. A report is sent from the reply box's
input handler, so the page's requests come in the order of what the agent did; a request
the test makes the page send afterwards is the barrier that says nothing else is coming.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from tests.conftest import RunningBridge
from tests.e2e.test_console_browser import WAIT_MS, watch_policy
from tests.e2e.test_console_browser import browser as browser  # the Chromium fixture
from tests.e2e.test_console_browser import console_bridge as console_bridge  # SQLite
from tests.fakes import FakeBot, handoff_body

if TYPE_CHECKING:
    from playwright.async_api import Browser, Dialog, Page, Request

pytestmark = pytest.mark.browser

# Past the page's interval between two reports (2.5 s), in the page's paused clock.
PAST_THE_INTERVAL_MS = 3_000


@pytest.fixture
async def page(browser: Browser, console_bridge: RunningBridge) -> AsyncIterator[Page]:
    """A fresh tab whose clock the test moves; closed before the bridge stops."""
    context = await browser.new_context()
    context.set_default_timeout(WAIT_MS)
    try:
        tab = await context.new_page()
        await tab.clock.install()
        yield tab
    finally:
        await context.close()


async def _posted_after_everything_before(page: Page) -> None:
    """Make the page send one more request and wait for it: what it sent before is seen."""
    async with page.expect_request(lambda r: r.url.endswith("/conversation")):
        await page.evaluate("() => { window.consoleApp.api('GET', '/conversation'); }")


async def test_typing_in_the_reply_box_tells_the_bot_throttled_and_never_after_the_end(
    page: Page, console_bridge: RunningBridge, bot: FakeBot
) -> None:
    from playwright.async_api import expect

    problems: list[str] = []
    watch_policy(page, problems)
    posts: list[str] = []  # the last path segment of each POST the page sends

    def on_request(request: Request) -> None:
        if request.method == "POST":
            posts.append(request.url.rsplit("/", 1)[1])

    page.on("request", on_request)

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)
    status, conversation = await console_bridge.post("/v1/handoffs", handoff_body(bot.url))
    assert status == 201, conversation
    await page.goto(conversation["join_url"])
    await page.fill("#agent-name", "Ana")
    await page.click("#join")
    await expect(page.locator("#composer")).to_be_enabled()
    # From here the page's time moves only when the test moves it.
    await page.clock.pause_at(datetime.now() + timedelta(seconds=5))

    composer = page.locator("#composer")
    await composer.press_sequentially("   ")  # a blank box is not typing
    await _posted_after_everything_before(page)
    assert posts == ["join"]

    async with page.expect_response(lambda r: r.url.endswith("/typing")) as first:
        await composer.press_sequentially("Hello")
    assert (await first.value).status == 204
    await bot.wait_for(lambda b: bool(b.of_type("agent.typing")))
    (typing,) = bot.of_type("agent.typing")
    assert typing.data["conversation_id"] == conversation["id"]
    assert typing.data["agent"] == {"name": "Ana"}
    await composer.press_sequentially(", John")  # within the interval: no report
    await _posted_after_everything_before(page)
    assert posts == ["join", "typing"]

    await page.clock.run_for(PAST_THE_INTERVAL_MS)
    await composer.press_sequentially("!")
    await _posted_after_everything_before(page)
    assert posts == ["join", "typing", "typing"]

    await page.click("#close")
    await expect(page.locator("#status")).to_have_text("closed")
    await page.clock.run_for(PAST_THE_INTERVAL_MS)
    # The box is disabled now; input that still reaches it (a script, an extension) is
    # not reported either.
    await page.evaluate(
        """() => {
          const box = document.getElementById('composer');
          box.value = 'one more thing';
          box.dispatchEvent(new Event('input'));
        }"""
    )
    await _posted_after_everything_before(page)
    assert posts == ["join", "typing", "typing", "close"]
    assert problems == []
