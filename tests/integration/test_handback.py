"""Hand-back with a summary through the real app, on SQLite and PostgreSQL.

An agent returns the chat to the bot, from the console or through the API, saying how it
went; `conversation.released` carries that with the agent, the times and the range of
messages the agents handled, so the bot continues where the human stopped.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from bridge.settings import Settings
from tests.conftest import Database, RunningBridge, make_settings
from tests.fakes import FakeBot, handoff_body


@pytest.fixture
def bridge_settings(database: Database) -> Settings:
    """Ana in team support, which serves mysite-es."""
    return make_settings(
        database,
        unused_port(),
        agents=[{"id": "ana", "name": "Ana", "teams": ["support"]}],
        teams=[{"id": "support"}],
        channels={"mysite-es": {"team_id": "support"}},
    )


async def handled_by_ana(bridge: RunningBridge, bot: FakeBot) -> tuple[str, str]:
    """A handoff Ana takes; the customer writes, Ana answers twice. Its id and join token."""
    status, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url))
    assert status == 201, conversation
    cid = conversation["id"]
    status, body = await bridge.post(f"/v1/conversations/{cid}/assign", {"agent_id": "ana"})
    assert status == 200, body
    token = str(body["join_url"].rsplit("/", 1)[1])
    status, body = await bridge.post(f"/v1/conversations/{cid}/messages", {"text": "Hello?"})
    assert status == 201, body
    for text in ("Hi John, Ana here.", "Your refund is on its way."):
        status, body = await bridge.post(f"/console/api/{token}/messages", {"text": text})
        assert status == 201, body
    return str(cid), token


async def released_event(bot: FakeBot) -> dict[str, Any]:
    await bot.wait_for(lambda b: b.of_type("conversation.released"))
    (event,) = bot.of_type("conversation.released")
    return event.data


async def test_the_console_hands_back_with_a_summary_the_bot_can_continue_from(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """The release form's disposition, tags and note reach the bot with the agent, the
    times and the seq range of what the agents handled."""
    cid, token = await handled_by_ana(bridge, bot)
    summary = {
        "disposition": "needs_bot_follow_up",
        "tags": ["refund", " billing ", "refund"],
        "note": "Ask for the IBAN",
    }
    status, body = await bridge.post(f"/console/api/{token}/release", summary)
    assert status == 200, body
    assert body["conversation"]["status"] == "released"

    data = await released_event(bot)
    assert (data["by"], data["reason"]) == ("agent", "released by the agent")
    assert data["disposition"] == "needs_bot_follow_up"
    assert data["tags"] == ["refund", "billing"]
    assert data["note"] == "Ask for the IBAN"
    assert (data["agent"]["id"], data["agent"]["name"]) == ("ana", "Ana")

    status, transcript = await bridge.get(f"/v1/conversations/{cid}/messages")
    assert status == 200, transcript
    after_history = transcript["messages"][2:]
    assert [m["text"] for m in after_history] == [
        "Hello?",
        "Hi John, Ana here.",
        "Your refund is on its way.",
    ]
    assert data["messages"] == {
        "first_seq": after_history[0]["seq"],
        "last_seq": after_history[-1]["seq"],
        "count": 3,
    }
    times = data["times"]
    assert times["handed_off"] <= times["assigned"] <= times["first_reply"] <= times["released"]
    assert times["first_reply"] == after_history[1]["sent_at"]

    status, stored = await bridge.get(f"/v1/conversations/{cid}")
    assert status == 200, stored
    assert stored["handback"] == {
        "disposition": "needs_bot_follow_up",
        "tags": ["refund", "billing"],
        "note": "Ask for the IBAN",
        "by": "agent",
    }


async def test_the_api_hands_back_for_the_assigned_agent(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """Naming the assigned agent makes it the agent's hand-back: the bot hears it."""
    cid, _ = await handled_by_ana(bridge, bot)
    path = f"/v1/conversations/{cid}/release"
    status, body = await bridge.post(path, {"agent_id": "ben", "disposition": "resolved"})
    assert (status, body["error"]["fields"][0]["field"]) == (409, "agent_id")
    status, body = await bridge.post(path, {"agent_id": "ana", "disposition": "maybe"})
    assert (status, body["error"]["fields"][0]["field"]) == (422, "disposition")
    status, body = await bridge.post(path, {"agent_id": "ana", "tags": ["x" * 65]})
    assert (status, body["error"]["fields"][0]["field"]) == (422, "tags[0]")

    status, body = await bridge.post(path, {"agent_id": "ana", "disposition": "resolved"})
    assert status == 200, body
    data = await released_event(bot)
    assert (data["by"], data["disposition"], data["tags"], data["note"]) == (
        "agent",
        "resolved",
        [],
        None,
    )
    assert data["messages"]["count"] == 3


async def test_the_bot_taking_a_chat_back_hears_nothing_of_it(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """The bot's own release is as before: no event to the bot, the agent side is told."""
    cid, _ = await handled_by_ana(bridge, bot)
    status, body = await bridge.post(f"/v1/conversations/{cid}/release", {"reason": "done"})
    assert status == 200, body
    assert (body["status"], body["handback"]["by"]) == ("released", "bot")
    await bot.wait_for(lambda b: len(b.of_type("agent.message")) == 2)
    assert not bot.of_type("conversation.released")
