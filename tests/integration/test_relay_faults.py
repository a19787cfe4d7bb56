"""Delivery under faults: retries keep order, 4xx goes dead and can be retried by hand."""

from __future__ import annotations

from collections import deque
from typing import Any

from tests.conftest import RunningBridge
from tests.fakes import FakeBot, handoff_body


async def _joined_conversation(bridge: RunningBridge, bot: FakeBot, **kw: Any) -> tuple[str, str]:
    status, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url, **kw))
    assert status == 201, conversation
    token = conversation["join_url"].rsplit("/", 1)[1]
    status, _ = await bridge.post(f"/console/api/{token}/join", {"name": "Ana"})
    assert status == 200
    return conversation["id"], token


async def test_two_server_errors_then_success_delivers_once_in_order(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    bot.script = deque([500, 500])
    bot.script_type = "agent.joined"
    cid, token = await _joined_conversation(bridge, bot)
    for i in range(3):
        status, _ = await bridge.post(
            f"/console/api/{token}/messages", {"text": f"reply {i}", "client_id": f"r{i}"}
        )
        assert status == 201
    await bot.wait_for(lambda b: len(b.events) == 4)
    assert [e.type for e in bot.events] == ["agent.joined"] + ["agent.message"] * 3
    assert [e.data["message"]["text"] for e in bot.of_type("agent.message")] == [
        "reply 0",
        "reply 1",
        "reply 2",
    ]
    # The first event was attempted three times under one webhook-id; nothing doubled.
    first = bot.events[0].webhook_id
    assert bot.attempts[first] == 3
    assert bot.duplicates == 0 and bot.bad_signatures == 0
    status, listing = await bridge.get(f"/v1/outbox?conversation_id={cid}")
    joined = next(i for i in listing["items"] if i["event_type"] == "agent.joined")
    assert (joined["status"], joined["attempts"], joined["webhook_id"]) == (
        "delivered",
        3,
        first,
    )


async def test_client_error_is_dead_visible_and_retryable(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    bot.script = deque([400])
    bot.script_type = "agent.joined"
    cid, token = await _joined_conversation(bridge, bot)
    listing = await bridge.get_until("/v1/outbox?status=dead", lambda body: body["items"])
    dead: list[dict[str, Any]] = listing["items"]
    assert len(dead) == 1, dead
    item = dead[0]
    assert (item["event_type"], item["attempts"], item["conversation_id"]) == (
        "agent.joined",
        1,
        cid,
    )
    assert "400" in item["last_error"]
    # A 400 is never retried on its own.
    assert bot.attempts[item["webhook_id"]] == 1
    # A dead event does not hold back the rest of the conversation.
    await bridge.post(f"/console/api/{token}/messages", {"text": "after", "client_id": "x"})
    await bot.wait_for(lambda b: len(b.of_type("agent.message")) == 1)

    status, retried = await bridge.post(f"/v1/outbox/{item['id']}/retry")
    assert (status, retried["status"]) == (200, "pending")
    await bot.wait_for(lambda b: len(b.of_type("agent.joined")) == 1)
    assert bot.of_type("agent.joined")[0].webhook_id == item["webhook_id"]
    status, again = await bridge.post(f"/v1/outbox/{item['id']}/retry")
    assert status == 409 and again["error"]["code"] == "invalid_state"


async def test_backoff_on_one_conversation_does_not_block_another(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    # The first delivery fails with 429 and a long Retry-After; the other conversation's
    # event must still go out while the first waits.
    bot.script = deque([429])
    bot.script_type = "agent.joined"
    bot.retry_after = "30"
    first, _ = await _joined_conversation(bridge, bot)
    await bot.wait_for(lambda b: sum(b.attempts.values()) == 1)
    second, _ = await _joined_conversation(
        bridge, bot, conversation_id="other", customer_id="other"
    )
    await bot.wait_for(lambda b: len(b.events) == 1)
    assert bot.events[0].data["conversation_id"] == second
    _, listing = await bridge.get(f"/v1/outbox?conversation_id={first}&status=pending")
    assert [i["event_type"] for i in listing["items"]] == ["agent.joined"]
    assert listing["items"][0]["attempts"] == 1
