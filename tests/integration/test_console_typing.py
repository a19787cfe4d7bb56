"""agent.typing from the built-in console, through the real app on SQLite and PostgreSQL.

The chat page reports typing to its own route; the bot hears `agent.typing` from the
same relay a platform's webhook reaches: throttled, named after the assigned agent,
never stored, and only while the agent has the chat. The bridge is stopped before the
bot's events are counted: a graceful stop lets typing sends under way finish, so what
the bot holds then is everything it will ever get.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import unused_port

from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body


async def _console_chat(bridge: RunningBridge, bot: FakeBot, n: int) -> tuple[str, str]:
    """A new chat on the console: its id and its join token."""
    body = handoff_body(bot.url, conversation_id=f"bot-conv-{n}", customer_id=f"cust-{n}")
    status, conversation = await bridge.post("/v1/handoffs", body)
    assert status == 201, conversation
    return conversation["id"], conversation["join_url"].rsplit("/", 1)[1]


async def _ok(bridge: RunningBridge, path: str, body: Any = None) -> Any:
    status, answer = await bridge.post(path, body)
    assert status == 200, answer
    return answer


async def _typing(bridge: RunningBridge, token: str) -> tuple[int, Any]:
    return await bridge.post(f"/console/api/{token}/typing")


async def test_quick_reports_reach_the_bot_once_and_none_after_the_end(
    database: Database, bot: FakeBot
) -> None:
    bridge = await start_bridge(make_settings(database, unused_port()))
    try:
        typed, token = await _console_chat(bridge, bot, 1)
        await _ok(bridge, f"/console/api/{token}/join", {"name": "Ana"})
        # Several reports at once, as a fast typist's page would send within the interval.
        answers = await asyncio.gather(*(_typing(bridge, token) for _ in range(5)))
        assert [status for status, _ in answers] == [204] * 5, answers

        ended, ended_token = await _console_chat(bridge, bot, 2)
        await _ok(bridge, f"/console/api/{ended_token}/join", {"name": "Ben"})
        await _ok(bridge, f"/console/api/{ended_token}/close", {"reason": "done"})
        status, refused = await _typing(bridge, ended_token)
        assert status == 409, refused
        assert refused["error"]["fields"][0]["field"] == "status"

        # Nobody has the chat yet: nobody types in it.
        waiting, waiting_token = await _console_chat(bridge, bot, 3)
        status, refused = await _typing(bridge, waiting_token)
        assert status == 409, refused

        # The signature's first character: its last one may carry only padding bits.
        payload, signature = token.rsplit(".", 1)
        tampered = f"{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
        status, refused = await _typing(bridge, tampered)
        assert status == 403, refused
        assert refused["error"]["code"]

        # Never stored: the transcript has no trace of it.
        _, transcript = await bridge.get(f"/v1/conversations/{typed}/messages")
        assert [m["role"] for m in transcript["messages"]] == ["customer", "bot"]
    finally:
        await stop_bridge(bridge)

    typing = bot.of_type("agent.typing")
    assert [event.data["conversation_id"] for event in typing] == [typed], bot.report()
    data = typing[0].data
    assert (data["agent"], data["bot_conversation_id"]) == ({"name": "Ana"}, "bot-conv-1")
    # The ended chat's close did reach the bot; only typing was held back.
    assert any(e.data.get("conversation_id") == ended for e in bot.of_type("conversation.closed"))
    assert waiting not in {event.data["conversation_id"] for event in typing}
