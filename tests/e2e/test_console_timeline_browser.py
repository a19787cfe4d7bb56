"""The chat page's transcript and live stream in real headless Chromium: dates on older
history, "Ana joined" / "Ana left" lines, who ended the chat and why, the way back to
the desk, and no "Reconnecting…" once a chat has ended (but after a real drop, yes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import RunningBridge
from tests.e2e.test_console_browser import WAIT_MS, watch_policy
from tests.e2e.test_console_browser import browser as browser  # the Chromium fixture
from tests.e2e.test_desk_browser import desk_bridge as desk_bridge  # Ana and Ben, SQLite
from tests.fakes import FakeBot, handoff_body
from tests.integration.test_console_timeline import set_online
from tests.integration.test_desk import desk_token

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Request

pytestmark = pytest.mark.browser

# Records every time the connection notice is shown, from before the chat ends.
WATCH_CONNECTION = """() => {
  window.__connectionShown = [];
  const node = document.getElementById('connection');
  new MutationObserver(() => {
    if (!node.hidden && node.textContent) window.__connectionShown.push(node.textContent);
  }).observe(node, { attributes: true, childList: true, characterData: true, subtree: true });
}"""


@pytest.fixture
async def context(browser: Browser, desk_bridge: RunningBridge) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile in a known locale and time zone; closed (ending its live
    streams) before the bridge stops."""
    fresh = await browser.new_context(locale="en-GB", timezone_id="UTC")
    fresh.set_default_timeout(WAIT_MS)
    try:
        yield fresh
    finally:
        await fresh.close()


async def _hand_off(bridge: RunningBridge, bot: FakeBot, **extra: Any) -> dict[str, Any]:
    status, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url, **extra))
    assert status == 201, conversation
    return dict(conversation)


async def _page(context: BrowserContext, problems: list[str]) -> Page:
    page = await context.new_page()
    watch_policy(page, problems)
    return page


async def test_history_older_than_today_shows_its_date(
    context: BrowserContext, desk_bridge: RunningBridge, bot: FakeBot
) -> None:
    problems: list[str] = []
    history = [
        {"role": "customer", "text": "My order never came", "sent_at": "2024-03-05T10:30:00Z"},
        {"role": "bot", "text": "Let me get a person."},  # dated at the handoff: today
    ]
    conversation = await _hand_off(desk_bridge, bot, history=history)
    page = await _page(context, problems)
    await page.goto(conversation["join_url"])

    old = page.locator(".message", has_text="My order never came").locator("time")
    today = page.locator(".message", has_text="Let me get a person.").locator("time")
    # en-GB in UTC: the date and the time for an older day, the time alone for today.
    await old.filter(has_text="5 Mar 2024, 10:30").wait_for()
    assert await old.get_attribute("datetime") == "2024-03-05T10:30:00+00:00"
    # Compared with the element's own instant, not with "now": the minute may turn
    # between the handoff and this line.
    stamp = await today.get_attribute("datetime")
    assert stamp is not None
    assert await today.text_content() == await page.evaluate(
        "(s) => new Date(s).toLocaleTimeString('en-GB', {hour: '2-digit', minute: '2-digit'})",
        stamp,
    )
    assert await page.evaluate(
        "(s) => new Date(s).toDateString() === new Date().toDateString()", stamp
    )
    assert problems == []


async def test_joins_leaves_and_who_closed_it_are_lines_of_the_transcript(
    context: BrowserContext, desk_bridge: RunningBridge, bot: FakeBot
) -> None:
    problems: list[str] = []
    await set_online(desk_bridge, "ana", "ben")
    conversation = await _hand_off(desk_bridge, bot)
    cid = conversation["id"]
    status, taken = await desk_bridge.post(f"/v1/conversations/{cid}/assign", {"agent_id": "ana"})
    assert status == 200, taken
    page = await _page(context, problems)
    await page.goto(taken["join_url"])
    await page.locator("#transcript .event", has_text="Ana joined").wait_for()

    # Live, without a reload: Ana passes it to Ben, then the bot ends the chat.
    status, moved = await desk_bridge.post(
        f"/v1/conversations/{cid}/transfer", {"agent_id": "ben", "note": "VIP"}
    )
    assert status == 200, moved
    await page.locator("#transcript .event", has_text="Ben joined").wait_for()
    status, closed = await desk_bridge.post(
        f"/v1/conversations/{cid}/close", {"reason": "the customer left"}
    )
    assert status == 200, closed
    end = page.locator("#transcript .event-end")
    await end.filter(has_text="Closed by the bot: the customer left").wait_for()
    await page.locator("#status").filter(has_text="closed").wait_for()

    lines = await page.locator("#transcript .event .event-text").all_text_contents()
    assert lines == [
        "Ana joined",
        "Ana left (transferred)",
        "Ben joined",
        "Closed by the bot: the customer left",
    ]
    # The lines follow the history, and the end is the transcript's last word.
    items = await page.locator("#transcript > li").evaluate_all(
        "nodes => nodes.map(n => n.classList.contains('event') ? 'line' : 'message')"
    )
    assert items[:2] == ["message", "message"] and items[-1] == "line"

    # Opened again later, the page tells the same from the store.
    again = await _page(context, problems)
    await again.goto(taken["join_url"])
    await again.locator("#transcript .event-end", has_text="Closed by the bot").wait_for()
    assert await again.locator("#transcript .event .event-text").all_text_contents() == lines
    assert problems == []


