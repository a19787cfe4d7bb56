"""Channels on different platforms side by side in one bridge, on SQLite and PostgreSQL.

The default config's region routing stays as it is: `mysite` and `mysite-es` on the
built-in console, with `mysite-en` moved to Kommunicate and `mysite-de` to giosg. Three
customers are handed off; each conversation must reach its own platform only, and
each platform's agent reply must come back to the bot for the right conversation.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from tests.adapters.fake_giosg import API_USER, ORG, ROOM, TEAM_ONLINE, FakeGiosg, message_webhook
from tests.adapters.fake_kommunicate import FakeKommunicate, basic
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body
from tests.integration import test_platform_giosg, test_platform_kommunicate
from tests.integration.test_platform_giosg import API_TOKEN, HOOK_SECRET
from tests.integration.test_platform_kommunicate import (
    ACTING,
    AGENT,
    API_KEY,
    HISTORY,
    TOKEN,
    _group,
    _transcript,
)

# The platform tests' fakes, as fixtures of this module too.
kommunicate = test_platform_kommunicate.kommunicate
giosg = test_platform_giosg.giosg

KM_CHANNEL = "mysite-en"
GIOSG_CHANNEL = "mysite-de"


def _channels(kommunicate: FakeKommunicate, giosg: FakeGiosg) -> dict[str, Any]:
    """Two regions of the default config moved to the fake platforms; the rest stay."""
    km_options = {
        "api_key": "KOMMUNICATE_API_KEY",
        "webhook_token": "KOMMUNICATE_WEBHOOK_TOKEN",
        "base_url": kommunicate.url,
        "default_agent_ids": [AGENT],
        "acting_user_id": ACTING,
    }
    giosg_options = {
        "api_token": "GIOSG_IT_API_TOKEN",
        "webhook_secret": "GIOSG_IT_WEBHOOK_SECRET",
        "organization_id": ORG,
        "room_id": ROOM,
        "team_id": TEAM_ONLINE,
        "user_id": API_USER,
        "base_url": giosg.url,
    }
    return {
        KM_CHANNEL: {"platform": "kommunicate", "options": km_options},
        GIOSG_CHANNEL: {"platform": "giosg", "options": giosg_options},
    }


async def _handoff(bridge: RunningBridge, bot: FakeBot, region: str) -> dict[str, Any]:
    body = handoff_body(
        bot.url, region=region, conversation_id=f"bot-{region}", customer_id=f"cust-{region}"
    )
    status, conversation = await bridge.post("/v1/handoffs", body)
    assert status == 201, conversation
    return conversation


async def _customer_writes(bridge: RunningBridge, cid: str, text: str) -> None:
    status, sent = await bridge.post(
        f"/v1/conversations/{cid}/messages", {"text": text, "id": f"m-{cid}"}
    )
    assert status == 201, sent


async def test_three_platforms_side_by_side(
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    bot: FakeBot,
    kommunicate: FakeKommunicate,
    giosg: FakeGiosg,
) -> None:
    monkeypatch.setenv("KOMMUNICATE_API_KEY", API_KEY)
    monkeypatch.setenv("KOMMUNICATE_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("GIOSG_IT_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("GIOSG_IT_WEBHOOK_SECRET", HOOK_SECRET)
    settings = make_settings(database, unused_port(), channels=_channels(kommunicate, giosg))
    assert settings.default_channel == "mysite"
    assert {name: settings.channels[name].platform for name in settings.channels} == {
        "mysite": "console",
        "mysite-es": "console",
        KM_CHANNEL: "kommunicate",
        GIOSG_CHANNEL: "giosg",
    }
    bridge = await start_bridge(settings)
    # Both platforms post every message of their conversations back, ours included.
    kommunicate.webhook_url = bridge.url(f"/webhooks/{KM_CHANNEL}")
    giosg.webhook_url = bridge.url(f"/webhooks/{GIOSG_CHANNEL}/{HOOK_SECRET}")
    try:
        await _run(bridge, bot, kommunicate, giosg)
    finally:
        await stop_bridge(bridge)


async def _run(
    bridge: RunningBridge, bot: FakeBot, kommunicate: FakeKommunicate, giosg: FakeGiosg
) -> None:
    en = await _handoff(bridge, bot, "en")
    de = await _handoff(bridge, bot, "de")
    xx = await _handoff(bridge, bot, "xx")
    assert (en["channel"], en["platform"]) == (KM_CHANNEL, "kommunicate")
    assert (de["channel"], de["platform"]) == (GIOSG_CHANNEL, "giosg")
    assert (xx["channel"], xx["platform"]) == ("mysite", "console")
    assert xx["join_url"].startswith(bridge.settings.server.base_url() + "/console/c/")

    # Each customer writes once more; every message goes to its own platform only.
    await _customer_writes(bridge, en["id"], "Any news? (en)")
    await _customer_writes(bridge, de["id"], "Any news? (de)")
    await _customer_writes(bridge, xx["id"], "Any news? (xx)")

    await kommunicate.wait_for(lambda k: len(k.messages) >= 3 and len(k.echo_statuses) >= 3)
    group = _group(kommunicate, en["id"])
    assert list(kommunicate.groups.values()) == [group]
    assert kommunicate.texts(group.id) == [*HISTORY, "Any news? (en)"]
    assert kommunicate.texts() == kommunicate.texts(group.id)
    assert [m["fromUserName"] for m in kommunicate.messages] == [
        "customer-cust-en",
        "bot",
        "customer-cust-en",
    ]
    state = await bridge.get_until(f"/v1/conversations/{en['id']}", lambda b: b["external_ref"])
    assert state["external_ref"] == f"{group.id}:customer-cust-en"

    await giosg.wait_for(lambda g: len(g.sent_texts()) >= 3 and len(g.echo_statuses) >= 3)
    chat = giosg.only_chat()
    assert giosg.sent_texts() == [*HISTORY, "Any news? (de)"]
    assert {r.chat_id for r in giosg.received} == {chat.id}
    assert giosg.visitors[chat.visitor_id].variables["bridge_conversation_id"] == de["id"]
    state = await bridge.get_until(f"/v1/conversations/{de['id']}", lambda b: b["external_ref"])
    assert state["external_ref"] == chat.id

    # The echoes were taken and dropped: nothing new in the transcripts.
    assert kommunicate.echo_statuses == [200, 200, 200]
    assert giosg.echo_statuses == [200, 200, 200]
    for conversation in (en, de, xx):
        roles = [role for role, _ in await _transcript(bridge, conversation["id"])]
        assert roles == ["customer", "bot", "customer"], conversation["channel"]

    # An agent answers on each platform.
    km_reply = kommunicate.webhook_payload(group, "Hello from Kommunicate", sender=AGENT)
    status, body = await bridge.post(
        f"/webhooks/{KM_CHANNEL}", km_reply, headers={"Authentication": basic(TOKEN)}
    )
    assert status == 200, body
    giosg_reply = message_webhook(chat.id, "Hallo von giosg", "gm-de-1")
    status, body = await bridge.post(f"/webhooks/{GIOSG_CHANNEL}/{HOOK_SECRET}", giosg_reply)
    assert status == 200, body
    token = xx["join_url"].rsplit("/", 1)[1]
    status, joined = await bridge.post(f"/console/api/{token}/join", {"name": "Eva"})
    assert (status, joined["conversation"]["status"]) == (200, "active")
    status, sent = await bridge.post(
        f"/console/api/{token}/messages", {"text": "Hola desde la consola", "client_id": "a-1"}
    )
    assert status == 201, sent

    await bot.wait_for(lambda b: len(b.of_type("agent.message")) >= 3)
    assert len(bot.of_type("agent.message")) == 3
    received = {
        e.data["conversation_id"]: (
            e.data["channel"],
            e.data["bot_conversation_id"],
            e.data["message"]["text"],
        )
        for e in bot.of_type("agent.message")
    }
    assert received == {
        en["id"]: (KM_CHANNEL, "bot-en", "Hello from Kommunicate"),
        de["id"]: (GIOSG_CHANNEL, "bot-de", "Hallo von giosg"),
        xx["id"]: ("mysite", "bot-xx", "Hola desde la consola"),
    }
    assert bot.bad_signatures == 0 and bot.duplicates == 0
