"""The agent desk in real headless Chromium, against the real app on SQLite."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import unused_port

from tests.conftest import Database, RunningBridge, start_bridge, stop_bridge
from tests.e2e.test_console_browser import WAIT_MS, watch_policy
from tests.e2e.test_console_browser import browser as browser  # the same headless chromium
from tests.fakes import FakeBot, handoff_body
from tests.integration.test_desk import desk_settings, desk_token

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Route

pytestmark = pytest.mark.browser


@pytest.fixture
async def desk_bridge(tmp_path: Path) -> AsyncIterator[RunningBridge]:
    """The real app on a SQLite file, with agents Ana and Ben in the team serving mysite-es."""
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    running = await start_bridge(desk_settings(database, unused_port()))
    try:
        yield running
    finally:
        await stop_bridge(running)


async def _open_desk(browser: Browser, url: str, errors: list[str]) -> Page:
    """A fresh browser context (its own agent) on a desk; closed with the browser."""
    context = await browser.new_context()
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    watch_policy(page, errors)
    response = await page.goto(url)
    assert response is not None and response.status == 200
    return page


async def test_two_agents_see_one_chat_and_the_first_to_take_it_wins(
    browser: Browser, desk_bridge: RunningBridge, bot: FakeBot, tmp_path: Path
) -> None:
    """Ana starts and takes the chat, landing in it; Ben's take says it was already taken."""
    from playwright.async_api import expect

    status, conversation = await desk_bridge.post("/v1/handoffs", handoff_body(bot.url))
    assert status == 201, conversation
    cid = conversation["id"]
    base = desk_bridge.settings.server.base_url() + "/console/desk/"
    errors: list[str] = []
    ana = await _open_desk(browser, base + await desk_token(desk_bridge, "ana"), errors)
    ben = await _open_desk(browser, base + await desk_token(desk_bridge, "ben"), errors)
    release = asyncio.Event()
    try:
        offer = f'#desk-offers .offer[data-conversation="{cid}"]'
        for page, name in ((ana, "Ana"), (ben, "Ben")):
            await expect(page.locator("#desk-agent")).to_have_text(name, timeout=WAIT_MS)
            # Opening the desk signed the agent in.
            await expect(page.locator("#desk-presence")).to_have_text("offline", timeout=WAIT_MS)
            await expect(page.locator("#desk-start")).to_be_enabled(timeout=WAIT_MS)
            await expect(page.locator(offer)).to_contain_text("John Doe", timeout=WAIT_MS)
            await expect(page.locator(offer)).to_contain_text("mysite-es", timeout=WAIT_MS)
            await expect(page.locator(offer)).to_contain_text("#1 in queue", timeout=WAIT_MS)
        await ana.screenshot(path=str(tmp_path / "desk.png"), full_page=True)

        # Ben's desk refreshes every 2 s; hold his refreshes, so he still sees the chat
        # when he presses Take after Ana, as he would within those 2 s.
        held = asyncio.Event()

        async def hold(route: Route) -> None:
            held.set()
            await release.wait()
            await route.continue_()

        await ben.route("**/console/desk-api/*/state", hold)
        await asyncio.wait_for(held.wait(), WAIT_MS / 1000)

        await ana.click("#desk-start")
        await expect(ana.locator("#desk-presence")).to_have_text("online", timeout=WAIT_MS)
        await expect(ana.locator("#desk-stop")).to_be_enabled(timeout=WAIT_MS)
        await ana.locator(offer).locator("button.take").click()
        await expect(ana).to_have_url(re.compile(r"/console/c/[^/]+$"), timeout=WAIT_MS)
        await expect(ana.locator("#status")).to_have_text("active", timeout=WAIT_MS)
        await expect(ana.locator("#agent-label")).to_have_text("Agent: Ana", timeout=WAIT_MS)
        await expect(ana.locator("#composer")).to_be_enabled(timeout=WAIT_MS)
        await bot.wait_for(lambda b: bool(b.of_type("agent.joined")))
        assert bot.of_type("agent.joined")[0].data["agent"]["name"] == "Ana"

        await ben.locator(offer).locator("button.take").click()
        await expect(ben.locator("#desk-error")).to_have_text(
            "this chat was already taken", timeout=WAIT_MS
        )
        release.set()
        # His list catches up; the message stays until he does something else.
        await expect(ben.locator(offer)).to_have_count(0, timeout=WAIT_MS)
        await expect(ben.locator("#desk-offers-empty")).to_be_visible(timeout=WAIT_MS)
        await expect(ben.locator("#desk-error")).to_have_text(
            "this chat was already taken", timeout=WAIT_MS
        )
        assert ben.url.startswith(base), "Ben's take must not open the chat"

        # Back on her desk, Ana finds the chat under "Your chats", still online.
        await ana.go_back()
        await expect(ana.locator("#desk-presence")).to_have_text("online", timeout=WAIT_MS)
        await expect(ana.locator("#desk-load")).to_have_text("1 of 1 chats", timeout=WAIT_MS)
        active = ana.locator(f'#desk-active [data-conversation="{cid}"]')
        await expect(active).to_contain_text("John Doe", timeout=WAIT_MS)
        await expect(ana.locator(offer)).to_have_count(0, timeout=WAIT_MS)
        assert len(bot.of_type("agent.joined")) == 1 and bot.bad_signatures == 0
        assert errors == []
    finally:
        release.set()
        await ana.context.close()
        await ben.context.close()


async def test_tampered_desk_link_shows_the_forbidden_page(
    browser: Browser, desk_bridge: RunningBridge
) -> None:
    """A desk link with a broken signature gets the 403 "link not valid" page."""
    from playwright.async_api import expect

    token = await desk_token(desk_bridge, "ana")
    payload, stamp, signature = token.rsplit(".", 2)
    bad = f"{payload}.{stamp}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    context = await browser.new_context()
    try:
        page = await context.new_page()
        errors: list[str] = []
        watch_policy(page, errors)
        response = await page.goto(desk_bridge.url(f"/console/desk/{bad}"))
        assert response is not None and response.status == 403
        await expect(page.locator("h1")).to_have_text("Link not valid", timeout=WAIT_MS)
        await expect(page.locator("main")).to_have_css("text-align", "center", timeout=WAIT_MS)
        assert errors == []
    finally:
        await context.close()
