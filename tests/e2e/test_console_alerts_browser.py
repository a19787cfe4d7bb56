"""Alerts in real headless Chromium: while the tab is in the background, a customer's
message (chat page) or a newly offered chat (desk) counts in a badge in front of the
title and plays a chime made with the Web Audio API; the badge clears when the tab gets
the focus back, and the Sound toggle, remembered across reloads, silences the chime.

The page is sent to the background by making `document.hidden` true and
`document.hasFocus()` false and firing `visibilitychange`, as a browser does when the
agent switches tabs. The chime is counted by counting the oscillators the page makes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from tests.conftest import RunningBridge
from tests.e2e.test_console_browser import WAIT_MS, watch_policy
from tests.e2e.test_console_browser import browser as browser  # the Chromium fixture
from tests.e2e.test_desk_browser import desk_bridge as desk_bridge  # Ana and Ben, SQLite
from tests.fakes import FakeBot, handoff_body
from tests.integration.test_desk import desk_token

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.browser

COUNT_OSCILLATORS = """
window.__oscillators = 0;
const create = BaseAudioContext.prototype.createOscillator;
BaseAudioContext.prototype.createOscillator = function () {
  window.__oscillators += 1;
  return create.call(this);
};
"""
AWAY = """() => {
  Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
  document.hasFocus = () => false;
  document.dispatchEvent(new Event('visibilitychange'));
}"""
BACK = """() => {
  delete document.hidden;
  delete document.visibilityState;
  delete document.hasFocus;
  document.dispatchEvent(new Event('visibilitychange'));
  window.dispatchEvent(new Event('focus'));
}"""
TITLE = "John Doe · Agent console"


@pytest.fixture
async def context(browser: Browser, desk_bridge: RunningBridge) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile that counts oscillators; closed before the bridge stops."""
    fresh = await browser.new_context()
    fresh.set_default_timeout(WAIT_MS)
    await fresh.add_init_script(COUNT_OSCILLATORS)
    try:
        yield fresh
    finally:
        await fresh.close()


async def _oscillators(page: Page) -> int:
    return int(await page.evaluate("window.__oscillators"))


async def _customer_says(bridge: RunningBridge, cid: str, text: str) -> None:
    status, sent = await bridge.post(
        f"/v1/conversations/{cid}/messages", {"text": text, "id": f"m-{text}"}
    )
    assert status == 201, sent


async def test_customer_messages_in_the_background_badge_the_title_and_chime(
    context: BrowserContext, desk_bridge: RunningBridge, bot: FakeBot
) -> None:
    from playwright.async_api import expect

    problems: list[str] = []
    status, conversation = await desk_bridge.post("/v1/handoffs", handoff_body(bot.url))
    assert status == 201, conversation
    cid = conversation["id"]
    page = await context.new_page()
    watch_policy(page, problems)
    await page.goto(conversation["join_url"])
    await expect(page).to_have_title(TITLE)
    await expect(page.locator("#sound-toggle")).to_have_text("Sound on")

    # Looking at the page: a new message changes nothing in the title, and no chime.
    await _customer_says(desk_bridge, cid, "first")
    await page.locator(".message-customer", has_text="first").wait_for()
    await expect(page).to_have_title(TITLE)
    assert await _oscillators(page) == 0

    await page.evaluate(AWAY)
    await _customer_says(desk_bridge, cid, "second")
    await expect(page).to_have_title("(1) " + TITLE)
    one = await _oscillators(page)
    assert one > 0
    await _customer_says(desk_bridge, cid, "third")
    await expect(page).to_have_title("(2) " + TITLE)
    assert await _oscillators(page) == 2 * one  # the same chime again

    await page.evaluate(BACK)
    await expect(page).to_have_title(TITLE)

    # Muted, and still muted after a reload: the badge counts, the chime stays silent.
    await page.locator("#sound-toggle").click()
    await expect(page.locator("#sound-toggle")).to_have_text("Sound off")
    assert await page.locator("#sound-toggle").get_attribute("aria-pressed") == "false"
    await page.reload()
    await expect(page.locator("#sound-toggle")).to_have_text("Sound off")
    await page.locator(".message-customer", has_text="third").wait_for()
    await page.evaluate(AWAY)
    await _customer_says(desk_bridge, cid, "fourth")
    await expect(page).to_have_title("(1) " + TITLE)
    assert await _oscillators(page) == 0
    assert problems == []


async def test_a_chat_offered_while_the_desk_is_in_the_background_badges_it(
    context: BrowserContext, desk_bridge: RunningBridge, bot: FakeBot
) -> None:
    from playwright.async_api import expect

    problems: list[str] = []
    page = await context.new_page()
    watch_policy(page, problems)
    await page.goto(desk_bridge.url("/console/desk/" + await desk_token(desk_bridge, "ana")))
    await page.locator("#desk-start").click()
    await expect(page.locator("#desk-presence")).to_have_text("online")
    await expect(page.locator("#desk-offers-empty")).to_be_visible()
    await expect(page).to_have_title("Ana · Agent desk")

    await page.evaluate(AWAY)
    status, conversation = await desk_bridge.post("/v1/handoffs", handoff_body(bot.url))
    assert status == 201, conversation
    await page.locator(f'.offer[data-conversation="{conversation["id"]}"]').wait_for()
    await expect(page).to_have_title("(1) Ana · Agent desk")
    assert await _oscillators(page) > 0

    await page.evaluate(BACK)
    await expect(page).to_have_title("Ana · Agent desk")
    assert problems == []
