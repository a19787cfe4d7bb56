"""Accept timeouts through the real app, on SQLite and PostgreSQL (and two replicas).

A chat nobody takes is offered one ring wider when its accept time is up; an assigned
chat whose agent does not answer, or goes offline before answering, goes back to the
queue and the bot hears `agent.left`; an answered chat is left alone; and a timer fires
once however many replicas run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from bridge.settings import Settings
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body
from tests.kit.eventually import eventually

AGENTS = [
    {"id": "ana", "name": "Ana", "teams": ["support"], "capacity": 2},
    {"id": "ben", "name": "Ben", "teams": ["support"], "capacity": 2},
    {"id": "cal", "name": "Cal", "teams": [], "capacity": 2},
]


def timeout_settings(database: Database, seconds: float, **extra: Any) -> Settings:
    """Team support serves mysite-es, whose chats must be answered within `seconds`."""
    base: dict[str, Any] = {
        "agents": AGENTS,
        "teams": [{"id": "support"}],
        "channels": {"mysite-es": {"team_id": "support", "accept_timeout_seconds": seconds}},
    }
    return make_settings(database, unused_port(), **{**base, **extra})


@pytest.fixture
def bridge_settings(database: Database) -> Settings:
    """Half a second to answer: the timers fire while the test waits for them."""
    return timeout_settings(database, 0.5)


async def send(
    bridge: RunningBridge, method: str, path: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """Any request with a JSON body; the status and JSON answer."""
    async with bridge.http.request(method, bridge.url(path), json=body, headers=headers) as answer:
        return answer.status, await answer.json()


async def presence(bridge: RunningBridge, agent_id: str, value: str) -> None:
    """Set an agent's presence through the agents API."""
    status, body = await send(bridge, "PUT", f"/v1/agents/{agent_id}/presence", {"presence": value})
    assert status == 200, body


async def online(bridge: RunningBridge, *agents: str) -> None:
    """Set these agents online."""
    for agent_id in agents:
        await presence(bridge, agent_id, "online")


async def left_events(bot: FakeBot, count: int) -> list[Any]:
    """Wait for `count` agent.left events; all of them."""
    await bot.wait_for(lambda b: len(b.of_type("agent.left")) >= count)
    return bot.of_type("agent.left")


async def hand_off(bridge: RunningBridge, bot: FakeBot, n: int = 1) -> str:
    """A handoff to mysite-es; its conversation id."""
    body = handoff_body(bot.url, conversation_id=f"bot-conv-{n}", customer_id=f"cust-{n}")
    status, conversation = await bridge.post("/v1/handoffs", body)
    assert status == 201, conversation
    return str(conversation["id"])


async def conversation(bridge: RunningBridge, cid: str) -> dict[str, Any]:
    status, body = await bridge.get(f"/v1/conversations/{cid}")
    assert status == 200, body
    return dict(body)


async def agent(bridge: RunningBridge, agent_id: str) -> dict[str, Any]:
    status, body = await bridge.get(f"/v1/agents/{agent_id}")
    assert status == 200, body
    return dict(body)


async def timers(bridge: RunningBridge, cid: str, status: str) -> list[dict[str, Any]]:
    """The conversation's accept timers in this outbox status."""
    code, page = await bridge.get(f"/v1/outbox?conversation_id={cid}&status={status}")
    assert code == 200, page
    return [row for row in page["items"] if row["kind"] == "routing.accept_timeout"]


async def reply(bridge: RunningBridge, cid: str, text: str) -> None:
    """The assigned agent answers through the console."""
    token = (await conversation(bridge, cid))["join_url"].rsplit("/", 1)[1]
    status, body = await bridge.post(f"/console/api/{token}/messages", {"text": text})
    assert status == 201, body


def traced(view: dict[str, Any], words: str) -> list[str]:
    return [line for line in view["route"]["trace"] if words in line]


# ---- waiting chats ----------------------------------------------------------------------


