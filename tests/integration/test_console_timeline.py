"""The console's timeline, through the real app on SQLite and on PostgreSQL.

Beside the messages the console shows who joined and left a chat and how it ended: by
whom and why. The timeline is kept with each change; a chat that ended before it was
kept is told from the conversation's own status, reason and hand-back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from sqlalchemy import delete

from bridge.db.engine import create_engine
from bridge.db.tables import TimelineRow
from tests.conftest import RunningBridge
from tests.fakes import FakeBot, handoff_body
from tests.integration.test_desk import bridge_settings as bridge_settings  # Ana and Ben
from tests.integration.test_supervision_scope import next_event
from tests.kit.eventually import WITHIN_SECONDS


async def _ok(bridge: RunningBridge, path: str, body: Any = None) -> Any:
    status, answer = await bridge.post(path, body)
    assert status == 200, answer
    return answer


async def _hand_off(bridge: RunningBridge, bot: FakeBot, n: int) -> tuple[str, str]:
    """A new chat on mysite-es (team support): its id and its console token."""
    body = handoff_body(bot.url, conversation_id=f"bot-conv-{n}", customer_id=f"cust-{n}")
    status, conversation = await bridge.post("/v1/handoffs", body)
    assert status == 201, conversation
    return conversation["id"], conversation["join_url"].rsplit("/", 1)[1]


async def set_online(bridge: RunningBridge, *agents: str) -> None:
    """Put these agents online through the API."""
    for agent in agents:
        async with bridge.http.put(
            bridge.url(f"/v1/agents/{agent}/presence"), json={"presence": "online"}
        ) as answer:
            assert answer.status == 200


async def _timeline(bridge: RunningBridge, token: str) -> list[dict[str, Any]]:
    status, state = await bridge.get(f"/console/api/{token}/conversation")
    assert status == 200, state
    return list(state["timeline"])


async def _lines(bridge: RunningBridge, token: str) -> list[str]:
    return [entry["text"] for entry in await _timeline(bridge, token)]


async def test_joins_a_transfer_and_the_close_are_told_in_order(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    await set_online(bridge, "ana", "ben")
    cid, token = await _hand_off(bridge, bot, 1)
    assert await _timeline(bridge, token) == []

    await _ok(bridge, f"/v1/conversations/{cid}/assign", {"agent_id": "ana"})
    await _ok(bridge, f"/console/api/{token}/transfer", {"agent_id": "ben", "note": "VIP"})
    await _ok(bridge, f"/console/api/{token}/close", {"reason": "the customer said thanks"})

    timeline = await _timeline(bridge, token)
    assert [entry["text"] for entry in timeline] == [
        "Ana joined",
        "Ana left (transferred)",
        "Ben joined",
        "Closed by Ben: the customer said thanks",
    ]
    assert [entry["kind"] for entry in timeline] == ["joined", "left", "joined", "closed"]
    closed = timeline[-1]
    assert (closed["by"], closed["agent"], closed["reason"]) == (
        "agent",
        "Ben",
        "the customer said thanks",
    )
    ids = [entry["id"] for entry in timeline]
    assert ids == sorted(set(ids)) and ids[0] > 0
    # The transfer's note stays in the transcript, where the next agent reads it.
    _, state = await bridge.get(f"/console/api/{token}/conversation")
    assert any(m["role"] == "system" and "VIP" in m["text"] for m in state["messages"])


async def test_each_way_a_chat_ends_names_who_and_why(bridge: RunningBridge, bot: FakeBot) -> None:
    await set_online(bridge, "ana")
    ends: list[tuple[str, str]] = []

    cid, token = await _hand_off(bridge, bot, 1)
    await _ok(bridge, f"/v1/conversations/{cid}/close", {"reason": "the customer left"})
    ends.append((token, "Closed by the bot: the customer left"))

    cid, token = await _hand_off(bridge, bot, 2)
    await _ok(bridge, f"/v1/conversations/{cid}/close", {})
    ends.append((token, "Closed by the bot"))

    cid, token = await _hand_off(bridge, bot, 3)
    await _ok(bridge, f"/console/api/{token}/join", {"name": "Ana"})
    await _ok(bridge, f"/console/api/{token}/release", {"disposition": "resolved"})
    ends.append((token, "Handed back to the bot by Ana (resolved)"))

    cid, token = await _hand_off(bridge, bot, 4)
    await _ok(bridge, f"/console/api/{token}/join", {"name": "Ana"})
    await _ok(bridge, f"/v1/conversations/{cid}/release", {})
    ends.append((token, "Taken back by the bot"))

    cid, token = await _hand_off(bridge, bot, 5)
    await _ok(bridge, f"/v1/conversations/{cid}/cancel", {"reason": "the customer gave up"})
    ends.append((token, "Cancelled by the bot: the customer gave up"))

    for token, line in ends:
        assert (await _lines(bridge, token))[-1] == line


async def test_a_chat_that_ended_before_the_timeline_is_told_from_its_own_fields(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    await set_online(bridge, "ana")
    _, closed_token = await _hand_off(bridge, bot, 1)
    await _ok(bridge, f"/console/api/{closed_token}/join", {"name": "Ana"})
    await _ok(bridge, f"/console/api/{closed_token}/close", {})
    _, released_token = await _hand_off(bridge, bot, 2)
    await _ok(bridge, f"/console/api/{released_token}/join", {"name": "Ana"})
    await _ok(bridge, f"/console/api/{released_token}/release", {"disposition": "other"})

    # As a store upgraded from a version without the timeline has them: no rows at all.
    engine = create_engine(bridge.settings.database)
    try:
        async with engine.begin() as connection:
            await connection.execute(delete(TimelineRow))
    finally:
        await engine.dispose()

    (ending,) = await _timeline(bridge, closed_token)
    assert (ending["id"], ending["kind"], ending["text"]) == (0, "closed", "Closed by Ana")
    (ending,) = await _timeline(bridge, released_token)
    assert ending["text"] == "Handed back to the bot by Ana (other)"


async def test_the_live_stream_tells_the_joins_and_the_end(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    _, token = await _hand_off(bridge, bot, 1)
    url = bridge.url(f"/console/api/{token}/events")
    timeline: list[str] = []

    async def until(line: str) -> None:
        while line not in timeline:
            name, data = await next_event(stream)
            if name == "timeline":
                timeline.append(data["text"])

    async with bridge.http.get(url, timeout=aiohttp.ClientTimeout(total=None)) as stream:
        assert stream.status == 200
        await _ok(bridge, f"/console/api/{token}/join", {"name": "Ana"})
        await asyncio.wait_for(until("Ana joined"), WITHIN_SECONDS)
        await _ok(bridge, f"/console/api/{token}/close", {"reason": "done"})
        await asyncio.wait_for(until("Closed by Ana: done"), WITHIN_SECONDS)
        # Each moment once, and nothing after the end: the stream is over.
        assert timeline == ["Ana joined", "Closed by Ana: done"]
        rest = await asyncio.wait_for(stream.content.read(), WITHIN_SECONDS)
        assert b"event:" not in rest, rest
