"""Routers through the giosg-style API, escalation without anyone touching the chat,
the first take winning, capacity under concurrency, and timers across a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from bridge.settings import Settings
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body

ORG = "acme"
TOKEN = {"Authorization": "Token org-token"}
ROUTERS = f"/api/v5/orgs/{ORG}/routers"

AGENTS = [
    {"id": "a1", "name": "Ann", "teams": ["primary"], "capacity": 3},
    {"id": "a2", "name": "Abe", "teams": ["primary"], "capacity": 3},
    {"id": "b1", "name": "Bea", "teams": ["secondary"], "capacity": 1},
    {"id": "c1", "name": "Cal", "capacity": 3},
]


def routing_settings(database: Database, **overrides: Any) -> Settings:
    """The default channels plus agents, teams and org tokens for the routers API."""
    base: dict[str, Any] = {
        "organization_id": ORG,
        "agents": AGENTS,
        "teams": [{"id": "primary"}, {"id": "secondary"}],
        "security": {
            "org_tokens": {
                "org-token": {"organization_id": ORG, "user_id": "admin-1"},
                "other-org": {"organization_id": "elsewhere"},
                "no-settings": {"organization_id": ORG, "permissions": []},
            }
        },
    }
    base.update(overrides)
    return make_settings(database, unused_port(), **base)


@pytest.fixture
async def bridge(database: Database) -> AsyncIterator[RunningBridge]:
    """The bridge with agents, teams and router tokens."""
    running = await start_bridge(routing_settings(database))
    try:
        yield running
    finally:
        await stop_bridge(running)


def seed_step(*preconditions: dict[str, Any], **who: list[str]) -> dict[str, Any]:
    """A step with every attribute the seed requires (empty arrays where none is given)."""
    return {
        "preconditions": list(preconditions),
        "organization_ids": who.get("organization_ids", []),
        "team_ids": who.get("team_ids", []),
        "user_ids": who.get("user_ids", []),
    }


ESCALATING_ROUTER = {
    "name": "Support with overflow",
    "steps": [
        seed_step(team_ids=["primary"]),
        seed_step({"type": "users_offline", "value": 100}, team_ids=["secondary"]),
        seed_step({"type": "task_waited", "value": 1}, user_ids=["c1"]),
    ],
}


async def _call(
    bridge: RunningBridge,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with bridge.http.request(
        method, bridge.url(path), json=body, headers=headers if headers is not None else TOKEN
    ) as r:
        data = await r.json() if r.content_type == "application/json" else None
        return r.status, data


async def test_routers_api_codes_and_pagination(bridge: RunningBridge) -> None:
    assert (await _call(bridge, "GET", ROUTERS, headers={}))[0] == 401
    assert (await _call(bridge, "GET", ROUTERS, headers={"Authorization": "Token nope"}))[0] == 401
    assert (await _call(bridge, "GET", ROUTERS, headers={"Authorization": "Token other-org"}))[
        0
    ] == 403
    assert (await _call(bridge, "GET", ROUTERS, headers={"Authorization": "Token no-settings"}))[
        0
    ] == 403

    status, error = await _call(bridge, "POST", ROUTERS, {"steps": [seed_step()]})
    assert status == 400 and error["error"]["fields"][0]["field"] == "name"
    status, error = await _call(
        bridge,
        "POST",
        ROUTERS,
        {"name": "bad", "steps": [seed_step({"type": "task_waited", "value": 5})]},
    )
    assert status == 400 and any(
        f["field"].startswith("steps[0]") for f in error["error"]["fields"]
    )
    status, error = await _call(
        bridge,
        "POST",
        ROUTERS,
        {"name": "bad", "steps": [seed_step(team_ids=["primary"]), seed_step()]},
    )
    assert status == 400 and any(
        f["field"] == "steps[1].preconditions" for f in error["error"]["fields"]
    )

    created = []
    for i in range(3):
        status, router = await _call(
            bridge, "POST", ROUTERS, {**ESCALATING_ROUTER, "name": f"router {i}"}
        )
        assert status == 201, router
        assert router["organization_id"] == ORG
        assert router["created_by_user_id"] == "admin-1"
        assert router["created_by_user"] == {"id": "admin-1"}
        assert [s["index"] for s in router["steps"]] == [0, 1, 2]
        created.append(router)

    status, page = await _call(bridge, "GET", ROUTERS + "?page_size=2")
    assert status == 200 and page["count"] == 3 and page["previous"] is None
    assert [r["name"] for r in page["results"]] == ["router 0", "router 1"]
    assert page["next"] is not None
    status, page = await _call(bridge, "GET", ROUTERS + "?ordering=-created_at&page_size=2")
    assert [r["name"] for r in page["results"]] == ["router 2", "router 1"]
    assert (await _call(bridge, "GET", ROUTERS + "?ordering=name"))[0] == 400

    rid = created[0]["id"]
    status, router = await _call(bridge, "PATCH", f"{ROUTERS}/{rid}", {"name": "renamed"})
    assert (status, router["name"], len(router["steps"])) == (200, "renamed", 3)
    status, _ = await _call(bridge, "PUT", f"{ROUTERS}/{rid}", {"name": "only name"})
    assert status == 400
    # A GET body PUT back as it is (read-only fields included) is accepted.
    _, current = await _call(bridge, "GET", f"{ROUTERS}/{rid}")
    status, router = await _call(bridge, "PUT", f"{ROUTERS}/{rid}", current)
    assert status == 200, router

    status, room = await _call(
        bridge, "PATCH", f"/api/v5/orgs/{ORG}/rooms/mysite-es", {"router_id": rid}
    )
    assert (status, room["router_id"]) == (200, rid)
    status, rooms = await _call(bridge, "GET", f"{ROUTERS}/{rid}/rooms")
    assert [r["id"] for r in rooms["results"]] == ["mysite-es"]

    assert (await _call(bridge, "DELETE", f"{ROUTERS}/{rid}"))[0] == 204
    assert (await _call(bridge, "GET", f"{ROUTERS}/{rid}"))[0] == 404
    assert (await _call(bridge, "DELETE", f"{ROUTERS}/{rid}"))[0] == 404


async def test_offline_team_escalates_without_anyone_touching_it(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    _, router = await _call(bridge, "POST", ROUTERS, ESCALATING_ROUTER)
    await _call(bridge, "PATCH", f"/api/v5/orgs/{ORG}/rooms/mysite-es", {"router_id": router["id"]})
    # The primary team is not signed in; the secondary agent is online.
    status, _ = await _call(bridge, "PUT", "/v1/agents/b1/presence", {"presence": "online"})
    assert status == 200
    status, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url, region="es"))
    assert status == 201, conversation
    routing = conversation["routing"]
    assert routing["router_id"] == router["id"]
    # Step 0 (primary) at once; step 1 at once too, because every primary agent is away.
    assert routing["offered_to"] == ["a1", "a2", "b1"]
    assert routing["steps_in_effect"] == 2
    assert any("step 1" in line for line in conversation["route"]["trace"]), conversation["route"]

    # Nobody takes it: after 1 s the third step adds c1, with no request from anyone.
    state = await bridge.get_until(
        f"/v1/conversations/{conversation['id']}", lambda s: "c1" in s["routing"]["offered_to"]
    )
    assert state["routing"]["steps_in_effect"] == 3
    assert any("step 2" in line for line in state["route"]["trace"]), state["route"]["trace"]

    # The first agent to take it wins; anyone else is told it is taken.
    status, taken = await bridge.post(
        f"/v1/conversations/{conversation['id']}/assign", {"agent_id": "b1"}
    )
    assert (status, taken["status"], taken["routing"]["assignee_id"]) == (200, "active", "b1")
    status, error = await bridge.post(
        f"/v1/conversations/{conversation['id']}/assign", {"agent_id": "a1"}
    )
    assert status == 409 and "already taken" in error["error"]["message"]
    await bot.wait_for(lambda b: len(b.of_type("agent.joined")) == 1)
    assert bot.of_type("agent.joined")[0].data["agent"]["name"] == "Bea"


async def test_capacity_holds_under_concurrent_takes(bridge: RunningBridge, bot: FakeBot) -> None:
    await bridge.http.put(
        bridge.url("/v1/agents/c1"), json={"name": "Cal", "capacity": 2, "teams": ["primary"]}
    )
    await _call(bridge, "PATCH", f"/api/v5/orgs/{ORG}/rooms/mysite-de", {"router_id": None})
    ids = []
    for i in range(6):
        status, conversation = await bridge.post(
            "/v1/handoffs",
            handoff_body(
                bot.url,
                region="de",
                conversation_id=f"cap-{i}",
                customer_id=f"cap-{i}",
                settings={"teamId": "primary"},
            ),
        )
        assert status == 201, conversation
        assert "c1" in conversation["routing"]["offered_to"]
        ids.append(conversation["id"])
    results = await asyncio.gather(
        *(bridge.post(f"/v1/conversations/{cid}/assign", {"agent_id": "c1"}) for cid in ids)
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 200, 409, 409, 409, 409], results
    _, agents = await bridge.get("/v1/agents")
    cal = next(a for a in agents["items"] if a["id"] == "c1")
    assert cal["active_chats"] == 2
    # Closing one frees a slot.
    winner = next(body["id"] for status, body in results if status == 200)
    await bridge.post(f"/v1/conversations/{winner}/close", {})
    _, agents = await bridge.get("/v1/agents")
    assert next(a for a in agents["items"] if a["id"] == "c1")["active_chats"] == 1


async def test_escalation_timer_survives_a_restart(database: Database, bot: FakeBot) -> None:
    first = await start_bridge(routing_settings(database))
    try:
        _, router = await _call(
            first,
            "POST",
            ROUTERS,
            {
                "name": "slow overflow",
                "steps": [
                    seed_step(team_ids=["primary"]),
                    seed_step({"type": "task_waited", "value": 2}, user_ids=["c1"]),
                ],
            },
        )
        await _call(
            first, "PATCH", f"/api/v5/orgs/{ORG}/rooms/mysite-en", {"router_id": router["id"]}
        )
        status, conversation = await first.post(
            "/v1/handoffs", handoff_body(bot.url, region="en", customer_id="timer")
        )
        assert status == 201
        assert conversation["routing"]["offered_to"] == ["a1", "a2"]
    finally:
        await stop_bridge(first)
    # The timer is in the store: a new instance fires it once, on time.
    second = await start_bridge(routing_settings(database))
    try:
        state = await second.get_until(
            f"/v1/conversations/{conversation['id']}", lambda s: "c1" in s["routing"]["offered_to"]
        )
        assert state["routing"]["steps_in_effect"] == 2
        _, timers = await second.get(f"/v1/outbox?conversation_id={conversation['id']}")
        fired = [i for i in timers["items"] if i["kind"] == "routing.evaluate"]
        assert fired and all(i["status"] == "delivered" for i in fired)
    finally:
        await stop_bridge(second)


async def test_explain_is_a_dry_run(bridge: RunningBridge, bot: FakeBot) -> None:
    status, decision = await bridge.post(
        "/v1/routing/explain",
        handoff_body(bot.url, region="xx", settings={"skipRouting": True, "defaultAssignee": "a1"}),
    )
    assert status == 200
    assert (decision["channel"], decision["assignee"]) == ("mysite", "a1")
    assert decision["trace"][0] == "region 'xx' unknown → main channel 'mysite'"
    assert any("assignee 'a1'" in line for line in decision["trace"])
    status, error = await bridge.post(
        "/v1/routing/explain", handoff_body(bot.url, settings={"skipRouting": "maybe"})
    )
    assert status == 422 and error["error"]["fields"][0]["field"].startswith("settings")
    _, listing = await bridge.get("/v1/outbox")
    assert listing["items"] == []
