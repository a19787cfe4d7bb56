"""Organizations kept apart: every cross-organization attempt is refused and changes nothing.

Three organizations share one bridge: acme (the configured one, owning the default channels),
globex (owning the `globex-site` channel and its region `globex-fi`) and partner (acme's
partner organization). Each attempt below is made with acme's token against globex's rooms,
people or subscriptions, then everything is read back with the owner's or the admin's token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from bridge.settings import Settings
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body

BOT = {"Authorization": "Bearer bot-token-1"}
ADMIN = {"Authorization": "Bearer admin-token-2"}
ACME = {"Authorization": "Token acme-token-3"}
GLOBEX = {"Authorization": "Token globex-token-4"}


def tenant_settings(database: Database, globex_site_owner: str | None = "globex") -> Settings:
    """acme owns the default channels, globex owns globex-site; partner is acme's partner."""
    return make_settings(
        database,
        unused_port(),
        organization_id="acme",
        partner_organizations={"acme": ["partner"]},
        channels={
            "globex-site": {
                "platform": "console",
                "organization_id": globex_site_owner,
                "regions": {"fi": "globex-fi"},
            },
            "globex-fi": {"platform": "console"},
        },
        teams=[{"id": "acme-team"}],
        agents=[{"id": "a1", "name": "Ann", "teams": ["acme-team"]}],
        security={
            "api_token": "bot-token-1",
            "admin_token": "admin-token-2",
            "org_tokens": {
                "acme-token-3": {"organization_id": "acme", "user_id": "acme-admin"},
                "globex-token-4": {"organization_id": "globex", "user_id": "globex-admin"},
            },
        },
    )