async def test_a_chat_handed_back_says_by_whom_and_how_it_went(
    context: BrowserContext, desk_bridge: RunningBridge, bot: FakeBot
) -> None:
    problems: list[str] = []
    conversation = await _hand_off(desk_bridge, bot)
    page = await _page(context, problems)
    await page.goto(conversation["join_url"])
    await page.fill("#agent-name", "Ana")
    await page.click("#join")
    await page.locator("#transcript .event", has_text="Ana joined").wait_for()

    await page.locator("#release").click()
    await page.locator("#release-disposition").select_option("resolved")
    await page.locator("#release-submit").click()
    end = page.locator("#transcript .event-end")
    await end.filter(has_text="Handed back to the bot by Ana (resolved)").wait_for()
    assert problems == []


async def test_a_chat_taken_on_the_desk_links_back_to_the_desk(
    context: BrowserContext, desk_bridge: RunningBridge, bot: FakeBot
) -> None:
    problems: list[str] = []
    referers: list[str] = []

    def on_request(request: Request) -> None:
        if request.headers.get("referer"):
            referers.append(f"{request.url} <- {request.headers['referer']}")

    context.on("request", on_request)
    conversation = await _hand_off(desk_bridge, bot)
    desk_path = "/console/desk/" + await desk_token(desk_bridge, "ana")
    page = await _page(context, problems)
    await page.goto(desk_bridge.url(desk_path))
    await page.locator("#desk-start").click()
    offer = page.locator(f'#desk-offers .offer[data-conversation="{conversation["id"]}"]')
    await offer.locator(".take").click()

    await page.wait_for_url("**/console/c/**")
    link = page.locator("#desk-link")
    await link.wait_for()
    assert await link.get_attribute("href") == desk_path
    assert await link.get_attribute("rel") == "noreferrer"
    assert desk_path.rsplit("/", 1)[1] not in page.url  # the desk's token stays out of it
    await link.click()
    await page.wait_for_url(f"**{desk_path}")
    await page.locator("#desk-agent").filter(has_text="Ana").wait_for()
    # No request of either page said where it came from.
    assert referers == []

    # A chat page opened from a shared link, not from a desk, offers no way back.
    other = await _page(await context.browser.new_context(), problems)  # type: ignore[union-attr]
    try:
        await other.goto(conversation["join_url"])
        await other.locator("#status").filter(has_text="active").wait_for()
        assert await other.locator("#desk-link").is_hidden()
    finally:
        await other.context.close()
    assert problems == []


async def test_no_reconnecting_notice_once_the_chat_has_ended(
    context: BrowserContext, desk_bridge: RunningBridge, bot: FakeBot
) -> None:
    problems: list[str] = []
    streams: list[str] = []
    conversation = await _hand_off(desk_bridge, bot)
    page = await _page(context, problems)
    page.on("request", lambda r: streams.append(r.url) if "/events" in r.url else None)
    async with page.expect_response(lambda response: "/events" in response.url) as live:
        await page.goto(conversation["join_url"])
    assert (await live.value).status == 200
    await page.locator("#status").filter(has_text="pending").wait_for()
    await page.evaluate(WATCH_CONNECTION)

    status, closed = await desk_bridge.post(f"/v1/conversations/{conversation['id']}/close", {})
    assert status == 200, closed
    await page.locator("#transcript .event-end", has_text="Closed by the bot").wait_for()
    # Longer than the browser's wait before it reconnects and than the page's grace:
    # whatever the page would show for a stream that ended, it has shown by then.
    await asyncio.sleep(4)
    assert await page.evaluate("window.__connectionShown") == []
    assert await page.locator("#connection").is_hidden()
    assert len(streams) == 1, streams  # the ended stream was not opened again
    assert problems == []


async def test_a_stream_that_stays_down_shows_reconnecting_until_it_is_back(
    context: BrowserContext, desk_bridge: RunningBridge, bot: FakeBot
) -> None:
    conversation = await _hand_off(desk_bridge, bot)
    page = await context.new_page()

    async def unavailable(route: Any) -> None:
        await route.fulfill(status=503, body="")

    await page.route("**/events*", unavailable)
    await page.goto(conversation["join_url"])
    await page.locator("#connection").filter(has_text="Reconnecting…").wait_for()

    await page.unroute("**/events*", unavailable)
    await page.locator("#connection").wait_for(state="hidden")
    # Back live: a customer message shows without a reload.
    status, sent = await desk_bridge.post(
        f"/v1/conversations/{conversation['id']}/messages", {"text": "Still there?", "id": "m1"}
    )
    assert status == 201, sent
    await page.locator(".message-customer", has_text="Still there?").wait_for()
