"""The agent desk through the real app, on SQLite and on PostgreSQL.

Two agents of one team sign in with their personal desk links, see the same pending
chat, and race to take it: the first wins, the bot hears who, the other is told
"already taken"; capacity and bad links are enforced.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import unused_port
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from bridge.ports.links import DeskLinks
from bridge.settings import Settings
from tests.conftest import CONSOLE_SECRET, Database, RunningBridge, make_settings
from tests.fakes import FakeBot, handoff_body

AGENTS = [
    {"id": "ana", "name": "Ana", "teams": ["support"], "capacity": 1},
    {"id": "ben", "name": "Ben", "teams": ["support"], "capacity": 2},
]


@pytest.fixture
def bridge_settings(database: Database) -> Settings:
    """Ana and Ben in team support, which gets every chat of channel mysite-es."""
    return desk_settings(database, unused_port())


def desk_settings(database: Database, port: int) -> Settings:
    """The default config plus two agents of one team that serves mysite-es."""
    return make_settings(
        database,
        port,
        agents=AGENTS,
        teams=[{"id": "support"}],
        channels={"mysite-es": {"team_id": "support"}},
    )


# ---- helpers -------------------------------------------------------------------------


async def _hand_off(bridge: RunningBridge, bot: FakeBot, n: int = 1) -> dict[str, Any]:
    body = handoff_body(bot.url, conversation_id=f"bot-conv-{n}", customer_id=f"cust-{n}")
    status, conversation = await bridge.post("/v1/handoffs", body)
    assert status == 201, conversation
    assert conversation["channel"] == "mysite-es"
    return dict(conversation)


async def desk_token(bridge: RunningBridge, agent_id: str) -> str:
    """The agent's personal desk token, from the admin API."""
    status, link = await bridge.get(f"/v1/agents/{agent_id}/desk_link")
    assert status == 200, link
    assert link["agent_id"] == agent_id
    prefix = bridge.settings.server.base_url() + "/console/desk/"
    assert link["url"].startswith(prefix), link
    return str(link["url"].removeprefix(prefix))


async def _state(bridge: RunningBridge, token: str) -> dict[str, Any]:
    status, state = await bridge.get(f"/console/desk-api/{token}/state")
    assert status == 200, state
    return dict(state)


async def _presence_of(bridge: RunningBridge, agent_id: str) -> str:
    status, agents = await bridge.get("/v1/agents")
    assert status == 200, agents
    (agent,) = [a for a in agents["items"] if a["id"] == agent_id]
    return str(agent["presence"])


def _tampered(token: str) -> str:
    # The first signature character: the last one carries base64 padding bits.
    payload, stamp, signature = token.rsplit(".", 2)
    return f"{payload}.{stamp}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


class _MonthOldSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 31 * 86_400


# ---- tests -----------------------------------------------------------------------------


