"""JivoChat through the real app against a fake Jivo, on SQLite and on PostgreSQL.

Two ways: Jivo as the business channel (the bridge is its Bot API provider and the bot
sits behind the bridge; agents are invited with INVITE_AGENT), and Jivo's agents as the
agent side of any bot through a Chat API channel.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from tests.adapters.fake_jivochat import (
    BOT_TOKEN,
    ENDPOINT_SECRET,
    PROVIDER_ID,
    PUBLIC_ID,
    WEBHOOK_TOKEN,
    FakeJivo,
    client_message,
    fixture,
)
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body

PROVIDER = f"/bots/jivo/{BOT_TOKEN}"
CHAT_WEBHOOK = f"/webhooks/jivo-chat/{WEBHOOK_TOKEN}"


@pytest.fixture
async def jivo() -> AsyncIterator[FakeJivo]:
    """The fake Jivo: Bot API endpoint and Chat API channel."""
    async with FakeJivo() as fake:
        yield fake


@pytest.fixture
async def bridge(
    database: Database, jivo: FakeJivo, bot: FakeBot, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RunningBridge]:
    """The bridge with the bot `jivo` and the channels `jivo` (bot_api), `jivo-chat` (chat_api)."""
    monkeypatch.setenv("JIVO_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("JIVO_CHAT_API_SECRET", ENDPOINT_SECRET)
    monkeypatch.setenv("JIVO_CHAT_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
    bot_api = {"provider_id": PROVIDER_ID, "token": "JIVO_BOT_TOKEN", "bot_api_url": jivo.url}
    settings = make_settings(
        database,
        unused_port(),
        channels={
            "jivo": {"platform": "jivochat", "options": {"mode": "bot_api", **bot_api}},
            "jivo-chat": {
                "platform": "jivochat",
                "options": {
                    "mode": "chat_api",
                    "chat_api_url": jivo.url,
                    "endpoint_secret": "JIVO_CHAT_API_SECRET",
                    "public_id": PUBLIC_ID,
                    "webhook_token": "JIVO_CHAT_WEBHOOK_TOKEN",
                },
            },
        },
        bots={"jivo": {"platform": "jivochat", "options": {**bot_api, "bot_url": bot.url}}},
    )
    running = await start_bridge(settings)
    try:
        yield running
    finally:
        await stop_bridge(running)


# What these tests follow; the core's own notices (queue.updated, handoff.waiting, ...)
# are left out.
FLOW = {
    "customer.message",
    "agent.joined",
    "agent.message",
    "conversation.closed",
    "conversation.released",
    "handoff.failed",
}


def _flow(bot: FakeBot) -> list[str]:
    """The types of the lifecycle events the bot received, in order."""
    return [e.type for e in bot.events if e.type in FLOW]


async def _outbox(bridge: RunningBridge, **query: str) -> list[dict[str, Any]]:
    params = "&".join(f"{k}={v}" for k, v in {"limit": "1000", **query}.items())
    status, listing = await bridge.get(f"/v1/outbox?{params}")
    assert status == 200, listing
    items: list[dict[str, Any]] = listing["items"]
    return items


async def test_business_channel_bot_reply_handoff_and_agent(
    bridge: RunningBridge, jivo: FakeJivo, bot: FakeBot
) -> None:
    # The bot is down at first: Jivo still gets its 200 at once, the event waits.
    bot.script = deque([503])
    status, answer = await bridge.post(PROVIDER, client_message("Can you help me?", "ev-1"))
    assert (status, answer) == (200, {"result": "ok"})
    # Jivo redelivers (its 3 s timeout): answered, not queued again.
    status, _ = await bridge.post(PROVIDER, client_message("Can you help me?", "ev-1"))
    assert status == 200
    status, _ = await bridge.post(PROVIDER, client_message("Is anyone there?", "ev-2"))
    assert status == 200
    # One lane per chat, in order: a duplicate of ev-1 would arrive before ev-2.
    await bot.wait_for(lambda b: len(b.of_type("customer.message")) == 2)
    first, second = bot.of_type("customer.message")
    assert [first.data["message"]["text"], second.data["message"]["text"]] == [
        "Can you help me?",
        "Is anyone there?",
    ]
    assert (first.data["chat_id"], first.data["client_id"]) == ("2037", "1233")
    assert first.data["bot_conversation_id"] == "2037"
    assert bot.attempts[first.webhook_id] == 2 and bot.bad_signatures == 0

    # The bot answers the customer: a BOT_MESSAGE reaches Jivo.
    reply = {"chat_id": "2037", "client_id": "1233", "text": "Let me get a person."}
    status, queued = await bridge.post(f"{PROVIDER}/reply", reply)
    assert status == 202, queued
    await jivo.wait_for(lambda j: len(j.of_event("BOT_MESSAGE")) == 1)
    (bot_message,) = jivo.of_event("BOT_MESSAGE")
    assert (bot_message["id"], bot_message["chat_id"], bot_message["client_id"]) == (
        queued["id"],
        "2037",
        "1233",
    )
    assert bot_message["message"]["text"] == "Let me get a person."

    # The bot hands off with the block it was given: INVITE_AGENT reaches Jivo.
    handoff = {
        **first.data["handoff"],
        "channel": "jivo",
        "callback_url": bot.url,
        "history": handoff_body(bot.url)["history"],
    }
    status, conversation = await bridge.post("/v1/handoffs", handoff)
    assert status == 201, conversation
    assert (conversation["channel"], conversation["status"]) == ("jivo", "pending")
    cid = conversation["id"]
    await jivo.wait_for(lambda j: len(j.of_event("INVITE_AGENT")) == 1)
    (invite,) = jivo.of_event("INVITE_AGENT")
    assert (invite["chat_id"], invite["client_id"]) == ("2037", "1233")

    # Jivo's agent joins, writes and closes; every event is redelivered once.
    for name in ("agent_joined", "agent_message", "chat_closed"):
        for _ in range(2):
            status, answer = await bridge.post(PROVIDER, fixture(name))
            assert (status, answer) == (200, {"result": "ok"})
    await bot.wait_for(lambda b: len(b.of_type("conversation.closed")) == 1)
    assert _flow(bot) == [
        "customer.message",
        "customer.message",
        "agent.joined",
        "agent.message",
        "conversation.closed",
    ]
    message = bot.of_type("agent.message")[0]
    assert message.data["message"]["text"] == "Hi John, I'm on it."
    assert message.data["message"]["author"] == "Ana Lopez"
    assert (message.data["conversation_id"], message.data["bot_conversation_id"]) == (cid, "2037")
    assert bot.bad_signatures == 0 and bot.duplicates == 0

    # Applied once: one event of each kind queued, one agent message stored.
    counts = Counter(item["event_type"] for item in await _outbox(bridge, conversation_id=cid))
    assert (counts["agent.joined"], counts["agent.message"], counts["conversation.closed"]) == (
        1,
        1,
        1,
    )
    _, transcript = await bridge.get(f"/v1/conversations/{cid}/messages")
    assert [m["role"] for m in transcript["messages"]] == ["customer", "bot", "agent"]
    _, state = await bridge.get(f"/v1/conversations/{cid}")
    assert state["status"] == "closed"
    # Jivo's token appears nowhere in the outbox.
    assert BOT_TOKEN not in str(await _outbox(bridge))


async def test_wrong_token_is_refused_and_nothing_is_stored(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    before = await _outbox(bridge)
    status, error = await bridge.post(
        "/bots/jivo/wrong-token-0123456789", client_message("hi", "ev-9")
    )
    assert status == 401 and error["error"]["code"] == "invalid_signature"
    status, _ = await bridge.post(
        "/bots/jivo/wrong-token-0123456789/reply", {"chat_id": "1", "client_id": "1", "text": "x"}
    )
    assert status == 401
    status, _ = await bridge.post("/webhooks/jivo-chat/wrong-token-0123456789", {"message": {}})
    assert status == 401
    assert await _outbox(bridge) == before
    # A malformed event is a 400, and nothing is stored either.
    status, error = await bridge.post(PROVIDER, {"event": "CLIENT_MESSAGE", "chat_id": "1"})
    assert status == 400 and error["error"]["code"] == "malformed_payload"
    assert await _outbox(bridge) == before


async def test_no_agent_online_hands_the_chat_back_and_tells_the_bot(
    bridge: RunningBridge, jivo: FakeJivo, bot: FakeBot
) -> None:
    body = {
        "bot": {"platform": "jivo", "conversation_id": "2037"},
        "customer": {"id": "1233"},
        "channel": "jivo",
        "metadata": {"jivo_chat_id": "2037", "jivo_client_id": "1233"},
        "callback_url": bot.url,
    }
    status, conversation = await bridge.post("/v1/handoffs", body)
    assert status == 201, conversation
    await jivo.wait_for(lambda j: len(j.of_event("INVITE_AGENT")) == 1)
    for _ in range(2):
        status, _ = await bridge.post(PROVIDER, fixture("agent_unavailable"))
        assert status == 200
    await bot.wait_for(lambda b: len(b.of_type("handoff.failed")) == 1)
    failed = bot.of_type("handoff.failed")[0]
    assert (failed.data["reason"], failed.data["detail"]) == ("no_agents_online", "no agent online")
    assert failed.data["conversation_id"] == conversation["id"]
    _, state = await bridge.get(f"/v1/conversations/{conversation['id']}")
    assert (state["status"], state["status_reason"]) == ("released", "no agent online")
    assert Counter(i["event_type"] for i in await _outbox(bridge))["handoff.failed"] == 1
    assert bot.bad_signatures == 0


async def test_chat_api_channel_handoff(
    bridge: RunningBridge, jivo: FakeJivo, bot: FakeBot
) -> None:
    status, conversation = await bridge.post(
        "/v1/handoffs", handoff_body(bot.url, channel="jivo-chat", region=None)
    )
    assert status == 201, conversation
    cid = conversation["id"]
    # The intro, then the history, as the Jivo client "cust-1".
    await jivo.wait_for(lambda j: len(j.chat_api_events) == 3)
    texts = jivo.chat_texts()
    assert texts[1:] == ["Where is my order?", "Let me get a person."]
    assert "plan: vip; order: 42" in texts[0]
    assert {e["sender"]["id"] for e in jivo.chat_api_events} == {"cust-1"}

    status, _ = await bridge.post(f"/v1/conversations/{cid}/messages", {"text": "Hello?"})
    assert status == 201
    await jivo.wait_for(lambda j: j.chat_texts()[-1:] == ["Hello?"])

    # Jivo's agent answers (that is the join, too); the webhook comes twice.
    reply = fixture("chat_api_agent_message")
    for _ in range(2):
        status, answer = await bridge.post(CHAT_WEBHOOK, reply)
        assert (status, answer) == (200, {"result": "ok"})
    # An echo of the customer's own message changes nothing.
    status, _ = await bridge.post(CHAT_WEBHOOK, fixture("chat_api_client_message"))
    assert status == 200
    # A wrong token: 401, nothing stored.
    other = fixture("chat_api_agent_message")
    other["message"].update(id="pm-2", text="forged")
    status, _ = await bridge.post("/webhooks/jivo-chat/wrong-token-0123456789", other)
    assert status == 401

    status, _ = await bridge.post(f"/v1/conversations/{cid}/close", {"reason": "customer left"})
    assert status == 200
    await jivo.wait_for(lambda j: "customer left" in j.chat_texts()[-1])
    await bot.wait_for(lambda b: len(b.of_type("agent.message")) == 1)
    assert _flow(bot) == ["agent.joined", "agent.message"]
    assert bot.of_type("agent.message")[0].data["message"]["text"] == "Hi, I'm Ana."
    assert bot.bad_signatures == 0 and bot.duplicates == 0
    _, transcript = await bridge.get(f"/v1/conversations/{cid}/messages")
    assert [m["text"] for m in transcript["messages"] if m["role"] == "agent"] == ["Hi, I'm Ana."]
    counts = Counter(item["event_type"] for item in await _outbox(bridge, conversation_id=cid))
    assert (counts["agent.joined"], counts["agent.message"]) == (1, 1)


async def test_chat_api_files_go_both_ways(
    bridge: RunningBridge, jivo: FakeJivo, bot: FakeBot
) -> None:
    """A customer's screenshot goes to Jivo as a photo message; the agent's photo comes
    back to the bot as the agent.message's attachment."""
    status, conversation = await bridge.post(
        "/v1/handoffs", handoff_body(bot.url, channel="jivo-chat", region=None)
    )
    assert status == 201, conversation
    cid = conversation["id"]
    shot = {"url": "https://93.184.216.34/s.png", "name": "s.png", "mime_type": "image/png"}
    status, _ = await bridge.post(f"/v1/conversations/{cid}/messages", {"attachments": [shot]})
    assert status == 201
    await jivo.wait_for(
        lambda j: j.chat_api_events[-1:] and j.chat_api_events[-1]["message"]["type"] == "photo"
    )
    sent = jivo.chat_api_events[-1]["message"]
    assert (sent["file"], sent["file_name"]) == (shot["url"], "s.png")

    photo = fixture("chat_api_agent_photo")
    photo["message"]["file"] = "https://93.184.216.34/abc/label.png"
    status, _ = await bridge.post(CHAT_WEBHOOK, photo)
    assert status == 200
    await bot.wait_for(lambda b: len(b.of_type("agent.message")) == 1)
    message = bot.of_type("agent.message")[0].data["message"]
    assert (message["text"], message["author"]) == ("", "Ana Lopez")
    assert message["attachments"] == [
        {
            "url": photo["message"]["file"],
            "name": "label.png",
            "mime_type": "image/png",
            "size": None,
        }
    ]