async def call(
    bridge: RunningBridge, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    """One request; the JSON answer (or None)."""
    async with bridge.http.request(
        method, bridge.url(path), json=body, headers=headers
    ) as response:
        data = await response.json() if response.content_type == "application/json" else None
        return response.status, data


async def ok(
    bridge: RunningBridge, method: str, path: str, headers: dict[str, str], body: Any = None
) -> Any:
    """A request that must succeed; its answer."""
    status, data = await call(bridge, method, path, headers, body)
    assert 200 <= status < 300, (method, path, status, data)
    return data


def step(**who: list[str]) -> dict[str, Any]:
    """A first step in the seed's shape."""
    return {
        "preconditions": [],
        "organization_ids": who.get("organization_ids", []),
        "team_ids": who.get("team_ids", []),
        "user_ids": who.get("user_ids", []),
    }


async def add_people(bridge: RunningBridge) -> None:
    """globex's and partner's teams and agents, made by the admin."""
    for team, organization in [("globex-team", "globex"), ("partner-team", "partner")]:
        await ok(
            bridge,
            "PUT",
            f"/v1/teams/{team}",
            ADMIN,
            {"name": team, "organization_id": organization},
        )
    for agent, organization, team in [
        ("g1", "globex", "globex-team"),
        ("p1", "partner", "partner-team"),
    ]:
        await ok(
            bridge,
            "PUT",
            f"/v1/agents/{agent}",
            ADMIN,
            {"name": agent.upper(), "organization_id": organization, "teams": [team]},
        )


@pytest.fixture
async def bridge(database: Database) -> AsyncIterator[RunningBridge]:
    """The bridge with three organizations' people in it."""
    running = await start_bridge(tenant_settings(database))
    try:
        await add_people(running)
        yield running
    finally:
        await stop_bridge(running)


async def directory(bridge: RunningBridge) -> tuple[Any, Any]:
    """Every agent and team as the admin sees them."""
    agents = await ok(bridge, "GET", "/v1/agents", ADMIN)
    teams = await ok(bridge, "GET", "/v1/teams", ADMIN)
    return agents, teams


# -- rooms ---------------------------------------------------------------------------------


async def test_another_organizations_room_cannot_be_unlinked_or_taken(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    theirs = await ok(
        bridge,
        "POST",
        "/api/v5/orgs/globex/routers",
        GLOBEX,
        {"name": "G", "steps": [step(user_ids=["g1"])]},
    )
    await ok(
        bridge,
        "PATCH",
        "/api/v5/orgs/globex/rooms/globex-site",
        GLOBEX,
        {"router_id": theirs["id"]},
    )
    ours = await ok(
        bridge,
        "POST",
        "/api/v5/orgs/acme/routers",
        ACME,
        {"name": "A", "steps": [step(user_ids=["a1"])]},
    )
    _, unknown = await call(
        bridge, "PATCH", "/api/v5/orgs/acme/rooms/no-such-room", ACME, {"router_id": None}
    )

    # A main room and the region room that inherits its owner; unlinking and taking over.
    for room in ("globex-site", "globex-fi"):
        for body in ({"router_id": None}, {"router_id": ours["id"]}):
            status, answer = await call(
                bridge, "PATCH", f"/api/v5/orgs/acme/rooms/{room}", ACME, body
            )
            # The unknown room's answer: acme cannot even tell globex's rooms exist.
            assert status == 404, answer
            assert answer["error"]["code"] == unknown["error"]["code"]
            assert answer["error"]["fields"] == unknown["error"]["fields"]

    # Nothing changed: globex's router still serves its room, acme's serves none of globex's,
    # and the next chat there is offered to globex's agent, not acme's.
    rooms = await ok(bridge, "GET", f"/api/v5/orgs/globex/routers/{theirs['id']}/rooms", GLOBEX)
    assert [r["id"] for r in rooms["results"]] == ["globex-site"]
    rooms = await ok(bridge, "GET", f"/api/v5/orgs/acme/routers/{ours['id']}/rooms", ACME)
    assert rooms["results"] == []
    conversation = await ok(
        bridge,
        "POST",
        "/v1/handoffs",
        BOT,
        handoff_body(bot.url, region=None, channel="globex-site"),
    )
    assert conversation["routing"]["router_id"] == theirs["id"]
    assert conversation["routing"]["offered_to"] == ["g1"]


async def test_a_link_made_before_a_room_changed_hands_is_ignored(
    database: Database, bot: FakeBot
) -> None:
    # At first globex-site has no owner of its own, so it is acme's, and acme links it.
    before = await start_bridge(tenant_settings(database, globex_site_owner=None))
    try:
        await add_people(before)
        ours = await ok(
            before,
            "POST",
            "/api/v5/orgs/acme/routers",
            ACME,
            {"name": "A", "steps": [step(user_ids=["a1"])]},
        )
        await ok(
            before, "PATCH", "/api/v5/orgs/acme/rooms/globex-site", ACME, {"router_id": ours["id"]}
        )
    finally:
        await stop_bridge(before)
    # Then the configuration gives the room to globex: acme's stored link no longer counts.
    after = await start_bridge(tenant_settings(database))
    try:
        rooms = await ok(after, "GET", f"/api/v5/orgs/acme/routers/{ours['id']}/rooms", ACME)
        assert rooms["results"] == []
        status, _ = await call(
            after, "PATCH", "/api/v5/orgs/acme/rooms/globex-site", ACME, {"router_id": None}
        )
        assert status == 404
        conversation = await ok(
            after,
            "POST",
            "/v1/handoffs",
            BOT,
            handoff_body(bot.url, region=None, channel="globex-site"),
        )
        assert conversation["routing"]["router_id"] is None
        assert "a1" not in conversation["routing"]["offered_to"]
    finally:
        await stop_bridge(after)


# -- router steps --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "field"),
    [
        ({"user_ids": ["a1", "g1"]}, "steps[0].user_ids[1]"),
        ({"user_ids": ["a1", "nobody"]}, "steps[0].user_ids[1]"),
        ({"team_ids": ["acme-team", "globex-team"]}, "steps[0].team_ids[1]"),
        ({"organization_ids": ["acme", "globex"]}, "steps[0].organization_ids[1]"),
        # A partner organization is named as a whole, never through its users or teams.
        ({"user_ids": ["a1", "p1"]}, "steps[0].user_ids[1]"),
        ({"team_ids": ["acme-team", "partner-team"]}, "steps[0].team_ids[1]"),
    ],
)
async def test_steps_name_only_the_organizations_and_its_partners_people(
    bridge: RunningBridge, who: dict[str, list[str]], field: str
) -> None:
    routers = "/api/v5/orgs/acme/routers"
    status, answer = await call(
        bridge, "POST", routers, ACME, {"name": "x", "steps": [step(**who)]}
    )
    assert status == 400, answer
    assert [f["field"] for f in answer["error"]["fields"]] == [field]
    assert (await ok(bridge, "GET", routers, ACME))["count"] == 0

    # Neither may an existing router be changed to name them, by PUT or PATCH.
    partner = step(user_ids=["a1"], team_ids=["acme-team"], organization_ids=["acme", "partner"])
    router = await ok(bridge, "POST", routers, ACME, {"name": "ok", "steps": [partner]})
    for method in ("PUT", "PATCH"):
        status, answer = await call(
            bridge,
            method,
            f"{routers}/{router['id']}",
            ACME,
            {"name": "changed", "steps": [step(**who)]},
        )
        assert status == 400 and [f["field"] for f in answer["error"]["fields"]] == [field]
    assert await ok(bridge, "GET", f"{routers}/{router['id']}", ACME) == router


async def test_an_unknown_and_a_foreign_user_get_the_same_answer(bridge: RunningBridge) -> None:
    answers = []
    for user in ("g1", "nobody"):
        _, answer = await call(
            bridge,
            "POST",
            "/api/v5/orgs/acme/routers",
            ACME,
            {"name": "x", "steps": [step(user_ids=[user])]},
        )
        answers.append(answer)
    assert answers[0] == answers[1]


# -- agents and teams ----------------------------------------------------------------------


async def test_lists_show_each_organization_its_own(bridge: RunningBridge) -> None:
    def ids(listing: Any) -> list[str]:
        return sorted(item["id"] for item in listing["items"])

    assert ids(await ok(bridge, "GET", "/v1/agents", ACME)) == ["a1"]
    assert ids(await ok(bridge, "GET", "/v1/agents", GLOBEX)) == ["g1"]
    assert ids(await ok(bridge, "GET", "/v1/teams", ACME)) == ["acme-team"]
    assert ids(await ok(bridge, "GET", "/v1/teams", GLOBEX)) == ["globex-team"]
    # The admin sees everyone, and may narrow the list to one organization.
    assert ids(await ok(bridge, "GET", "/v1/agents", ADMIN)) == ["a1", "g1", "p1"]
    assert ids(await ok(bridge, "GET", "/v1/agents?organization_id=globex", ADMIN)) == ["g1"]
    assert ids(await ok(bridge, "GET", "/v1/teams?organization_id=partner", ADMIN)) == [
        "partner-team"
    ]
    assert ids(await ok(bridge, "GET", "/v1/agents?organization_id=acme", ACME)) == ["a1"]
    for path in ("/v1/agents", "/v1/teams", "/v1/subscriptions"):
        status, answer = await call(bridge, "GET", f"{path}?organization_id=globex", ACME)
        assert status == 403 and answer["error"]["fields"][0]["field"] == "organization_id"


@pytest.mark.parametrize(
    ("method", "path", "body", "expected", "field"),
    [
        ("GET", "/v1/agents/g1", None, 404, "agent_id"),
        ("PUT", "/v1/agents/g1", {"name": "Hijacked"}, 404, "agent_id"),
        ("PUT", "/v1/agents/g1", {"name": "Hijacked", "organization_id": "acme"}, 404, "agent_id"),
        ("PUT", "/v1/agents/g1/presence", {"presence": "online"}, 404, "agent_id"),
        ("GET", "/v1/agents/g1/desk_link", None, 404, "agent_id"),
        (
            "PUT",
            "/v1/agents/new",
            {"name": "New", "organization_id": "globex"},
            403,
            "organization_id",
        ),
        ("PUT", "/v1/agents/a1", {"name": "Ann", "teams": ["globex-team"]}, 422, "teams[0]"),
        ("PUT", "/v1/agents/a1", {"name": "Ann", "teams": ["acme-team", "nope"]}, 422, "teams[1]"),
        ("PUT", "/v1/teams/globex-team", {"name": "Mine now"}, 404, "team_id"),
        (
            "PUT",
            "/v1/teams/new",
            {"name": "New", "organization_id": "globex"},
            403,
            "organization_id",
        ),
    ],
)
async def test_another_organizations_agents_and_teams_are_out_of_reach(
    bridge: RunningBridge,
    method: str,
    path: str,
    body: Any,
    expected: int,
    field: str,
) -> None:
    before = await directory(bridge)
    status, answer = await call(bridge, method, path, ACME, body)
    assert status == expected, answer
    assert [f["field"] for f in answer["error"]["fields"]] == [field]
    assert "url" not in answer
    assert await directory(bridge) == before


async def test_the_admin_cannot_mix_organizations_in_a_team_either(bridge: RunningBridge) -> None:
    before = await directory(bridge)
    # g1 into acme's team; globex's team moved to acme while g1 is in it; g1 moved to acme
    # while it is still in globex's team.
    attempts = [
        ("/v1/agents/g1", {"name": "G1", "organization_id": "globex", "teams": ["acme-team"]}),
        ("/v1/teams/globex-team", {"name": "globex-team", "organization_id": "acme"}),
        ("/v1/agents/g1", {"name": "G1", "organization_id": "acme"}),
    ]
    for path, body in attempts:
        status, answer = await call(bridge, "PUT", path, ADMIN, body)
        assert status == 422, (path, answer)
    assert await directory(bridge) == before


async def test_a_replace_that_names_no_organization_keeps_the_owner(
    bridge: RunningBridge,
) -> None:
    agent = await ok(bridge, "PUT", "/v1/agents/g1", ADMIN, {"name": "Gus"})
    assert (agent["organization_id"], agent["teams"]) == ("globex", ["globex-team"])
    team = await ok(bridge, "PUT", "/v1/teams/globex-team", ADMIN, {"name": "Globex"})
    assert team["organization_id"] == "globex"
    assert [a["id"] for a in (await ok(bridge, "GET", "/v1/agents", GLOBEX))["items"]] == ["g1"]


# -- subscriptions -------------------------------------------------------------------------


async def test_subscribers_hear_only_of_their_organizations_conversations(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    receivers = {name: FakeBot() for name in ("acme", "globex", "admin")}
    for receiver in receivers.values():
        await receiver.start()
    try:
        subscriptions = {}
        for name, headers in [("acme", ACME), ("globex", GLOBEX), ("admin", ADMIN)]:
            created = await ok(
                bridge,
                "POST",
                "/v1/subscriptions",
                headers,
                {"url": receivers[name].url, "events": ["handoff.routed"]},
            )
            receivers[name].secret = created["secret"]
            subscriptions[name] = created
        assert subscriptions["acme"]["organization_id"] == "acme"
        assert subscriptions["admin"]["organization_id"] is None

        ours = await ok(bridge, "POST", "/v1/handoffs", BOT, handoff_body(bot.url))
        theirs = await ok(
            bridge,
            "POST",
            "/v1/handoffs",
            BOT,
            handoff_body(
                bot.url, region="fi", channel="globex-site", conversation_id="c2", customer_id="u2"
            ),
        )
        # The deliveries are written with the handoff: acme's subscriber is queued acme's
        # conversation only, globex's globex's only, the admin's both.
        for conversation, expected in [(ours, {"acme", "admin"}), (theirs, {"globex", "admin"})]:
            outbox = await ok(
                bridge, "GET", f"/v1/outbox?conversation_id={conversation['id']}", ADMIN
            )
            targets = {i["target"] for i in outbox["items"] if i["kind"] == "subscription.event"}
            assert targets == {subscriptions[name]["id"] for name in expected}
        await receivers["admin"].wait_for(lambda r: len(r.events) == 2)
        await receivers["acme"].wait_for(lambda r: len(r.events) == 1)
        await receivers["globex"].wait_for(lambda r: len(r.events) == 1)
        assert receivers["acme"].events[0].data["conversation_id"] == ours["id"]
        assert receivers["globex"].events[0].data["conversation_id"] == theirs["id"]
    finally:
        for receiver in receivers.values():
            await receiver.close()


async def test_another_organizations_subscriptions_are_out_of_reach(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    theirs = await ok(bridge, "POST", "/v1/subscriptions", GLOBEX, {"url": bot.url})
    before = await ok(bridge, "GET", "/v1/subscriptions", ADMIN)

    listed = await ok(bridge, "GET", "/v1/subscriptions", ACME)
    assert listed["items"] == []
    status, answer = await call(bridge, "DELETE", f"/v1/subscriptions/{theirs['id']}", ACME)
    assert status == 404 and answer["error"]["fields"][0]["field"] == "subscription_id"
    status, answer = await call(
        bridge, "POST", "/v1/subscriptions", ACME, {"url": bot.url, "organization_id": "globex"}
    )
    assert status == 403 and answer["error"]["fields"][0]["field"] == "organization_id"

    assert await ok(bridge, "GET", "/v1/subscriptions", ADMIN) == before
    assert [s["id"] for s in (await ok(bridge, "GET", "/v1/subscriptions", GLOBEX))["items"]] == [
        theirs["id"]
    ]
