"""The agent console in real headless Chromium, against the real app on SQLite."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp.test_utils import unused_port
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from bridge.errors import Forbidden
from bridge.ports.links import JoinLinks
from tests.conftest import (
    CONSOLE_SECRET,
    Database,
    RunningBridge,
    make_settings,
    need_service,
    start_bridge,
    stop_bridge,
)
from tests.fakes import FakeBot, handoff_body

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Dialog, Page

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous: auto-waiting returns as soon as the condition holds, this is only the limit.
WAIT_MS = 15_000
HISTORY_TEXTS = ["Where is my order?", "Let me get a person."]


# ---- fixtures ----------------------------------------------------------------------


def _chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        need_service(f"Debian's chromium is not installed (looked for {path})")
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian chromium driven by Playwright (skips or fails when it is missing)."""
    executable = _chromium_path()
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        need_service(f"the playwright package cannot be imported: {exc}")
    playwright = await async_playwright().start()
    try:
        launched = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()
    finally:
        await playwright.stop()


@pytest.fixture
async def console_bridge(tmp_path: Path) -> AsyncIterator[RunningBridge]:
    """The real app on a SQLite file, on a real port."""
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    running = await start_bridge(make_settings(database, unused_port()))
    try:
        yield running
    finally:
        await stop_bridge(running)


@pytest.fixture
async def page(browser: Browser, console_bridge: RunningBridge) -> AsyncIterator[Page]:
    """A fresh browser tab; closed (ending its live stream) before the bridge stops."""
    context = await browser.new_context()
    context.set_default_timeout(WAIT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


# ---- helpers -------------------------------------------------------------------------


def watch_policy(page: Page, found: list[str]) -> None:
    """Collect the page's Content-Security-Policy violations (Chromium reports them on its
    console) and its uncaught errors into `found`, so a test can assert there were none."""

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            found.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: found.append(str(error)))


async def _hand_off(bridge: RunningBridge, bot: FakeBot) -> dict[str, Any]:
    status, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url))
    assert status == 201, conversation
    assert isinstance(conversation, dict)
    return conversation


def _token(join_url: str) -> str:
    return join_url.rsplit("/", 1)[1]


def _tampered(token: str) -> str:
    """The token with the first character of its signature part changed.

    The first character, not the last: the last base64 character of the signature
    carries padding bits, so changing it may leave the decoded signature unchanged.
    """
    payload, timestamp, signature = token.rsplit(".", 2)
    first = "B" if signature[0] == "A" else "A"
    return f"{payload}.{timestamp}.{first}{signature[1:]}"


class _OldTimestampSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 10 * 86400


class _OldSerializer(URLSafeTimedSerializer):
    """Signs as JoinLinks does, but dated ten days ago.

    The timestamp comes from the signer, so the override goes there: overriding
    get_timestamp on the serializer itself would change nothing.
    """

    default_signer = _OldTimestampSigner


def _expired_token(conversation_id: str) -> str:
    return _OldSerializer(CONSOLE_SECRET, salt=JoinLinks._SALT).dumps(conversation_id)


async def _join(page: Page, name: str) -> None:
    from playwright.async_api import expect

    await page.fill("#agent-name", name)
    await page.click("#join")
    await expect(page.locator("#status")).to_have_text("active", timeout=WAIT_MS)


# ---- tests -----------------------------------------------------------------------------


async def test_agent_sees_handoff_joins_and_chats_live(
    page: Page, console_bridge: RunningBridge, bot: FakeBot, tmp_path: Path
) -> None:
    """The agent sees the handed-off chat, joins, gets customer messages live and replies."""
    from playwright.async_api import expect

    page_errors: list[str] = []
    watch_policy(page, page_errors)
    conversation = await _hand_off(console_bridge, bot)
    cid = conversation["id"]

    response = await page.goto(conversation["join_url"])
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]

    # What the bot handed over.
    await expect(page.locator("#customer-name")).to_have_text("John Doe", timeout=WAIT_MS)
    await expect(page.locator("#metadata")).to_contain_text("plan", timeout=WAIT_MS)
    await expect(page.locator("#metadata")).to_contain_text("vip", timeout=WAIT_MS)
    await expect(page.locator("#transcript .message .text")).to_have_text(
        HISTORY_TEXTS, timeout=WAIT_MS
    )
    trace = conversation["route"]["trace"]
    assert trace, conversation
    await expect(page.locator("#trace li")).to_have_text(trace, timeout=WAIT_MS)
    await expect(page.locator("#status")).to_have_text("pending", timeout=WAIT_MS)

    await _join(page, "Ana")
    await expect(page.locator("#agent-label")).to_have_text("Agent: Ana", timeout=WAIT_MS)
    await bot.wait_for(lambda b: bool(b.of_type("agent.joined")))

    # The customer writes through the bot: the open page shows it without a reload.
    await page.evaluate("window.__sameDocument = true")
    status, sent = await console_bridge.post(
        f"/v1/conversations/{cid}/messages", {"text": "Is anyone there?", "id": "m-live"}
    )
    assert status == 201, sent
    live = page.locator("#transcript .message-customer", has_text="Is anyone there?")
    await expect(live).to_have_count(1, timeout=WAIT_MS)
    assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"

    # The agent replies; the bot gets it as a signed agent.message event.
    reply = "Hi John, I'm on it."
    await page.fill("#composer", reply)
    await page.click("#send")
    await expect(page.locator("#transcript .message-agent .text", has_text=reply)).to_have_count(
        1, timeout=WAIT_MS
    )
    await expect(page.locator("#composer")).to_have_value("", timeout=WAIT_MS)
    await bot.wait_for(
        lambda b: any(e.data["message"]["text"] == reply for e in b.of_type("agent.message"))
    )
    (message,) = bot.of_type("agent.message")
    assert message.data["message"]["author"] == "Ana"
    assert message.data["bot_conversation_id"] == "bot-conv-1"
    # Filling the reply box also told the bot she was typing (on its own, unordered path).
    told = [e.type for e in bot.events if e.type != "agent.typing"]
    assert told == ["agent.joined", "agent.message"]
    assert bot.of_type("agent.joined")[0].data["bot_conversation_id"] == "bot-conv-1"
    assert bot.bad_signatures == 0 and bot.duplicates == 0

    await page.screenshot(path=str(tmp_path / "console.png"), full_page=True)
    assert page_errors == []


