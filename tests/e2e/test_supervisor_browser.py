"""The supervisor page in real headless Chromium, against the real app on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import unused_port

from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.e2e.test_console_browser import WAIT_MS, watch_policy
from tests.e2e.test_console_browser import browser as browser  # the same headless chromium
from tests.fakes import FakeBot, handoff_body

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = pytest.mark.browser


@pytest.fixture
async def supervised(tmp_path: Path) -> AsyncIterator[RunningBridge]:
    """The real app on a SQLite file, with agent Ana in the team serving mysite-es."""
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    settings = make_settings(
        database,
        unused_port(),
        agents=[{"id": "ana", "name": "Ana", "teams": ["support"]}],
        teams=[{"id": "support"}],
        channels={"mysite-es": {"team_id": "support"}},
    )
    running = await start_bridge(settings)
    try:
        yield running
    finally:
        await stop_bridge(running)


async def test_a_chat_enters_and_leaves_the_queue_without_a_reload(
    browser: Browser, supervised: RunningBridge, bot: FakeBot, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    status, link = await supervised.get("/v1/supervisor_link")
    assert status == 200, link
    context = await browser.new_context()
    context.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    try:
        page = await context.new_page()
        watch_policy(page, errors)
        loads: list[str] = []
        page.on("load", lambda _: loads.append(page.url))
        response = await page.goto(link["url"])
        assert response is not None and response.status == 200
        await expect(page.locator("#sv-scope")).to_have_text("All organizations")
        spanish = page.locator('#sv-queue [data-channel="mysite-es"]')
        await expect(spanish.locator(".sv-length")).to_have_text("0 waiting")
        await expect(page.locator("#sv-live")).to_have_text("live")
        await expect(page.locator("#sv-list-empty")).to_be_visible()

        status, conversation = await supervised.post("/v1/handoffs", handoff_body(bot.url))
        assert status == 201, conversation
        cid = conversation["id"]
        waiting = spanish.locator(f'.sv-waiting-chat[data-conversation="{cid}"]')
        await expect(waiting).to_contain_text("#1")
        await expect(waiting).to_contain_text("John Doe")
        await expect(waiting).to_contain_text("offered to ana")
        await expect(spanish.locator(".sv-length")).to_have_text("1 waiting")
        row = page.locator(f'#sv-rows tr[data-conversation="{cid}"]')
        await expect(row).to_contain_text("pending")
        await expect(row).to_contain_text("mysite-es")
        await page.screenshot(path=str(tmp_path / "supervisor.png"), full_page=True)

        status, taken = await supervised.post(
            f"/v1/conversations/{cid}/assign", {"agent_id": "ana"}
        )
        assert status == 200, taken
        await expect(waiting).to_have_count(0)
        await expect(spanish.locator(".sv-length")).to_have_text("0 waiting")
        await expect(row).to_contain_text("active")
        await expect(row).to_contain_text("Ana")

        # The filters ask the server: only waiting chats, and there are none now.
        await page.check('#sv-filters input[name="status"][value="pending"]')
        await page.click('#sv-filters button[type="submit"]')
        await expect(row).to_have_count(0)
        await expect(page.locator("#sv-list-empty")).to_be_visible()
        await page.click("#sv-reset")
        await expect(row).to_contain_text("active")

        assert loads == [link["url"]], "the page must never reload"
        assert errors == []
    finally:
        await context.close()
