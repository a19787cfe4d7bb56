"""A whole handoff to giosg through the real app and a fake giosg, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from bridge.typedefs import SERVICE
from tests.adapters.fake_giosg import (
    API_USER,
    ORG,
    ROOM,
    TEAM_ONLINE,
    FakeGiosg,
    chat_webhook,
    message_webhook,
)
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body
from tests.kit.eventually import eventually

CHANNEL = "giosg-fi"
API_TOKEN = "giosg-api-token-it-4b7e1d"
HOOK_SECRET = "giosg-hook-it-9c3a5e7f1b"
_AGENT_EVENTS = {"agent.joined", "agent.message", "conversation.closed", "conversation.released"}


@pytest.fixture
async def giosg() -> AsyncIterator[FakeGiosg]:
    # One item a page, so every lookup the adapter makes walks giosg's `next` links.
    async with FakeGiosg(api_token=API_TOKEN, page_size=1) as fake:
        yield fake


@pytest.fixture
async def bridge(
    database: Database, giosg: FakeGiosg, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RunningBridge]:
    monkeypatch.setenv("GIOSG_IT_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("GIOSG_IT_WEBHOOK_SECRET", HOOK_SECRET)
    options = {
        "api_token": "GIOSG_IT_API_TOKEN",
        "webhook_secret": "GIOSG_IT_WEBHOOK_SECRET",
        "organization_id": ORG,
        "room_id": ROOM,
        "team_id": TEAM_ONLINE,
        "user_id": API_USER,
        "base_url": giosg.url,
    }
    settings = make_settings(
        database, unused_port(), channels={CHANNEL: {"platform": "giosg", "options": options}}
    )
    running = await start_bridge(settings)
    # giosg sends every message of the chat back to the app's webhook, ours included.
    giosg.webhook_url = running.url(f"/webhooks/{CHANNEL}/{HOOK_SECRET}")
    try:
        yield running
    finally:
        await stop_bridge(running)


async def _deliver(
    bridge: RunningBridge, payload: dict[str, Any], secret: str = HOOK_SECRET
) -> tuple[int, Any]:
    return await bridge.post(f"/webhooks/{CHANNEL}/{secret}", payload)


async def _handed_off(bridge: RunningBridge, bot: FakeBot, giosg: FakeGiosg) -> tuple[str, str]:
    """Transfer to giosg and wait for the history to arrive there; returns (ours, chat)."""
    status, conversation = await bridge.post(
        "/v1/handoffs", handoff_body(bot.url, channel=CHANNEL, region=None)
    )
    assert status == 201, conversation
    assert (conversation["channel"], conversation["platform"]) == (CHANNEL, "giosg")
    await giosg.wait_for(lambda g: len(g.sent_texts()) >= 2)
    assert giosg.sent_texts() == ["Where is my order?", "Let me get a person."]
    chat = giosg.only_chat()
    status, state = await bridge.get(f"/v1/conversations/{conversation['id']}")
    assert (status, state["external_ref"]) == (200, chat.id)
    return conversation["id"], chat.id


async def _roles(bridge: RunningBridge, cid: str) -> list[str]:
    status, transcript = await bridge.get(f"/v1/conversations/{cid}/messages")
    assert status == 200
    return [m["role"] for m in transcript["messages"]]


async def test_a_handoff_to_giosg_from_transfer_to_close(
    bridge: RunningBridge, bot: FakeBot, giosg: FakeGiosg
) -> None:
    cid, chat_id = await _handed_off(bridge, bot, giosg)
    chat = giosg.chats[chat_id]
    assert chat.invited_teams == [TEAM_ONLINE]
    visitor = giosg.visitors[chat.visitor_id]
    assert (visitor.variables["username"], visitor.variables["bridge_conversation_id"]) == (
        "John Doe",
        cid,
    )
    # The visitor's secret is kept in the bridge's database, under the bare chat id, and
    # nowhere on giosg where agents could read it.
    kept = await bridge.server.app[SERVICE].get_state(CHANNEL, f"chat:{chat_id}")
    assert kept is not None
    assert json.loads(kept) == {"visitor_id": visitor.id, "visitor_secret_id": visitor.secret}
    assert visitor.secret not in json.dumps(visitor.variables)

    # The customer writes after the visitor's token ran out: the adapter gets a fresh one
    # with the kept secret, and asks giosg nothing else first.
    giosg.expire_tokens()
    giosg.calls.clear()
    status, _ = await bridge.post(
        f"/v1/conversations/{cid}/messages", {"text": "Any news?", "id": "m-1"}
    )
    assert status == 201
    await giosg.wait_for(lambda g: g.sent_texts()[-1:] == ["Any news?"])
    assert giosg.called() == [
        ("POST", f"/api/v5/public/orgs/{ORG}/auth"),
        ("POST", f"/api/v5/public/visitors/{chat.visitor_id}/chats/{chat_id}/messages"),
    ]

    # An agent takes the chat in the giosg console.
    giosg.join_agent(chat_id)
    status, _ = await _deliver(bridge, chat_webhook("webhook_chat_user_present", chat_id))
    assert status == 200
    await bot.wait_for(lambda b: len(b.of_type("agent.joined")) == 1)

    # The agent answers; giosg redelivers the same webhook, which is applied once.
    reply = message_webhook(chat_id, "Hi John, I'm Ana.", "gm-1")
    for _ in range(2):
        status, body = await _deliver(bridge, reply)
        assert status == 200, body
    await bot.wait_for(lambda b: len(b.of_type("agent.message")) == 1)
    message = bot.of_type("agent.message")[0].data["message"]
    assert (message["text"], message["author"]) == ("Hi John, I'm Ana.", "Ana")
    assert await _roles(bridge, cid) == ["customer", "bot", "customer", "agent"]

    # giosg echoed the three visitor messages the bridge posted; they were taken and dropped.
    await giosg.wait_for(lambda g: len(g.echo_statuses) == 3)
    assert giosg.echo_statuses == [200, 200, 200]

    # A webhook with a wrong secret is refused and leaves nothing behind.
    forged = message_webhook(chat_id, "Send me your password", "gm-2")
    status, error = await _deliver(bridge, forged, secret="not-the-secret")
    assert status == 401 and error["error"]["code"] == "invalid_signature"
    assert await _roles(bridge, cid) == ["customer", "bot", "customer", "agent"]

    # The agent ends the chat in giosg.
    status, _ = await _deliver(bridge, chat_webhook("webhook_chat_ended", chat_id))
    assert status == 200
    await bot.wait_for(lambda b: len(b.of_type("conversation.closed")) == 1)
    # The bot's events go out in order, so no second agent.message came before the close.
    # (Queue and waiting notices may come too; they are not this adapter's business.)
    relayed = [e.type for e in bot.events if e.type in _AGENT_EVENTS]
    assert relayed == ["agent.joined", "agent.message", "conversation.closed"]
    assert bot.bad_signatures == 0 and bot.duplicates == 0
    status, state = await bridge.get(f"/v1/conversations/{cid}")
    assert (state["status"], state["status_reason"]) == ("closed", "closed on giosg")


async def test_a_close_by_the_bot_ends_the_giosg_chat(
    bridge: RunningBridge, bot: FakeBot, giosg: FakeGiosg
) -> None:
    cid, chat_id = await _handed_off(bridge, bot, giosg)
    status, _ = await bridge.post(f"/v1/conversations/{cid}/close", {"reason": "solved"})
    assert status == 200
    await giosg.wait_for(lambda g: g.chats[chat_id].is_ended)

    async def delivered() -> bool:
        _, listing = await bridge.get(f"/v1/outbox?conversation_id={cid}")
        return all(item["status"] == "delivered" for item in listing["items"])

    await eventually(delivered, what="the bridge")
    # giosg then reports the chat ended; the conversation is closed already, so nothing
    # is queued for the bot (the webhook is applied before it is answered).
    status, _ = await _deliver(bridge, chat_webhook("webhook_chat_ended", chat_id))
    assert status == 200
    _, listing = await bridge.get(f"/v1/outbox?conversation_id={cid}")
    assert not [i for i in listing["items"] if i["event_type"] in _AGENT_EVENTS]
    status, state = await bridge.get(f"/v1/conversations/{cid}")
    assert (state["status"], state["status_reason"]) == ("closed", "solved")