async def test_tampered_and_expired_links_are_refused(
    page: Page, console_bridge: RunningBridge, bot: FakeBot
) -> None:
    """A tampered or expired join link gets the 403 "link not valid" page and API answer."""
    from playwright.async_api import expect

    page_errors: list[str] = []
    watch_policy(page, page_errors)
    conversation = await _hand_off(console_bridge, bot)
    token = _token(conversation["join_url"])
    tampered = _tampered(token)
    expired = _expired_token(conversation["id"])
    assert tampered != token
    # Make sure each bad token is refused for the reason the test names.
    links = JoinLinks(
        CONSOLE_SECRET, "http://unused", console_bridge.settings.console.link_ttl_seconds
    )
    assert links.conversation_id(token) == conversation["id"]
    with pytest.raises(Forbidden, match="not valid"):
        links.conversation_id(tampered)
    with pytest.raises(Forbidden, match="expired"):
        links.conversation_id(expired)

    for bad in (tampered, expired):
        status, body = await console_bridge.get(f"/console/c/{bad}")
        assert status == 403
        assert "Link not valid" in body and "invalid or has expired" in body

        response = await page.goto(console_bridge.url(f"/console/c/{bad}"))
        assert response is not None and response.status == 403
        await expect(page).to_have_title("Link not valid", timeout=WAIT_MS)
        await expect(page.locator("h1")).to_have_text("Link not valid", timeout=WAIT_MS)
        await expect(page.locator("body")).to_contain_text(
            "This conversation link is invalid or has expired.", timeout=WAIT_MS
        )
        # Styled by its stylesheet, which the page's policy lets load.
        await expect(page.locator("main")).to_have_css("text-align", "center", timeout=WAIT_MS)
    assert page_errors == []

    status, body = await console_bridge.get(f"/console/api/{tampered}/conversation")
    assert status == 403, body
    assert body["error"]["code"] == "forbidden"
    status, body = await console_bridge.post(f"/console/api/{tampered}/join", {"name": "Eve"})
    assert status == 403, body
    status, body = await console_bridge.get(f"/console/api/{expired}/conversation")
    assert status == 403, body
    assert "expired" in body["error"]["message"]

    # Nothing reached the bot, and the real link still works.
    status, state = await console_bridge.get(f"/v1/conversations/{conversation['id']}")
    assert (status, state["status"]) == (200, "pending")
    assert bot.events == []
    status, _ = await console_bridge.get(f"/console/api/{token}/conversation")
    assert status == 200


async def test_agent_closes_the_conversation(
    page: Page, console_bridge: RunningBridge, bot: FakeBot
) -> None:
    """Closing from the console (confirming the dialog) ends the chat and tells the bot."""
    from playwright.async_api import expect

    dialogs: list[str] = []

    async def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    conversation = await _hand_off(console_bridge, bot)
    await page.goto(conversation["join_url"])
    await expect(page.locator("#status")).to_have_text("pending", timeout=WAIT_MS)
    await _join(page, "Ana")

    await page.click("#close")
    await expect(page.locator("#status")).to_have_text("closed", timeout=WAIT_MS)
    await expect(page.locator("#notice")).to_have_text(
        "This conversation is closed.", timeout=WAIT_MS
    )
    await expect(page.locator("#composer")).to_be_disabled(timeout=WAIT_MS)
    assert len(dialogs) == 1 and dialogs[0].startswith("Close this conversation?")

    await bot.wait_for(lambda b: bool(b.of_type("conversation.closed")))
    assert [e.type for e in bot.events] == ["agent.joined", "conversation.closed"]
    assert bot.bad_signatures == 0
    status, state = await console_bridge.get(f"/v1/conversations/{conversation['id']}")
    assert (status, state["status"]) == (200, "closed")
