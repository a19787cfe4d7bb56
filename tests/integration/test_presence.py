"""One presence path: a signed integration moves routing exactly as the agents API does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body
from tests.integration.test_integrations import INTEGRATION_SECRET, _post_signed

ORG = "acme"
TOKEN = {"Authorization": "Token org-token"}
# Step 1 takes effect only once every agent of step 0 is offline: a presence change.
ROUTER = {
    "name": "Primary, then secondary when primary is away",
    "steps": [
        {"preconditions": [], "organization_ids": [], "team_ids": ["primary"], "user_ids": []},
        {
            "preconditions": [{"type": "users_offline", "value": 100}],
            "organization_ids": [],
            "team_ids": ["secondary"],
            "user_ids": [],
        },
    ],
}

SetPresence = Callable[[str, str], Awaitable[None]]


@pytest.fixture
async def bridge(database: Database) -> AsyncIterator[RunningBridge]:
    """Agents of organization `acme`, a routers token, and a CRM's integration secret;
    channel `other` belongs to organization `globex`."""
    settings = make_settings(
        database,
        unused_port(),
        organization_id=ORG,
        channels={"other": {"platform": "console", "organization_id": "globex"}},
        agents=[
            {"id": "a1", "name": "Ann", "teams": ["primary"]},
            {"id": "a2", "name": "Abe", "teams": ["primary"]},
            {"id": "b1", "name": "Bea", "teams": ["secondary"]},
        ],
        teams=[{"id": "primary"}, {"id": "secondary"}],
        security={
            "integration_secrets": [INTEGRATION_SECRET],
            "org_tokens": {"org-token": {"organization_id": ORG}},
        },
    )
    running = await start_bridge(settings)
    try:
        yield running
    finally:
        await stop_bridge(running)


def _through(bridge: RunningBridge, path: str) -> SetPresence:
    """Set presence through one of the two public routes."""
    sent = iter(range(1, 1000))

    async def by_integration(agent_id: str, presence: str) -> None:
        body = {"channel": "crm", "agent_id": agent_id, "presence": presence}
        status, answer = await _post_signed(
            bridge, "/integrations/presence", body, INTEGRATION_SECRET, f"msg_{next(sent)}"
        )
        assert status == 200, answer

    async def by_agents_api(agent_id: str, presence: str) -> None:
        async with bridge.http.put(
            bridge.url(f"/v1/agents/{agent_id}/presence"), json={"presence": presence}
        ) as response:
            assert response.status == 200, await response.text()

    return by_integration if path == "integrations" else by_agents_api


async def _agents(bridge: RunningBridge) -> dict[str, dict[str, Any]]:
    status, listing = await bridge.get("/v1/agents")
    assert status == 200, listing
    return {agent["id"]: agent for agent in listing["items"]}


@pytest.mark.parametrize("path", ["integrations", "agents_api"])
async def test_presence_going_away_escalates_a_waiting_chat(
    bridge: RunningBridge, bot: FakeBot, path: str
) -> None:
    set_presence = _through(bridge, path)
    async with bridge.http.post(
        bridge.url(f"/api/v5/orgs/{ORG}/routers"), json=ROUTER, headers=TOKEN
    ) as r:
        router = await r.json()
        assert r.status == 201, router
    async with bridge.http.patch(
        bridge.url(f"/api/v5/orgs/{ORG}/rooms/mysite-es"),
        json={"router_id": router["id"]},
        headers=TOKEN,
    ) as r:
        assert r.status == 200, await r.text()
    for agent in ("a1", "a2"):
        await set_presence(agent, "online")

    status, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url, region="es"))
    assert status == 201, conversation
    assert conversation["routing"]["offered_to"] == ["a1", "a2"]
    assert conversation["routing"]["steps_in_effect"] == 1

    # The primary team leaves; nothing else happens, yet the chat reaches the secondary team.
    for agent in ("a1", "a2"):
        await set_presence(agent, "offline")
    state = await bridge.get_until(
        f"/v1/conversations/{conversation['id']}",
        lambda s: s["routing"]["steps_in_effect"] == 2,
    )
    assert state["routing"]["offered_to"] == ["a1", "a2", "b1"]


async def test_a_redelivered_presence_call_changes_nothing(bridge: RunningBridge) -> None:
    body = {"channel": "crm", "agent_id": "a1", "presence": "online"}
    status, _ = await _post_signed(
        bridge, "/integrations/presence", body, INTEGRATION_SECRET, "msg_once"
    )
    assert status == 200
    await _through(bridge, "agents_api")("a1", "offline")
    # The CRM's retry of its first call: acknowledged, and the later change stands.
    status, _ = await _post_signed(
        bridge, "/integrations/presence", body, INTEGRATION_SECRET, "msg_once"
    )
    assert status == 200
    assert (await _agents(bridge))["a1"]["presence"] == "offline"


async def test_an_unknown_agent_joins_the_reporting_organization(bridge: RunningBridge) -> None:
    body = {"channel": "crm", "agent_id": "zoe", "name": "Zoe", "presence": "online"}
    status, _ = await _post_signed(
        bridge, "/integrations/presence", body, INTEGRATION_SECRET, "msg_zoe"
    )
    assert status == 200
    zoe = (await _agents(bridge))["zoe"]
    assert (zoe["organization_id"], zoe["name"], zoe["presence"]) == (ORG, "Zoe", "online")
    # Reported on a channel of another organization: that organization's agent.
    body = {"channel": "other", "agent_id": "gus", "presence": "online"}
    status, _ = await _post_signed(
        bridge, "/integrations/presence", body, INTEGRATION_SECRET, "msg_gus"
    )
    assert status == 200
    assert (await _agents(bridge))["gus"]["organization_id"] == "globex"
