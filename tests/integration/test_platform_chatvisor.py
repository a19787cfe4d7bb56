"""A whole handoff to Chatvisor through the real app and a fake Chatvisor, on both databases."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from tests.adapters.fake_chatvisor import API_TOKEN, TAG_PATH, WEBHOOK_TOKEN, FakeChatvisor
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body
from tests.kit.eventually import eventually

CUSTOMER = "cv-cust-1"  # the fake's customerId for our customer "cust-1"
HOOK = f"/webhooks/chatvisor/{WEBHOOK_TOKEN}"
HISTORY = ["Where is my order?", "Let me get a person."]
# What the agent side does; the bot may also hear of other things (queue updates, say).
FROM_AGENTS = {"agent.joined", "agent.message", "conversation.closed", "conversation.released"}


def agent_events(bot: FakeBot) -> list[str]:
    """The types of the events the bot received about what agents did, in order."""
    return [e.type for e in bot.events if e.type in FROM_AGENTS]


@pytest.fixture
async def chatvisor() -> AsyncIterator[FakeChatvisor]:
    async with FakeChatvisor() as fake:
        yield fake


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATVISOR_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("CHATVISOR_WEBHOOK_TOKEN", WEBHOOK_TOKEN)


@asynccontextmanager
async def running(
    database: Database,
    fake: FakeChatvisor,
    *,
    bridge_settings: dict[str, Any] | None = None,
    **options: Any,
) -> AsyncIterator[RunningBridge]:
    """The real bridge with a `chatvisor` channel on the fake, next to the console ones."""
    channel = {
        "platform": "chatvisor",
        "options": {
            "api_token": "CHATVISOR_API_TOKEN",
            "webhook_token": "CHATVISOR_WEBHOOK_TOKEN",
            "base_url": fake.url,
            **options,
        },
    }
    settings = make_settings(
        database, unused_port(), channels={"chatvisor": channel}, **(bridge_settings or {})
    )
    bridge = await start_bridge(settings)
    try:
        yield bridge
    finally:
        await stop_bridge(bridge)


async def _handed_off(bridge: RunningBridge, bot: FakeBot, fake: FakeChatvisor) -> str:
    """Transfer to Chatvisor, and wait until the history is there and the join link is its."""
    body = handoff_body(bot.url, channel="chatvisor", region=None)
    status, conversation = await bridge.post("/v1/handoffs", body)
    assert status == 201, conversation
    assert conversation["channel"] == "chatvisor"
    cid = str(conversation["id"])
    await fake.wait_for(lambda f: f.texts(CUSTOMER) == HISTORY)
    expected_link = f"{fake.url}/agent/chat/{CUSTOMER}?login=otp-42"

    async def linked() -> bool:
        _, state = await bridge.get(f"/v1/conversations/{cid}")
        return bool(state["join_url"] == expected_link)

    await eventually(linked, what="Chatvisor's join link")
    tags = [call.body for call in fake.calls if call.path == TAG_PATH]
    assert tags == [
        {
            "email": "john@example.com",
            "firstname": "John",
            "id": "cust-1",
            "labels": ["foo", "bar"],
            "lastname": "Doe",
        }
    ]
    return cid


async def _agent_texts(bridge: RunningBridge, cid: str) -> list[str]:
    status, transcript = await bridge.get(f"/v1/conversations/{cid}/messages")
    assert status == 200
    return [m["text"] for m in transcript["messages"] if m["role"] == "agent"]


async def test_a_handoff_through_webhooks(
    database: Database, bot: FakeBot, chatvisor: FakeChatvisor
) -> None:
    async with running(database, chatvisor) as bridge:
        cid = await _handed_off(bridge, bot, chatvisor)

        # The customer writes; it reaches the agent in Chatvisor.
        status, _ = await bridge.post(
            f"/v1/conversations/{cid}/messages", {"text": "Any news?", "id": "m-1"}
        )
        assert status == 201
        await chatvisor.wait_for(lambda f: f.texts(CUSTOMER) == [*HISTORY, "Any news?"])

        # Chatvisor's new-conversation hook and the echo of our post change nothing.
        status, _ = await bridge.post(HOOK, chatvisor.conversation(CUSTOMER))
        assert status == 200
        echo = {**chatvisor.messages[-1], "direction": "OUT"}
        assert (await bridge.post(HOOK, echo))[0] == 200

        # The agent answers in Chatvisor: the first reply is also the join.
        reply = chatvisor.agent_writes(CUSTOMER, "Hi John, Ana here.")
        assert (await bridge.post(HOOK, reply))[0] == 200
        await bot.wait_for(lambda b: len(b.of_type("agent.message")) == 1)
        # Redelivered: applied once.
        assert (await bridge.post(HOOK, reply))[0] == 200
        assert await _agent_texts(bridge, cid) == ["Hi John, Ana here."]

        # A webhook with a wrong secret, or none, is refused and stores nothing.
        forged = chatvisor.agent_writes(CUSTOMER, "Please pay to this account.")
        for path in ("/webhooks/chatvisor/not-the-token", "/webhooks/chatvisor"):
            status, error = await bridge.post(path, forged)
            assert status == 401, error
        assert await _agent_texts(bridge, cid) == ["Hi John, Ana here."]

        # The agent marks the chat DONE.
        status, _ = await bridge.post(HOOK, chatvisor.set_status(CUSTOMER, "DONE"))
        assert status == 200
        await bot.wait_for(lambda b: len(b.of_type("conversation.closed")) == 1)

        assert agent_events(bot) == ["agent.joined", "agent.message", "conversation.closed"]
        message = bot.of_type("agent.message")[0].data["message"]
        assert (message["text"], message["author"]) == ("Hi John, Ana here.", "Ana Silva")
        assert bot.bad_signatures == 0 and bot.duplicates == 0
        _, state = await bridge.get(f"/v1/conversations/{cid}")
        assert (state["status"], state["join_url"]) == ("closed", None)
        # The bridge never asked Chatvisor to close what Chatvisor closed itself.
        assert chatvisor.statuses == []


async def test_the_bot_closing_marks_the_chatvisor_customer_done(
    database: Database, bot: FakeBot, chatvisor: FakeChatvisor
) -> None:
    async with running(database, chatvisor) as bridge:
        cid = await _handed_off(bridge, bot, chatvisor)
        status, closed = await bridge.post(f"/v1/conversations/{cid}/close", {})
        assert (status, closed["status"]) == (200, "closed")
        await chatvisor.wait_for(lambda f: f.statuses == [(CUSTOMER, "DONE")])
        # Chatvisor's status-change hook for our own close changes nothing.
        assert (await bridge.post(HOOK, chatvisor.conversation(CUSTOMER)))[0] == 200
        _, state = await bridge.get(f"/v1/conversations/{cid}")
        assert state["status"] == "closed"
        # Nothing from the agent side was queued for the bot: it closed the chat itself.
        _, outbox = await bridge.get(f"/v1/outbox?conversation_id={cid}")
        assert [i["event_type"] for i in outbox["items"] if i["event_type"] in FROM_AGENTS] == []
        assert sorted(i["kind"] for i in outbox["items"] if i["kind"] != "bot.event") == [
            "agent.close",
            "agent.message",
            "agent.message",
            "agent.open",
        ]


async def test_without_webhooks_polling_picks_up_replies_and_the_close(
    database: Database, bot: FakeBot, chatvisor: FakeChatvisor
) -> None:
    async with running(database, chatvisor, poll_interval_seconds=0.05) as bridge:
        cid = await _handed_off(bridge, bot, chatvisor)

        chatvisor.agent_writes(CUSTOMER, "Hi John, polling Ana here.")
        await bot.wait_for(lambda b: len(b.of_type("agent.message")) == 1)
        chatvisor.agent_writes(CUSTOMER, "Solved, closing.")
        await bot.wait_for(lambda b: len(b.of_type("agent.message")) == 2)
        chatvisor.set_status(CUSTOMER, "DONE")
        await bot.wait_for(lambda b: len(b.of_type("conversation.closed")) == 1)

        assert agent_events(bot) == [
            "agent.joined",
            "agent.message",
            "agent.message",
            "conversation.closed",
        ]
        assert [e.data["message"]["text"] for e in bot.of_type("agent.message")] == [
            "Hi John, polling Ana here.",
            "Solved, closing.",
        ]
        assert bot.bad_signatures == 0 and bot.duplicates == 0
        assert await _agent_texts(bridge, cid) == [
            "Hi John, polling Ana here.",
            "Solved, closing.",
        ]
        assert chatvisor.paths("GET").count("/rest/v1/customer") >= 3


# -- events that arrive before the open has stored Chatvisor's customerId -------------------

EARLY_REPLY = {
    "id": "m-early",
    "customerId": CUSTOMER,
    "text": "Ana here, on it.",
    "direction": "OUT",
    "timestamp": 1_763_719_100_000,
    "user": {"id": "u-7", "firstname": "Ana", "lastname": "Silva"},
}
EARLY_DONE = {"customerId": CUSTOMER, "status": "DONE", "lastMessage": None, "timestamp": 1}


async def _open_in_flight(bridge: RunningBridge, bot: FakeBot, fake: FakeChatvisor) -> str:
    """Hand off, and return once the bridge is waiting for Chatvisor's answer to the open."""
    assert fake.holding
    status, conversation = await bridge.post(
        "/v1/handoffs", handoff_body(bot.url, channel="chatvisor", region=None)
    )
    assert status == 201, conversation
    await fake.wait_for(lambda f: TAG_PATH in f.paths())
    return str(conversation["id"])


