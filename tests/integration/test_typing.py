"""agent.typing: a platform's typing signal reaches the bot at once, throttled, never stored."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import unused_port

from tests.adapters.fake_reference import API_KEY, WEBHOOK_TOKEN, FakeReference
from tests.conftest import Database, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body


@pytest.fixture
async def desk() -> AsyncIterator[FakeReference]:
    async with FakeReference() as fake:
        yield fake


async def test_typing_reaches_the_bot_once_per_interval_and_is_not_stored(
    database: Database, bot: FakeBot, desk: FakeReference, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFERENCE_API_KEY", API_KEY)
    monkeypatch.setenv("REFERENCE_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
    options = {
        "api_key": "REFERENCE_API_KEY",
        "webhook_token": "REFERENCE_WEBHOOK_TOKEN",
        "base_url": desk.url,
    }
    channels = {"desk": {"platform": "reference", "options": options}}
    bridge = await start_bridge(make_settings(database, unused_port(), channels=channels))
    try:
        status, conversation = await bridge.post(
            "/v1/handoffs", handoff_body(bot.url, channel="desk", region=None)
        )
        assert status == 201, conversation
        await desk.wait_for(lambda d: len(d.conversations) == 1)
        (platform_id,) = desk.conversations
        headers = desk.webhook_headers()
        for _ in range(3):
            event = desk._log("agent.typing", platform_id, agent={"id": "ag-1", "name": "Ana"})
            status, _ = await bridge.post("/webhooks/desk", event, headers=headers)
            assert status == 200
        await bot.wait_for(lambda b: len(b.of_type("agent.typing")) >= 1)
        typing = bot.of_type("agent.typing")[0].data
        assert (typing["conversation_id"], typing["agent"]) == (conversation["id"], {"name": "Ana"})
        # Not through the outbox: nothing about typing is kept.
        _, outbox = await bridge.get(f"/v1/outbox?conversation_id={conversation['id']}")
        assert all("agent.typing" not in str(item) for item in outbox["items"])
        _, transcript = await bridge.get(f"/v1/conversations/{conversation['id']}/messages")
        assert [m["role"] for m in transcript["messages"]] == ["customer", "bot"]
    finally:
        await stop_bridge(bridge)