async def test_a_chat_nobody_takes_is_offered_one_ring_wider(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """Team support is offered it first; when nobody takes it, cal (the rest of the
    organization) too; then nobody is left and the timers stop."""
    cid = await hand_off(bridge, bot)
    assert (await conversation(bridge, cid))["routing"]["offered_to"] == ["ana", "ben"]

    view = await bridge.get_until(
        f"/v1/conversations/{cid}", lambda c: c["routing"]["offered_to"] == ["ana", "ben", "cal"]
    )
    (line,) = traced(view, "accept timeout")
    assert line == (
        "accept timeout: nobody took it within 0.5 s; organization 'default' → also offered to cal"
    )
    view = await bridge.get_until(
        f"/v1/conversations/{cid}", lambda c: traced(c, "nobody else to offer it to")
    )
    assert view["status"] == "pending"
    # The last timer found nobody new: none is armed after it.
    await eventually(lambda: timers(bridge, cid, "pending"), lambda rows: rows == [])
    assert len(await timers(bridge, cid, "delivered")) == 2


async def test_a_router_steps_on_when_its_chat_is_not_taken(
    database: Database, bot: FakeBot
) -> None:
    """Without a timeout the router's second step would wait a day; the accept timeout
    brings it into effect."""
    settings = timeout_settings(
        database,
        0.5,
        channels={"mysite-es": {"accept_timeout_seconds": 0.5}},
        security={"org_tokens": {"org-token": {"organization_id": "default"}}},
    )
    org = {"Authorization": "Token org-token"}
    first = {"preconditions": [], "organization_ids": [], "team_ids": [], "user_ids": ["ana"]}
    second = {
        "preconditions": [{"type": "task_waited", "value": 86400}],
        "organization_ids": [],
        "team_ids": [],
        "user_ids": ["ben"],
    }
    running = await start_bridge(settings)
    try:
        body = {"name": "day shift", "steps": [first, second]}
        status, router = await send(running, "POST", "/api/v5/orgs/default/routers", body, org)
        assert status == 201, router
        link = {"router_id": router["id"]}
        status, room = await send(
            running, "PATCH", "/api/v5/orgs/default/rooms/mysite-es", link, org
        )
        assert status == 200, room
        cid = await hand_off(running, bot)
        view = await running.get_until(
            f"/v1/conversations/{cid}", lambda c: c["routing"]["offered_to"] == ["ana", "ben"]
        )
        assert view["routing"]["steps_in_effect"] == 2
        assert traced(view, "accept timeout: nobody took it within 0.5 s; router step 1 in effect")
    finally:
        await stop_bridge(running)


# ---- assigned chats ---------------------------------------------------------------------


async def test_an_assigned_chat_nobody_answers_goes_back_to_the_queue(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """Ana takes it and says nothing: it waits again, Ben (online) can take it, the bot
    hears that Ana left, and Ana's capacity is hers again."""
    await online(bridge, "ana", "ben")
    cid = await hand_off(bridge, bot)
    status, taken = await bridge.post(f"/v1/conversations/{cid}/assign", {"agent_id": "ana"})
    assert status == 200, taken
    assert (await agent(bridge, "ana"))["active_chats"] == 1

    view = await bridge.get_until(f"/v1/conversations/{cid}", lambda c: c["status"] == "pending")
    assert view["routing"]["assignee_id"] is None and view["agent"] is None
    assert traced(view, "ana did not answer within 0.5 s → back in the queue")
    # Ben is online and offered it already: nobody else needs it yet.
    assert view["routing"]["offered_to"] == ["ana", "ben"]
    (left,) = await left_events(bot, 1)
    assert left.data["reason"] == "accept_timeout"
    assert left.data["agent"]["id"] == "ana" and left.data["agent"]["name"] == "Ana"
    assert (await agent(bridge, "ana"))["active_chats"] == 0

    # Ben takes it and answers in time: his timer fires and finds the answer.
    status, taken = await bridge.post(f"/v1/conversations/{cid}/assign", {"agent_id": "ben"})
    assert status == 200, taken
    await reply(bridge, cid, "Hi John, Ben here.")
    await eventually(lambda: timers(bridge, cid, "pending"), lambda rows: rows == [])
    view = await conversation(bridge, cid)
    assert (view["status"], view["routing"]["assignee_id"]) == ("active", "ben")
    assert len(bot.of_type("agent.left")) == 1


async def test_an_agent_who_goes_offline_hands_back_unanswered_chats(
    database: Database, bot: FakeBot
) -> None:
    """A minute to answer, but Ana stops at once: her unanswered chat goes back now,
    her answered one stays hers."""
    running = await start_bridge(timeout_settings(database, 60))
    try:
        await online(running, "ana")
        quiet, answered = await hand_off(running, bot, 1), await hand_off(running, bot, 2)
        for cid in (quiet, answered):
            status, taken = await running.post(
                f"/v1/conversations/{cid}/assign", {"agent_id": "ana"}
            )
            assert status == 200, taken
        await reply(running, answered, "On it.")

        await presence(running, "ana", "offline")
        view = await running.get_until(
            f"/v1/conversations/{quiet}", lambda c: c["status"] == "pending"
        )
        assert traced(view, "ana went offline before answering → back in the queue")
        (left,) = await left_events(bot, 1)
        assert (left.data["conversation_id"], left.data["reason"]) == (quiet, "agent_offline")
        # The away check of the answered chat ran too, and left it alone.
        await eventually(lambda: timers(running, answered, "delivered"), lambda rows: rows)
        view = await conversation(running, answered)
        assert (view["status"], view["routing"]["assignee_id"]) == ("active", "ana")
        assert (await agent(running, "ana"))["active_chats"] == 1
    finally:
        await stop_bridge(running)


# ---- once across replicas -----------------------------------------------------------------


@asynccontextmanager
async def two_replicas(settings: Settings) -> AsyncIterator[list[RunningBridge]]:
    running: list[RunningBridge] = []
    try:
        for _ in range(2):
            server = settings.server.model_copy(update={"port": unused_port()})
            running.append(await start_bridge(settings.model_copy(update={"server": server})))
        yield running
    finally:
        for bridge in running:
            await stop_bridge(bridge)


async def test_each_timer_fires_once_across_two_replicas(database: Database, bot: FakeBot) -> None:
    """Ten chats taken by ten agents through two replicas on one PostgreSQL database:
    each goes back to the queue once, one agent.left each, capacity given back once."""
    if database.backend == "sqlite":
        pytest.skip("SQLite serves one process; replicas share PostgreSQL (README, Scaling out)")
    agents = [{"id": f"agent-{i}", "name": f"Agent {i}", "teams": ["support"]} for i in range(10)]
    settings = timeout_settings(database, 0.5, agents=agents)
    async with two_replicas(settings) as (first, second):
        for i in range(10):
            await online(first, f"agent-{i}")
        cids = [await hand_off(first, bot, n) for n in range(10)]
        answers = await asyncio.gather(
            *(
                (first, second)[i % 2].post(
                    f"/v1/conversations/{cid}/assign", {"agent_id": f"agent-{i}"}
                )
                for i, cid in enumerate(cids)
            )
        )
        assert [status for status, _ in answers] == [200] * 10, answers
        for i, cid in enumerate(cids):
            view = await first.get_until(
                f"/v1/conversations/{cid}", lambda c: c["status"] == "pending"
            )
            assert len(traced(view, f"agent-{i} did not answer")) == 1, view["route"]["trace"]
        left = sorted(e.data["conversation_id"] for e in await left_events(bot, 10))
        assert left == sorted(cids)
        for i in range(10):
            assert (await agent(second, f"agent-{i}"))["active_chats"] == 0
