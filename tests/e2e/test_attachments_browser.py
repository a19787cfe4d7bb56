"""Attachments in the console, in real headless Chromium.

A customer's screenshot shows inline (the chat page's policy lets images load from https)
and opens in a new tab; a PDF is a link with its name and size. The agent attaches a file
by its link and the bot receives it in `agent.message`. The bridge stores links only: the
image is served here by the browser's request interception, standing in for a file host.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from tests.conftest import RunningBridge
from tests.e2e.test_console_browser import WAIT_MS, watch_policy
from tests.e2e.test_console_browser import browser as browser  # the Chromium fixture
from tests.e2e.test_handover_browser import team_bridge as team_bridge  # Ana and Ben
from tests.fakes import FakeBot, handoff_body

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Route

pytestmark = pytest.mark.browser

# A public address, so the outbound policy lets the links through without DNS.
FILES = "https://93.184.216.34"
SHOT = {"url": f"{FILES}/u/screenshot.png", "name": "screenshot.png", "mime_type": "image/png"}
INVOICE = {
    "url": f"{FILES}/u/invoice-42.pdf",
    "name": "invoice 42.pdf",
    "mime_type": "application/pdf",
    "size": 900,
}
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
async def page(browser: Browser, team_bridge: RunningBridge) -> AsyncIterator[Page]:
    """A fresh tab whose requests to the file host get a small PNG."""
    context = await browser.new_context()
    context.set_default_timeout(WAIT_MS)

    async def file_host(route: Route) -> None:
        await route.fulfill(status=200, content_type="image/png", body=PNG)

    await context.route(f"{FILES}/**", file_host)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def _taken_by_ana(bridge: RunningBridge, bot: FakeBot) -> tuple[str, str]:
    """A handoff Ana takes: its id and join URL."""
    status, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url))
    assert status == 201, conversation
    cid = str(conversation["id"])
    status, taken = await bridge.post(f"/v1/conversations/{cid}/assign", {"agent_id": "ana"})
    assert status == 200, taken
    return cid, str(taken["join_url"])


async def test_a_customer_screenshot_shows_inline_and_a_pdf_as_a_link(
    page: Page, team_bridge: RunningBridge, bot: FakeBot
) -> None:
    problems: list[str] = []
    watch_policy(page, problems)
    cid, url = await _taken_by_ana(team_bridge, bot)
    body = {"text": "This is what I get", "attachments": [SHOT, INVOICE]}
    status, answer = await team_bridge.post(f"/v1/conversations/{cid}/messages", body)
    assert status == 201, answer

    await page.goto(url)
    message = page.locator(".message-customer").filter(has_text="This is what I get")
    thumb = message.locator("img.attachment-thumb")
    await thumb.wait_for()
    # Loaded, so the page's policy let it in.
    await page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=await thumb.element_handle()
    )
    assert await thumb.get_attribute("alt") == "screenshot.png"
    opener = message.locator("a.attachment-link:has(img.attachment-thumb)")
    assert await opener.get_attribute("href") == SHOT["url"]
    assert await opener.get_attribute("target") == "_blank"
    pdf = message.locator("a.attachment-link").filter(has_text="invoice 42.pdf")
    assert await pdf.get_attribute("href") == INVOICE["url"]
    assert await message.locator(".attachment-size").all_text_contents() == ["900 B"]
    assert problems == []


async def test_an_agent_attaches_a_link_and_the_bot_receives_it(
    page: Page, team_bridge: RunningBridge, bot: FakeBot
) -> None:
    problems: list[str] = []
    watch_policy(page, problems)
    _, url = await _taken_by_ana(team_bridge, bot)
    await page.goto(url)
    await page.locator("#status").filter(has_text="active").wait_for()

    await page.locator("#attach").click()
    await page.locator("#attach-url").fill(INVOICE["url"])
    await page.locator("#attach-name").fill("invoice 42.pdf")
    await page.locator("#attach-add").click()
    await page.locator("#attach-pending").filter(has_text="invoice 42.pdf").wait_for()
    assert await page.locator("#attach-form").is_hidden()
    await page.locator("#composer").fill("Here is your invoice")
    await page.locator("#send").click()

    sent = page.locator(".message-agent").filter(has_text="Here is your invoice")
    await sent.locator("a.attachment-link").filter(has_text="invoice 42.pdf").wait_for()
    assert await page.locator("#attach-pending").is_hidden()

    await bot.wait_for(lambda b: b.of_type("agent.message"))
    (event,) = bot.of_type("agent.message")
    message = event.data["message"]
    assert (message["text"], message["author"]) == ("Here is your invoice", "Ana")
    assert message["attachments"] == [
        {
            "url": INVOICE["url"],
            "name": "invoice 42.pdf",
            "mime_type": "application/pdf",
            "size": None,
        }
    ]
    assert problems == []
