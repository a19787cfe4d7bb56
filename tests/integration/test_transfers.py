"""Transfers through the real app, on SQLite and PostgreSQL.

An operator moves a chat to another agent, a team or a channel of its organization;
the transcript and metadata go along, a note is left for the next agent, capacity is
respected (an agent at capacity is refused with 409), and the bot hears `agent.left`,
`conversation.transferred` and `agent.joined`. Another organization's token sees no
such conversation, and the bot's token cannot transfer.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from bridge.settings import Settings
from tests.conftest import Database, RunningBridge, make_settings
from tests.fakes import FakeBot, handoff_body

ADMIN = {"Authorization": "Bearer admin-token"}
BOT = {"Authorization": "Bearer bot-token"}
DEFAULT_ORG = {"Authorization": "Token default-token"}
OTHER_ORG = {"Authorization": "Token other-token"}

AGENTS = [
    {"id": "ana", "name": "Ana", "teams": ["support"], "capacity": 2},
    {"id": "ben", "name": "Ben", "teams": ["support"], "capacity": 1},
    {"id": "vic", "name": "Vic", "teams": ["vip"], "capacity": 2},
]


def transfer_settings(database: Database) -> Settings:
    """Teams support (mysite-es) and vip (mysite-en); tokens for the bot, admin and two orgs."""
    return make_settings(
        database,
        unused_port(),
        agents=AGENTS,
        teams=[{"id": "support"}, {"id": "vip"}],
        channels={"mysite-es": {"team_id": "support"}, "mysite-en": {"team_id": "vip"}},
        security={
            "api_token": "bot-token",
            "admin_token": "admin-token",
            "org_tokens": {
                "default-token": {"organization_id": "default", "user_id": "lead-1"},
                "other-token": {"organization_id": "other"},
            },
        },
    )


@pytest.fixture
def bridge_settings(database: Database) -> Settings:
    return transfer_settings(database)


async def send(
    bridge: RunningBridge, method: str, path: str, body: Any, headers: dict[str, str]
) -> tuple[int, Any]:
    async with bridge.http.request(method, bridge.url(path), json=body, headers=headers) as answer:
        return answer.status, await answer.json()


async def taken_by_ana(bridge: RunningBridge, bot: FakeBot) -> str:
    """Everyone online; a handoff to mysite-es that Ana takes and answers."""
    for agent in ("ana", "ben", "vic"):
        status, body = await send(
            bridge, "PUT", f"/v1/agents/{agent}/presence", {"presence": "online"}, ADMIN
        )
        assert status == 200, body
    status, conversation = await send(bridge, "POST", "/v1/handoffs", handoff_body(bot.url), BOT)
    assert status == 201, conversation
    cid = str(conversation["id"])
    status, body = await send(
        bridge, "POST", f"/v1/conversations/{cid}/assign", {"agent_id": "ana"}, BOT
    )
    assert status == 200, body
    return cid


async def view(bridge: RunningBridge, cid: str) -> dict[str, Any]:
    status, body = await send(bridge, "GET", f"/v1/conversations/{cid}", None, BOT)
    assert status == 200, body
    return dict(body)


async def transcript(bridge: RunningBridge, cid: str) -> list[dict[str, Any]]:
    status, body = await send(bridge, "GET", f"/v1/conversations/{cid}/messages", None, BOT)
    assert status == 200, body
    return list(body["messages"])


async def load(bridge: RunningBridge, agent_id: str) -> int:
    status, body = await send(bridge, "GET", f"/v1/agents/{agent_id}", None, ADMIN)
    assert status == 200, body
    return int(body["active_chats"])


async def test_a_transfer_to_an_agent_gives_them_the_chat_with_everything(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """Ana passes the chat to Ben with a note: Ben has it, Ana's capacity is back, the
    bot hears who left and who came, and Ben reads the note under the same history."""
    cid = await taken_by_ana(bridge, bot)
    before = await transcript(bridge, cid)
    body = {"agent_id": "ben", "note": "Refund approved, needs the IBAN"}
    status, moved = await send(
        bridge, "POST", f"/v1/conversations/{cid}/transfer", body, DEFAULT_ORG
    )
    assert status == 200, moved
    assert (moved["status"], moved["routing"]["assignee_id"]) == ("active", "ben")
    assert moved["agent"]["name"] == "Ben"
    assert moved["metadata"] == {"plan": "vip", "order": 42}
    assert moved["route"]["trace"][-1] == "transferred by lead-1: to agent ben"
    assert (await load(bridge, "ana"), await load(bridge, "ben")) == (0, 1)

    after = await transcript(bridge, cid)
    assert after[: len(before)] == before
    (note,) = after[len(before) :]
    assert (note["role"], note["text"]) == (
        "system",
        "Transferred to agent ben: Refund approved, needs the IBAN",
    )

    await bot.wait_for(lambda b: len(b.of_type("agent.joined")) == 2)
    kinds = [
        e.type
        for e in bot.events
        if e.type in {"agent.joined", "agent.left", "conversation.transferred"}
    ]
    assert kinds == ["agent.joined", "agent.left", "conversation.transferred", "agent.joined"]
    (left,) = bot.of_type("agent.left")
    assert (left.data["agent"]["id"], left.data["reason"]) == ("ana", "transferred")
    (transferred,) = bot.of_type("conversation.transferred")
    assert transferred.data["from"] == {
        "channel": "mysite-es",
        "platform": "console",
        "team_id": "support",
        "agent_id": "ana",
    }
    assert transferred.data["to"]["agent_id"] == "ben"
    assert transferred.data["reason"] == "api"
    assert transferred.data["note"] == "Refund approved, needs the IBAN"
    assert bot.of_type("agent.joined")[-1].data["agent"]["id"] == "ben"


async def test_an_agent_at_capacity_is_refused_and_nothing_changes(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """Ben (capacity 1) has a chat: a transfer to him is 409 and Ana keeps hers."""
    cid = await taken_by_ana(bridge, bot)
    other = handoff_body(bot.url, conversation_id="bot-conv-2", customer_id="cust-2")
    status, second = await send(bridge, "POST", "/v1/handoffs", other, BOT)
    assert status == 201, second
    status, body = await send(
        bridge, "POST", f"/v1/conversations/{second['id']}/assign", {"agent_id": "ben"}, BOT
    )
    assert status == 200, body

    status, refused = await send(
        bridge, "POST", f"/v1/conversations/{cid}/transfer", {"agent_id": "ben"}, ADMIN
    )
    assert status == 409, refused
    assert refused["error"]["fields"] == [{"field": "agent_id", "problem": "at capacity (1)"}]
    after = await view(bridge, cid)
    assert (after["status"], after["routing"]["assignee_id"]) == ("active", "ana")
    assert (await load(bridge, "ana"), await load(bridge, "ben")) == (1, 1)
    assert not bot.of_type("conversation.transferred")


async def test_a_transfer_to_a_team_or_a_channel_queues_it_there(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """To team vip: it waits, offered to Vic. Then to channel mysite-de: it moves there
    (opened on that channel's platform with its history) and waits again."""
    cid = await taken_by_ana(bridge, bot)
    status, moved = await send(
        bridge, "POST", f"/v1/conversations/{cid}/transfer", {"team_id": "vip"}, ADMIN
    )
    assert status == 200, moved
    assert moved["status"] == "pending" and moved["agent"] is None
    assert (moved["routing"]["team_id"], moved["routing"]["offered_to"]) == ("vip", ["vic"])
    assert moved["routing"]["queue_position"] == 1
    assert await load(bridge, "ana") == 0

    status, moved = await send(
        bridge, "POST", f"/v1/conversations/{cid}/transfer", {"channel": "mysite-de"}, ADMIN
    )
    assert status == 200, moved
    assert (moved["channel"], moved["status"]) == ("mysite-de", "pending")
    await bot.wait_for(lambda b: len(b.of_type("conversation.transferred")) == 2)
    to_team, to_channel = bot.of_type("conversation.transferred")
    assert to_team.data["to"] == {
        "channel": "mysite-es",
        "platform": "console",
        "team_id": "vip",
        "agent_id": None,
    }
    assert (to_channel.data["from"]["channel"], to_channel.data["to"]["channel"]) == (
        "mysite-es",
        "mysite-de",
    )
    assert to_channel.data["channel"] == "mysite-de"
    status, page = await send(bridge, "GET", f"/v1/outbox?conversation_id={cid}", None, ADMIN)
    assert status == 200, page
    agent_side = [
        (row["kind"], row["target"])
        for row in page["items"]
        if row["kind"] in {"agent.open", "agent.withdraw", "agent.message"}
    ]
    # Opened on mysite-es at the handoff, withdrawn from there, opened on mysite-de.
    assert agent_side == [
        ("agent.open", "mysite-es"),
        ("agent.withdraw", "mysite-es"),
        ("agent.open", "mysite-de"),
    ]


async def test_who_may_transfer_and_what_a_transfer_must_name(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """Another organization sees no such chat; the bot's token cannot transfer; a
    transfer names one known target of the chat's organization."""
    cid = await taken_by_ana(bridge, bot)
    path = f"/v1/conversations/{cid}/transfer"
    status, body = await send(bridge, "POST", path, {"agent_id": "ben"}, OTHER_ORG)
    assert (status, body["error"]["code"]) == (404, "conversation_not_found")
    status, body = await send(bridge, "POST", path, {"agent_id": "ben"}, BOT)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body = await send(bridge, "POST", path, {"note": "anyone"}, ADMIN)
    assert status == 422, body
    assert {f["field"] for f in body["error"]["fields"]} == {"agent_id", "team_id", "channel"}
    status, body = await send(bridge, "POST", path, {"agent_id": "ben", "team_id": "vip"}, ADMIN)
    assert status == 422 and {f["field"] for f in body["error"]["fields"]} == {
        "agent_id",
        "team_id",
    }
    status, body = await send(bridge, "POST", path, {"agent_id": "zed"}, ADMIN)
    assert (status, body["error"]["fields"][0]["field"]) == (404, "agent_id")
    status, body = await send(bridge, "POST", path, {"channel": "nowhere"}, ADMIN)
    assert (status, body["error"]["fields"][0]["field"]) == (404, "channel")
    status, body = await send(bridge, "POST", path, {"agent_id": "ana"}, ADMIN)
    assert (status, body["error"]["code"]) == (409, "invalid_state")
    status, body = await send(bridge, "POST", path, {"agent_id": "ben", "to": "x"}, ADMIN)
    assert (status, body["error"]["fields"][0]["field"]) == (422, "to")
    after = await view(bridge, cid)
    assert (after["status"], after["routing"]["assignee_id"]) == ("active", "ana")
    assert not bot.of_type("conversation.transferred")