async def _from_agents_queued(bridge: RunningBridge, cid: str) -> list[str]:
    """Events about what agents did that the bridge queued for the bot (written at once)."""
    _, outbox = await bridge.get(f"/v1/outbox?conversation_id={cid}")
    return [i["event_type"] for i in outbox["items"] if i["event_type"] in FROM_AGENTS]


async def test_events_sent_before_the_open_finished_are_applied_in_order_once(
    database: Database, bot: FakeBot, chatvisor: FakeChatvisor
) -> None:
    chatvisor.hold(lambda call: call.path == TAG_PATH)
    async with running(database, chatvisor) as bridge:
        cid = await _open_in_flight(bridge, bot, chatvisor)

        # The agent answers and marks the chat DONE before Chatvisor has answered the open;
        # the close is even redelivered while it waits.
        for body in (EARLY_REPLY, EARLY_DONE, EARLY_DONE):
            assert (await bridge.post(HOOK, body))[0] == 200
        _, state = await bridge.get(f"/v1/conversations/{cid}")
        assert (state["status"], state["external_ref"]) == ("pending", None)

        # The open finishes: both events apply, in the order they arrived.
        chatvisor.release()
        state = await bridge.get_until(
            f"/v1/conversations/{cid}", lambda s: s["status"] == "closed"
        )
        assert (state["external_ref"], state["status_reason"]) == (CUSTOMER, "closed on chatvisor")
        assert await _agent_texts(bridge, cid) == ["Ana here, on it."]
        await bot.wait_for(lambda b: len(b.of_type("conversation.closed")) == 1)
        assert agent_events(bot) == ["agent.joined", "agent.message", "conversation.closed"]

        # Chatvisor redelivers both after they were applied: nothing changes.
        for body in (EARLY_REPLY, EARLY_DONE):
            assert (await bridge.post(HOOK, body))[0] == 200
        assert await _from_agents_queued(bridge, cid) == [
            "agent.joined",
            "agent.message",
            "conversation.closed",
        ]
        assert await _agent_texts(bridge, cid) == ["Ana here, on it."]
        assert bot.duplicates == 0
        # Chatvisor closed the chat itself; the bridge never asked it to.
        assert chatvisor.statuses == []


