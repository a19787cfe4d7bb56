"""The whole handoff flow through the real app, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

from tests.conftest import RunningBridge
from tests.fakes import FakeBot, handoff_body


async def test_region_code_selects_channel_and_unknown_falls_back(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    status, es = await bridge.post("/v1/handoffs", handoff_body(bot.url, region="es"))
    assert status == 201, es
    assert es["channel"] == "mysite-es"
    assert es["route"]["rule"] == "region"
    assert es["status"] == "pending"
    assert es["join_url"].startswith(bridge.settings.server.base_url() + "/console/c/")

    status, xx = await bridge.post(
        "/v1/handoffs",
        handoff_body(bot.url, region="xx", conversation_id="c-xx", customer_id="cust-xx"),
    )
    assert status == 201, xx
    assert (xx["channel"], xx["route"]["rule"]) == ("mysite", "region_unknown")
    assert "unknown" in xx["route"]["reason"]

    status, none = await bridge.post(
        "/v1/handoffs",
        handoff_body(bot.url, region=None, conversation_id="c-none", customer_id="cust-none"),
    )
    assert status == 201, none
    assert (none["channel"], none["route"]["rule"]) == ("mysite", "region_missing")

    status, fetched = await bridge.get(f"/v1/conversations/{xx['id']}")
    assert status == 200
    assert fetched["route"]["trace"] == ["region 'xx' unknown → main channel 'mysite'"]


async def test_same_bot_conversation_or_customer_returns_the_active_one(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    status, first = await bridge.post("/v1/handoffs", handoff_body(bot.url, region="es"))
    assert status == 201
    status, again = await bridge.post("/v1/handoffs", handoff_body(bot.url, region="es"))
    assert (status, again["id"]) == (200, first["id"])
    # Same customer from another bot conversation and another region: still the same chat.
    status, other = await bridge.post(
        "/v1/handoffs", handoff_body(bot.url, region="de", conversation_id="another")
    )
    assert (status, other["id"], other["channel"]) == (200, first["id"], "mysite-es")

    status, _ = await bridge.post(f"/v1/conversations/{first['id']}/close", {})
    assert status == 200
    status, fresh = await bridge.post("/v1/handoffs", handoff_body(bot.url, region="de"))
    assert status == 201
    assert fresh["id"] != first["id"]


async def test_concurrent_handoffs_for_one_customer_create_one_conversation(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    bodies = [
        handoff_body(bot.url, conversation_id=f"race-{i}", customer_id="racer", region="en")
        for i in range(12)
    ]
    results = await asyncio.gather(*(bridge.post("/v1/handoffs", b) for b in bodies))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 11 + [201], results
    assert len({body["id"] for _, body in results}) == 1


async def test_messages_flow_both_ways_with_signed_events(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    status, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url))
    assert status == 201
    cid = conversation["id"]
    token = conversation["join_url"].rsplit("/", 1)[1]

    # The customer writes; a repeat of the same message id is stored once.
    status, sent = await bridge.post(
        f"/v1/conversations/{cid}/messages", {"text": "Hello?", "id": "m-1"}
    )
    assert status == 201, sent
    status, repeat = await bridge.post(
        f"/v1/conversations/{cid}/messages", {"text": "Hello?", "id": "m-1"}
    )
    assert (status, repeat["message"]["seq"]) == (200, sent["message"]["seq"])

    # The agent opens the console, joins and replies.
    status, page = await bridge.get(f"/console/c/{token}")
    assert status == 200 and "<html" in page.lower()
    status, view = await bridge.get(f"/console/api/{token}/conversation")
    assert status == 200
    assert [m["text"] for m in view["messages"]] == [
        "Where is my order?",
        "Let me get a person.",
        "Hello?",
    ]
    status, joined = await bridge.post(f"/console/api/{token}/join", {"name": "Ana"})
    assert (status, joined["conversation"]["status"]) == (200, "active")
    status, reply = await bridge.post(
        f"/console/api/{token}/messages", {"text": "Hi John, I'm on it.", "client_id": "a-1"}
    )
    assert status == 201, reply
    status, _ = await bridge.post(f"/console/api/{token}/close", {})
    assert status == 200

    await bot.wait_for(lambda b: len(b.events) >= 3)
    assert [e.type for e in bot.events] == [
        "agent.joined",
        "agent.message",
        "conversation.closed",
    ]
    message = bot.of_type("agent.message")[0]
    assert message.data["message"]["text"] == "Hi John, I'm on it."
    assert message.data["message"]["author"] == "Ana"
    assert message.data["bot_conversation_id"] == "bot-conv-1"
    assert bot.bad_signatures == 0 and bot.duplicates == 0

    status, transcript = await bridge.get(f"/v1/conversations/{cid}/messages")
    assert [m["role"] for m in transcript["messages"]] == ["customer", "bot", "customer", "agent"]
    status, state = await bridge.get(f"/v1/conversations/{cid}")
    assert (state["status"], state["join_url"]) == ("closed", None)


async def test_release_hands_back_and_blocks_further_messages(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    _, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url))
    cid = conversation["id"]
    status, released = await bridge.post(
        f"/v1/conversations/{cid}/release", {"reason": "customer left"}
    )
    assert (status, released["status"], released["status_reason"]) == (
        200,
        "released",
        "customer left",
    )
    status, error = await bridge.post(f"/v1/conversations/{cid}/messages", {"text": "still?"})
    assert status == 409
    assert error["error"]["code"] == "invalid_state"
    assert error["error"]["fields"][0]["field"] == "status"
    status, error = await bridge.post(f"/v1/conversations/{cid}/close", {})
    assert status == 409


async def test_agent_release_from_console_notifies_the_bot(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    _, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url))
    token = conversation["join_url"].rsplit("/", 1)[1]
    await bridge.post(f"/console/api/{token}/join", {"name": "Ana"})
    status, _ = await bridge.post(f"/console/api/{token}/release", {})
    assert status == 200
    await bot.wait_for(lambda b: len(b.events) >= 2)
    assert [e.type for e in bot.events] == ["agent.joined", "conversation.released"]
