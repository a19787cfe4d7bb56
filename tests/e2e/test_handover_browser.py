"""The console's transfer control and hand-back form in real headless Chromium.

Ana has a chat open in the console: she transfers it to Ben with a note, chosen from
the agents online, and the bot hears `conversation.transferred`; on another chat she
returns the conversation to the bot with an outcome, tags and a note, and the bot hears
them in `conversation.released`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import unused_port

from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.e2e.test_console_browser import WAIT_MS, watch_policy
from tests.e2e.test_console_browser import browser as browser  # the Chromium fixture
from tests.fakes import FakeBot, handoff_body

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = pytest.mark.browser


@pytest.fixture
async def team_bridge(tmp_path: Path) -> AsyncIterator[RunningBridge]:
    """The real app on SQLite: Ana and Ben of team support serve mysite-es."""
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    settings = make_settings(
        database,
        unused_port(),
        agents=[
            {"id": "ana", "name": "Ana", "teams": ["support"]},
            {"id": "ben", "name": "Ben", "teams": ["support"]},
        ],
        teams=[{"id": "support", "name": "Support"}],
        channels={"mysite-es": {"team_id": "support"}},
    )
    running = await start_bridge(settings)
    try:
        yield running
    finally:
        await stop_bridge(running)


@pytest.fixture
async def page(browser: Browser, team_bridge: RunningBridge) -> AsyncIterator[Page]:
    """A fresh tab; closed (ending its live stream) before the bridge stops."""
    context = await browser.new_context()
    context.set_default_timeout(WAIT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def _taken_by_ana(bridge: RunningBridge, bot: FakeBot, n: int) -> str:
    """Both agents online; a handoff Ana takes. Its join URL."""
    for agent in ("ana", "ben"):
        async with bridge.http.put(
            bridge.url(f"/v1/agents/{agent}/presence"), json={"presence": "online"}
        ) as answer:
            assert answer.status == 200
    body = handoff_body(bot.url, conversation_id=f"bot-conv-{n}", customer_id=f"cust-{n}")
    status, conversation = await bridge.post("/v1/handoffs", body)
    assert status == 201, conversation
    status, taken = await bridge.post(
        f"/v1/conversations/{conversation['id']}/assign", {"agent_id": "ana"}
    )
    assert status == 200, taken
    return str(taken["join_url"])


async def test_an_agent_transfers_a_chat_to_a_colleague_with_a_note(
    page: Page, team_bridge: RunningBridge, bot: FakeBot
) -> None:
    problems: list[str] = []
    watch_policy(page, problems)
    await page.goto(await _taken_by_ana(team_bridge, bot, 1))
    await page.locator("#status").filter(has_text="active").wait_for()

    await page.locator("#transfer").click()
    target = page.locator("#transfer-target")
    await target.wait_for()
    # Ben is online and may take it; Ana has it, so she is not offered; the team and the
    # organization's other channels are.
    labels = await target.locator("option").all_text_contents()
    assert "Ben (ben)" in labels and "Ana (ana)" not in labels
    assert "Support" in labels and "mysite-en · console" in labels
    await target.select_option("agent:ben")
    await page.locator("#transfer-note").fill("Refund approved, needs the IBAN")
    await page.locator("#transfer-submit").click()

    await page.locator("#handover-notice").filter(has_text="Transferred to Ben (ben).").wait_for()
    await page.locator("#agent-label").filter(has_text="Agent: Ben").wait_for()
    assert await page.locator("#transfer-form").is_hidden()
    await page.locator(".message-system").filter(has_text="Refund approved").wait_for()

    await bot.wait_for(lambda b: b.of_type("conversation.transferred"))
    (event,) = bot.of_type("conversation.transferred")
    assert (event.data["from"]["agent_id"], event.data["to"]["agent_id"]) == ("ana", "ben")
    assert (event.data["reason"], event.data["note"]) == (
        "agent",
        "Refund approved, needs the IBAN",
    )
    assert problems == []


async def test_an_agent_returns_a_chat_to_the_bot_with_a_summary(
    page: Page, team_bridge: RunningBridge, bot: FakeBot
) -> None:
    problems: list[str] = []
    watch_policy(page, problems)
    await page.goto(await _taken_by_ana(team_bridge, bot, 2))
    await page.locator("#status").filter(has_text="active").wait_for()
    await page.locator("#composer").fill("Your refund is on its way.")
    await page.locator("#send").click()
    await page.locator(".message-agent").filter(has_text="refund is on its way").wait_for()

    await page.locator("#release").click()
    await page.locator("#release-disposition").select_option("resolved")
    await page.locator("#release-tags").fill("refund, vip")
    await page.locator("#release-note").fill("Customer happy")
    await page.locator("#release-submit").click()

    await page.locator("#status").filter(has_text="released").wait_for()
    await page.locator("#notice").filter(has_text="handed back to the bot").wait_for()
    assert await page.locator("#release-form").is_hidden()
    assert await page.locator("#composer").is_disabled()

    await bot.wait_for(lambda b: b.of_type("conversation.released"))
    (event,) = bot.of_type("conversation.released")
    assert (event.data["by"], event.data["disposition"]) == ("agent", "resolved")
    assert (event.data["tags"], event.data["note"]) == (["refund", "vip"], "Customer happy")
    assert event.data["agent"]["name"] == "Ana"
    assert event.data["times"]["first_reply"] is not None
    assert event.data["messages"]["count"] == 1
    assert problems == []
