"""README "Try it", step by step, on the shipped config with its demo agent: a handoff
without timestamps is offered to the demo agent, who takes it in the desk and replies, and
the listener prints the signed events. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer, unused_port

from bridge.listen import listener_app
from bridge.settings import Settings
from tests.conftest import (
    ROOT,
    Database,
    RunningBridge,
    make_settings,
    start_bridge,
    stop_bridge,
)
from tests.fakes import WEBHOOK_SECRET
from tests.kit.eventually import eventually

REPLY = "Hi John, I am on it."


def readme_handoff() -> dict[str, Any]:
    """The body of the handoff `curl` in the README's "Try it"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Try it", 1)[1].split("\n## ", 1)[0]
    command = section.split("curl -s -X POST http://127.0.0.1:8080/v1/handoffs", 1)[1]
    body: dict[str, Any] = json.loads(command.split("-d '", 1)[1].split("'", 1)[0])
    return body


@pytest.fixture
def bridge_settings(database: Database) -> Settings:
    """The shipped config as it is, demo agent included."""
    return make_settings(database, unused_port(), demo=True)


@pytest.fixture
async def printed() -> AsyncIterator[tuple[str, list[str]]]:
    """The listener on a real port: its callback URL and the lines it printed."""
    lines: list[str] = []
    server = TestServer(listener_app(WEBHOOK_SECRET, lines.append), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("/callback")), lines
    finally:
        await server.close()


async def test_demo_agent_takes_a_chat_in_the_desk_and_the_bot_hears_it(
    bridge: RunningBridge, printed: tuple[str, list[str]]
) -> None:
    callback_url, lines = printed
    # The README's handoff as written there: no region, no sent_at.
    body = readme_handoff()
    assert body["callback_url"] == "http://127.0.0.1:9000/callback"
    assert "region" not in body and all("sent_at" not in m for m in body["history"])
    status, conversation = await bridge.post("/v1/handoffs", {**body, "callback_url": callback_url})
    assert status == 201, conversation
    assert conversation["channel"] == "mysite"
    assert conversation["routing"]["team_id"] == "demo"
    assert conversation["routing"]["offered_to"] == ["demo"]
    cid = conversation["id"]

    # The desk link, as the index page says to get it.
    status, link = await bridge.get("/v1/agents/demo/desk_link")
    assert status == 200, link
    token = link["url"].rsplit("/", 1)[1]
    status, page = await bridge.get(f"/console/desk/{token}")
    assert status == 200 and "desk.js" in page
    status, _ = await bridge.post(f"/console/desk-api/{token}/sign-in")
    assert status == 200
    status, state = await bridge.get(f"/console/desk-api/{token}/state")
    assert status == 200, state
    assert [offer["id"] for offer in state["offers"]] == [cid]
    status, _ = await bridge.post(f"/console/desk-api/{token}/presence", {"presence": "online"})
    assert status == 200
    status, taken = await bridge.post(f"/console/desk-api/{token}/take/{cid}")
    assert status == 200, taken
    join_token = taken["join_url"].rsplit("/", 1)[1]
    status, sent = await bridge.post(f"/console/api/{join_token}/messages", {"text": REPLY})
    assert status in (200, 201), sent

    def reply_printed() -> list[str]:
        return [line for line in lines if line.startswith("event     agent.message")]

    (line,) = await eventually(reply_printed, what="the reply printed by the listener")
    assert f"conversation={cid}" in line and f"text={REPLY!r}" in line, line
    assert "author='Demo Agent'" in line, line
    events = [line.split()[1] for line in lines if line.startswith("event")]
    # The chat waited for an agent (the demo agent was not yet online), then was taken.
    assert "handoff.waiting" in events and "agent.joined" in events, lines
    assert events.index("agent.joined") < events.index("agent.message"), lines
    assert [line for line in lines if not line.startswith("event")] == []


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_region_chats_are_not_offered_to_the_demo_agent(database: Database) -> None:
    """Only the main channel's chats go to the demo team; region channels keep no team."""
    running = await start_bridge(make_settings(database, unused_port(), demo=True))
    try:
        status, conversation = await running.post(
            "/v1/handoffs",
            {
                "bot": {"platform": "webhook", "conversation_id": "b-es"},
                "customer": {"id": "c-es"},
                "region": "es",
                "callback_url": "http://127.0.0.1:9/callback",
            },
        )
        assert status == 201, conversation
        assert conversation["channel"] == "mysite-es"
        assert conversation["routing"]["offered_to"] == []
    finally:
        await stop_bridge(running)
