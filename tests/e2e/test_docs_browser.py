"""The /docs page in real headless Chromium: it renders the document's operations under
its strict policy, with no network request leaving this server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import unused_port

from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.e2e.test_console_browser import WAIT_MS, watch_policy
from tests.e2e.test_console_browser import browser as browser  # the same headless chromium

if TYPE_CHECKING:
    from playwright.async_api import Browser, Request

pytestmark = pytest.mark.browser


@pytest.fixture
async def docs_bridge(tmp_path: Path) -> AsyncIterator[RunningBridge]:
    """The real app on a SQLite file, with tokens set as in production."""
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    settings = make_settings(
        database, unused_port(), security={"api_token": "bot-1", "admin_token": "admin-2"}
    )
    running = await start_bridge(settings)
    try:
        yield running
    finally:
        await stop_bridge(running)


async def test_the_docs_page_shows_the_operations_offline(
    browser: Browser, docs_bridge: RunningBridge, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    origin = docs_bridge.settings.server.base_url()
    errors: list[str] = []
    requested: list[str] = []
    context = await browser.new_context()
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    watch_policy(page, errors)

    def on_request(request: Request) -> None:
        requested.append(request.url)

    page.on("request", on_request)
    response = await page.goto(origin + "/docs")
    assert response is not None and response.status == 200
    handoffs = page.locator(".opblock-summary-path", has_text="/v1/handoffs").first
    await expect(handoffs).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator(".opblock-tag", has_text="Bot side").first).to_be_visible()
    await page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
    assert errors == []
    outside = [url for url in requested if not url.startswith(origin)]
    assert outside == [], outside
    assert origin + "/openapi.json" in requested
