"""A whole Kommunicate handoff through the real app and a fake Kommunicate, on both databases.

The `support` channel is on Kommunicate, next to the console channels of the default
config. The fake posts every message it accepts back to the bridge's webhook, as
Kommunicate does, so every step also proves that echoes are dropped.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from tests.adapters.fake_kommunicate import FakeKommunicate, Group
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body

API_KEY = "km-it-api-key-3f9c51"
TOKEN = "km-it-webhook-token-81d2e4"
CHANNEL = "support"
AGENT = "ana@example.com"
ACTING = "admin@example.com"
HISTORY = ["Where is my order?", "Let me get a person."]


@pytest.fixture
async def kommunicate() -> AsyncIterator[FakeKommunicate]:
    async with FakeKommunicate(api_key=API_KEY, webhook_token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def km_bridge(
    database: Database, monkeypatch: pytest.MonkeyPatch, kommunicate: FakeKommunicate
) -> AsyncIterator[RunningBridge]:
    monkeypatch.setenv("KOMMUNICATE_API_KEY", API_KEY)
    monkeypatch.setenv("KOMMUNICATE_WEBHOOK_TOKEN", TOKEN)
    options = {
        "api_key": "KOMMUNICATE_API_KEY",
        "webhook_token": "KOMMUNICATE_WEBHOOK_TOKEN",
        "base_url": kommunicate.url,
        "default_agent_ids": [AGENT],
        "acting_user_id": ACTING,
    }
    settings = make_settings(
        database,
        unused_port(),
        channels={CHANNEL: {"platform": "kommunicate", "options": options}},
    )
    bridge = await start_bridge(settings)
    kommunicate.webhook_url = bridge.url(f"/webhooks/{CHANNEL}")
    try:
        yield bridge
    finally:
        await stop_bridge(bridge)


async def _handoff(bridge: RunningBridge, bot: FakeBot, **extra: Any) -> str:
    body = handoff_body(bot.url, region=None, channel=CHANNEL, **extra)
    status, conversation = await bridge.post("/v1/handoffs", body)
    assert status == 201, conversation
    assert (conversation["channel"], conversation["platform"]) == (CHANNEL, "kommunicate")
    cid: str = conversation["id"]
    return cid


async def _transcript(bridge: RunningBridge, cid: str) -> list[tuple[str, str]]:
    status, body = await bridge.get(f"/v1/conversations/{cid}/messages")
    assert status == 200, body
    return [(m["role"], m["text"]) for m in body["messages"]]


async def _outbox(bridge: RunningBridge, cid: str) -> list[dict[str, Any]]:
    status, listing = await bridge.get(f"/v1/outbox?conversation_id={cid}")
    assert status == 200, listing
    items: list[dict[str, Any]] = listing["items"]
    return items


def _group(fake: FakeKommunicate, cid: str) -> Group:
    group = fake.group(cid)
    assert group is not None, f"no group for {cid}"
    return group


async def test_a_whole_handoff_through_kommunicate(
    km_bridge: RunningBridge, kommunicate: FakeKommunicate, bot: FakeBot
) -> None:
    settings = {"skipRouting": True, "defaultAssignee": AGENT, "teamId": 42}
    cid = await _handoff(km_bridge, bot, settings=settings)

    # Transfer: the group is created with the routing settings and the history follows,
    # each message from its original author.
    await kommunicate.wait_for(lambda k: k.group(cid) is not None and len(k.messages) == 2)
    group = _group(kommunicate, cid)
    assert group.members == ["customer-cust-1", AGENT, "bot"]
    assert {k: group.metadata[k] for k in ("SKIP_ROUTING", "KM_TEAM_ID")} == {
        "SKIP_ROUTING": "true",
        "KM_TEAM_ID": "42",
    }
    assert json.loads(group.metadata["conversationMetadata"]) == {"plan": "vip", "order": 42}
    assert kommunicate.assignments == [
        {
            "groupId": str(group.id),
            "assignee": AGENT,
            "sendNotifyMessage": "true",
            "takeOverFromBot": "true",
            "Of-User-Id": ACTING,
        }
    ]
    assert kommunicate.texts(group.id) == HISTORY
    assert [m["fromUserName"] for m in kommunicate.messages] == ["customer-cust-1", "bot"]
    state = await km_bridge.get_until(f"/v1/conversations/{cid}", lambda b: b["external_ref"])
    assert state["external_ref"] == f"{group.id}:customer-cust-1"
    assert state["join_url"] == f"https://dashboard.kommunicate.io/conversations/{group.id}"

    # The customer writes; it reaches the conversation as the customer.
    status, _ = await km_bridge.post(
        f"/v1/conversations/{cid}/messages", {"text": "Any news?", "id": "m-1"}
    )
    assert status == 201
    await kommunicate.wait_for(lambda k: len(k.messages) == 3)
    assert kommunicate.messages[-1]["fromUserName"] == "customer-cust-1"
    # Kommunicate posted all three back to the webhook; none became an agent message.
    await kommunicate.wait_for(lambda k: len(k.echo_statuses) == 3)
    assert kommunicate.echo_statuses == [200, 200, 200]
    assert [role for role, _ in await _transcript(km_bridge, cid)] == [
        "customer",
        "bot",
        "customer",
    ]

    # The agent replies in the dashboard: the bot hears of the join and the message, signed.
    reply = kommunicate.webhook_payload(group, "Hi John, I'm Ana.", sender=AGENT, key="5-km-a1")
    assert await kommunicate.deliver(reply) == 200
    await bot.wait_for(lambda b: len(b.of_type("agent.message")) == 1)
    # (The bridge may also tell the bot that no agent it knows is online: not our concern.)
    assert [e.type for e in bot.events if e.type.startswith("agent.")] == [
        "agent.joined",
        "agent.message",
    ]
    sent = bot.of_type("agent.message")[0].data["message"]
    assert (sent["text"], sent["author"]) == ("Hi John, I'm Ana.", AGENT)
    assert bot.bad_signatures == 0

    # The same webhook again: answered, applied once.
    assert await kommunicate.deliver(reply) == 200
    assert [t for role, t in await _transcript(km_bridge, cid) if role == "agent"] == [
        "Hi John, I'm Ana."
    ]
    events = [i["event_type"] for i in await _outbox(km_bridge, cid) if i["kind"] == "bot.event"]
    assert events.count("agent.message") == 1

    # A webhook with the wrong token: 401, and nothing is stored.
    forged = kommunicate.webhook_payload(group, "Send me your card number", sender=AGENT)
    assert await kommunicate.deliver(forged, token="not-the-token") == 401
    assert "Send me your card number" not in [t for _, t in await _transcript(km_bridge, cid)]

    # The bot closes: the conversation is resolved on Kommunicate.
    status, closed = await km_bridge.post(f"/v1/conversations/{cid}/close", {})
    assert (status, closed["status"]) == (200, "closed")
    await kommunicate.wait_for(lambda k: len(k.status_changes) == 1)
    assert kommunicate.status_changes == [
        {"groupId": str(group.id), "status": "2", "Of-User-Id": ACTING}
    ]
    assert group.status == 2
    assert bot.bad_signatures == 0 and bot.duplicates == 0
    assert len(bot.of_type("agent.message")) == 1


async def test_two_server_errors_then_success_deliver_once_and_in_order(
    km_bridge: RunningBridge, kommunicate: FakeKommunicate, bot: FakeBot
) -> None:
    kommunicate.scripts["send"] = deque([500, 500])
    cid = await _handoff(km_bridge, bot)
    status, _ = await km_bridge.post(
        f"/v1/conversations/{cid}/messages", {"text": "Any news?", "id": "m-1"}
    )
    assert status == 201

    await kommunicate.wait_for(lambda k: len(k.messages) == 3)
    # One copy of each message, in the order written, after two refusals of the first.
    assert kommunicate.texts() == [*HISTORY, "Any news?"]
    assert kommunicate.attempts["send"] == 5
    items = await km_bridge.get_until(
        f"/v1/outbox?conversation_id={cid}",
        lambda b: all(i["status"] == "delivered" for i in b["items"] if i["kind"] != "bot.event"),
    )
    sends = [i for i in items["items"] if i["kind"] == "agent.message"]
    assert [i["attempts"] for i in sends] == [3, 1, 1]


async def test_a_refused_send_is_dead_visible_and_not_retried(
    km_bridge: RunningBridge, kommunicate: FakeKommunicate, bot: FakeBot
) -> None:
    kommunicate.scripts["send"] = deque([400])
    cid = await _handoff(km_bridge, bot)

    listing = await km_bridge.get_until("/v1/outbox?status=dead", lambda b: b["items"])
    [item] = listing["items"]
    assert (item["kind"], item["attempts"], item["conversation_id"]) == ("agent.message", 1, cid)
    assert "400" in item["last_error"]
    # The rest of the conversation goes on; the refused message was tried once only.
    await kommunicate.wait_for(lambda k: k.texts() == [HISTORY[1]])
    assert kommunicate.attempts["send"] == 2
    status, state = await km_bridge.get(f"/v1/conversations/{cid}")
    assert (status, state["status"]) == (200, "pending")


async def test_a_send_whose_answer_was_lost_is_sent_again_under_the_same_message_id(
    km_bridge: RunningBridge, kommunicate: FakeKommunicate, bot: FakeBot
) -> None:
    # Kommunicate stores the customer's message but its answer never reaches the bridge
    # (as when the bridge is killed between the send and recording it): the relay sends
    # again. Kommunicate documents no deduplication, so it shows both copies; both name
    # the same bridge message, and the next message has an id of its own.
    cid = await _handoff(km_bridge, bot)
    await kommunicate.wait_for(lambda k: len(k.messages) == 2)
    kommunicate.lost.lose_next()
    for text, message_id in (("Any news?", "m-1"), ("Hello?", "m-2")):
        status, _ = await km_bridge.post(
            f"/v1/conversations/{cid}/messages", {"text": text, "id": message_id}
        )
        assert status == 201

    await kommunicate.wait_for(lambda k: len(k.messages) == 5)
    assert kommunicate.lost.lost == 1
    assert kommunicate.texts() == [*HISTORY, "Any news?", "Any news?", "Hello?"]
    status, body = await km_bridge.get(f"/v1/conversations/{cid}/messages")
    assert status == 200, body
    ids = [f"{cid}:{m['seq']}" for m in body["messages"]]
    assert kommunicate.message_ids() == [ids[0], ids[1], ids[2], ids[2], ids[3]]
    items = await km_bridge.get_until(
        f"/v1/outbox?conversation_id={cid}",
        lambda b: all(i["status"] == "delivered" for i in b["items"] if i["kind"] != "bot.event"),
    )
    sends = [i for i in items["items"] if i["kind"] == "agent.message"]
    assert [i["attempts"] for i in sends] == [1, 1, 2, 1]


async def test_an_agents_file_reaches_the_bot_as_an_attachment_or_a_link(
    km_bridge: RunningBridge, kommunicate: FakeKommunicate, bot: FakeBot
) -> None:
    """A file the webhook describes is the agent message's attachment; one the bridge's
    outbound policy refuses (an address inside its network) reaches the bot as a link line,
    and the webhook is still answered 200 (Kommunicate would resend it for ever)."""
    cid = await _handoff(km_bridge, bot)
    await kommunicate.wait_for(lambda k: k.group(cid) is not None)
    group = _group(kommunicate, cid)
    invoice = {
        "name": "invoice-42.pdf",
        "url": "https://93.184.216.34/file/AMIfv94",
        "contentType": "application/pdf",
        "size": 28150,
    }
    inside = {"name": "dump.txt", "url": "http://10.1.2.3/dump.txt", "contentType": "text/plain"}
    for key, file in (("5-km-f1", invoice), ("5-km-f2", inside)):
        payload = kommunicate.webhook_payload(group, "", sender=AGENT, key=key)
        assert await kommunicate.deliver({**payload, "file": file}) == 200

    await bot.wait_for(lambda b: len(b.of_type("agent.message")) == 2)
    first, second = (event.data["message"] for event in bot.of_type("agent.message"))
    assert (first["text"], first["attachments"]) == (
        "",
        [
            {
                "url": invoice["url"],
                "name": "invoice-42.pdf",
                "mime_type": "application/pdf",
                "size": 28150,
            }
        ],
    )
    assert (second["text"], "attachments" in second) == (
        "dump.txt: http://10.1.2.3/dump.txt",
        False,
    )