async def test_first_to_take_wins_and_the_other_hears_already_taken(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """Both agents see the offer; Ana starts and takes it, Ben's take is refused."""
    conversation = await _hand_off(bridge, bot)
    cid = conversation["id"]
    assert conversation["routing"]["offered_to"] == ["ana", "ben"]
    ana, ben = await desk_token(bridge, "ana"), await desk_token(bridge, "ben")

    # Opening the desk signs Ana in: absent -> offline, not yet taking chats.
    status, page = await bridge.get(f"/console/desk/{ana}")
    assert status == 200 and "desk.js" in page
    assert await _presence_of(bridge, "ana") == "absent"
    status, signed_in = await bridge.post(f"/console/desk-api/{ana}/sign-in")
    assert status == 200, signed_in
    assert signed_in["agent"]["presence"] == "offline"
    assert await _presence_of(bridge, "ana") == "offline"

    state = await _state(bridge, ana)
    assert state["agent"] == {
        "id": "ana",
        "name": "Ana",
        "presence": "offline",
        "capacity": 1,
        "active_chats": 0,
    }
    (offer,) = state["offers"]
    assert (offer["id"], offer["channel"]) == (cid, "mysite-es")
    assert (offer["customer"]["firstname"], offer["customer"]["lastname"]) == ("John", "Doe")
    assert offer["metadata"] == {"plan": "vip", "order": 42}
    assert offer["queue_position"] == 1
    assert offer["waiting_seconds"] >= 0
    assert "offered to ana, ben" in offer["route"]["trace"]
    assert state["active"] == []
    assert [o["id"] for o in (await _state(bridge, ben))["offers"]] == [cid]

    # Start: online.
    status, started = await bridge.post(f"/console/desk-api/{ana}/presence", {"presence": "online"})
    assert (status, started["agent"]["presence"]) == (200, "online"), started
    assert await _presence_of(bridge, "ana") == "online"

    # Ana takes it: the join link opens the conversation with her already in it.
    status, taken = await bridge.post(f"/console/desk-api/{ana}/take/{cid}")
    assert status == 200, taken
    assert taken["conversation_id"] == cid
    join_token = taken["join_url"].rsplit("/", 1)[1]
    status, view = await bridge.get(f"/console/api/{join_token}/conversation")
    assert status == 200, view
    assert view["conversation"]["status"] == "active"
    assert view["conversation"]["agent"]["name"] == "Ana"

    await bot.wait_for(lambda b: bool(b.of_type("agent.joined")))
    (joined,) = bot.of_type("agent.joined")
    assert joined.data["agent"]["name"] == "Ana" and joined.data["agent"]["id"] == "ana"
    assert joined.data["bot_conversation_id"] == "bot-conv-1"
    assert bot.bad_signatures == 0

    # Ben was a moment late.
    status, refused = await bridge.post(f"/console/desk-api/{ben}/take/{cid}")
    assert status == 409, refused
    assert refused["error"]["message"] == "this chat was already taken"
    assert refused["error"]["fields"] == [{"field": "conversation", "problem": "already taken"}]

    state = await _state(bridge, ana)
    assert state["offers"] == []
    assert state["agent"]["active_chats"] == 1
    assert [(c["id"], c["customer"]["id"]) for c in state["active"]] == [(cid, "cust-1")]
    assert state["active"][0]["join_url"].startswith(bridge.settings.server.base_url())
    assert (await _state(bridge, ben))["offers"] == []
    status, fetched = await bridge.get(f"/v1/conversations/{cid}")
    assert (status, fetched["routing"]["assignee_id"]) == (200, "ana")
    # Still one agent.joined: the refused take told the bot nothing.
    await bot.wait_for(lambda b: len(b.of_type("agent.joined")) == 1)
    assert len(bot.of_type("agent.joined")) == 1


async def test_capacity_limits_taking_until_a_chat_ends(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """Ana (capacity 1) cannot take a second chat until she closes her first."""
    first = await _hand_off(bridge, bot, 1)
    second = await _hand_off(bridge, bot, 2)
    ana = await desk_token(bridge, "ana")
    state = await _state(bridge, ana)
    assert [o["id"] for o in state["offers"]] == [first["id"], second["id"]]
    assert [o["queue_position"] for o in state["offers"]] == [1, 2]

    status, taken = await bridge.post(f"/console/desk-api/{ana}/take/{first['id']}")
    assert status == 200, taken
    status, refused = await bridge.post(f"/console/desk-api/{ana}/take/{second['id']}")
    assert status == 409, refused
    assert "at capacity" in refused["error"]["message"]
    assert refused["error"]["fields"][0]["field"] == "capacity"
    state = await _state(bridge, ana)
    assert [o["id"] for o in state["offers"]] == [second["id"]]
    assert state["agent"]["active_chats"] == 1

    # Closing the first chat from the conversation page frees her capacity.
    join_token = taken["join_url"].rsplit("/", 1)[1]
    status, closed = await bridge.post(f"/console/api/{join_token}/close", {})
    assert status == 200, closed
    state = await _state(bridge, ana)
    assert (state["active"], state["agent"]["active_chats"]) == ([], 0)
    status, taken = await bridge.post(f"/console/desk-api/{ana}/take/{second['id']}")
    assert (status, taken["conversation_id"]) == (200, second["id"]), taken


async def test_presence_start_stop_and_validation(bridge: RunningBridge) -> None:
    """Start and Stop move between online and offline; anything else is refused."""
    ben = await desk_token(bridge, "ben")
    for presence in ("online", "offline"):
        status, body = await bridge.post(
            f"/console/desk-api/{ben}/presence", {"presence": presence}
        )
        assert (status, body["agent"]["presence"]) == (200, presence), body
        assert await _presence_of(bridge, "ben") == presence
    status, body = await bridge.post(f"/console/desk-api/{ben}/presence", {"presence": "absent"})
    assert status == 422, body
    assert body["error"]["fields"][0]["field"] == "presence"
    # Signing in again does not undo Start.
    await bridge.post(f"/console/desk-api/{ben}/presence", {"presence": "online"})
    status, body = await bridge.post(f"/console/desk-api/{ben}/sign-in")
    assert (status, body["agent"]["presence"]) == (200, "online")


async def test_bad_desk_links_are_refused(bridge: RunningBridge, bot: FakeBot) -> None:
    """Tampered, expired or borrowed tokens get 403; unknown agents get 404."""
    conversation = await _hand_off(bridge, bot)
    cid = conversation["id"]
    ana = await desk_token(bridge, "ana")
    tampered = _tampered(ana)
    old = URLSafeTimedSerializer(CONSOLE_SECRET, salt=DeskLinks._SALT, signer=_MonthOldSigner)
    expired = old.dumps("ana")
    join_token = conversation["join_url"].rsplit("/", 1)[1]

    for bad in (tampered, expired, join_token):
        status, page = await bridge.get(f"/console/desk/{bad}")
        assert status == 403 and "Link not valid" in page
        status, body = await bridge.get(f"/console/desk-api/{bad}/state")
        assert (status, body["error"]["code"]) == (403, "forbidden"), body
        status, body = await bridge.post(f"/console/desk-api/{bad}/take/{cid}")
        assert status == 403, body
        status, body = await bridge.post(
            f"/console/desk-api/{bad}/presence", {"presence": "online"}
        )
        assert status == 403, body
        status, body = await bridge.post(f"/console/desk-api/{bad}/sign-in")
        assert status == 403, body
    status, body = await bridge.get(f"/console/desk-api/{expired}/state")
    assert "expired" in body["error"]["message"]
    # Nor does a desk token open a conversation.
    status, body = await bridge.get(f"/console/api/{ana}/conversation")
    assert status == 403, body

    # Nothing changed.
    status, fetched = await bridge.get(f"/v1/conversations/{cid}")
    assert (status, fetched["status"], fetched["routing"]["assignee_id"]) == (200, "pending", None)
    assert await _presence_of(bridge, "ana") == "absent"

    status, body = await bridge.get("/v1/agents/nobody/desk_link")
    assert (status, body["error"]["code"]) == (404, "not_found"), body
    ghost = DeskLinks(CONSOLE_SECRET, "http://unused").token("nobody")
    status, body = await bridge.get(f"/console/desk-api/{ghost}/state")
    assert status == 404, body
    status, body = await bridge.post(f"/console/desk-api/{ghost}/take/{cid}")
    assert status == 404, body


async def test_simultaneous_takes_give_the_chat_to_exactly_one(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """Ana and Ben press Take at the same moment: one wins, the other gets 409."""
    cid = (await _hand_off(bridge, bot))["id"]
    tokens = {agent: await desk_token(bridge, agent) for agent in ("ana", "ben")}
    results = await asyncio.gather(
        *(bridge.post(f"/console/desk-api/{t}/take/{cid}") for t in tokens.values())
    )
    assert sorted(status for status, _ in results) == [200, 409], results
    (refused,) = [body for status, body in results if status == 409]
    assert refused["error"]["message"] == "this chat was already taken"
    status, fetched = await bridge.get(f"/v1/conversations/{cid}")
    assert status == 200, fetched
    winner = fetched["routing"]["assignee_id"]
    assert winner in tokens
    loads = {a: (await _state(bridge, t))["agent"]["active_chats"] for a, t in tokens.items()}
    assert loads == {a: int(a == winner) for a in tokens}
    await bot.wait_for(lambda b: bool(b.of_type("agent.joined")))
    (joined,) = bot.of_type("agent.joined")
    assert joined.data["agent"]["id"] == winner