async def test_an_early_event_that_waited_past_the_bound_is_dropped(
    database: Database,
    bot: FakeBot,
    chatvisor: FakeChatvisor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bridge")
    chatvisor.hold(lambda call: call.path == TAG_PATH)
    settings = {"relay": {"keep_early_events_seconds": 0.05}}
    async with running(database, chatvisor, bridge_settings=settings) as bridge:
        cid = await _open_in_flight(bridge, bot, chatvisor)
        assert (await bridge.post(HOOK, EARLY_DONE))[0] == 200
        # Not an assertion on time: the open is held until the event is past its bound.
        await asyncio.sleep(0.1)
        chatvisor.release()

        outbox = await bridge.get_until(
            f"/v1/outbox?conversation_id={cid}",
            lambda o: any(
                i["kind"] == "inbound.replay" and i["status"] == "delivered" for i in o["items"]
            ),
        )
        assert not any(i["status"] == "dead" for i in outbox["items"]), outbox
        _, state = await bridge.get(f"/v1/conversations/{cid}")
        assert (state["status"], state["external_ref"]) == ("pending", CUSTOMER)
        dropped = [r for r in caplog.records if r.getMessage() == "inbound.parked_dropped"]
        assert [(r.conversation, r.why) for r in dropped] == [  # type: ignore[attr-defined]
            (cid, "waited longer than relay.keep_early_events_seconds")
        ]
