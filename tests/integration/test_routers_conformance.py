"""giosg's Routers API (seed 004), rule by rule: attributes, types, required and read-only
fields, and scoping of routers, routing steps and routing preconditions.

Status codes, pagination and ordering are in test_routing_flow; who a step may name (users,
teams and organizations of the caller's organization and its partners) is in test_tenants.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge

ROUTERS = "/api/v5/orgs/acme/routers"
ADMIN = {"Authorization": "Token acme-admin"}
EDITOR = {"Authorization": "Token acme-editor"}
GLOBEX = {"Authorization": "Token globex"}


@pytest.fixture
async def bridge(database: Database) -> AsyncIterator[RunningBridge]:
    """acme with two teams and three agents; two acme users and one of globex hold tokens."""
    settings = make_settings(
        database,
        unused_port(),
        organization_id="acme",
        teams=[{"id": "primary"}, {"id": "secondary"}],
        agents=[
            {"id": "a1", "teams": ["primary"]},
            {"id": "b1", "teams": ["secondary"]},
            {"id": "c1"},
        ],
        security={
            "org_tokens": {
                "acme-admin": {"organization_id": "acme", "user_id": "u-1"},
                "acme-editor": {"organization_id": "acme", "user_id": "u-2"},
                "globex": {"organization_id": "globex", "user_id": "u-9"},
            }
        },
    )
    running = await start_bridge(settings)
    try:
        yield running
    finally:
        await stop_bridge(running)


async def call(
    bridge: RunningBridge, method: str, path: str, body: Any = None, headers: Any = None
) -> tuple[int, Any]:
    """One routers API request as acme's admin unless told otherwise."""
    async with bridge.http.request(
        method, bridge.url(path), json=body, headers=headers or ADMIN
    ) as response:
        data = await response.json() if response.content_type == "application/json" else None
        return response.status, data


async def create(bridge: RunningBridge, body: dict[str, Any], headers: Any = None) -> Any:
    """A router that must be created."""
    status, router = await call(bridge, "POST", ROUTERS, body, headers)
    assert status == 201, router
    return router


def step(*preconditions: dict[str, Any], **who: Any) -> dict[str, Any]:
    """A step with every attribute the seed requires."""
    return {
        "preconditions": list(preconditions),
        "organization_ids": who.pop("organization_ids", []),
        "team_ids": who.pop("team_ids", []),
        "user_ids": who.pop("user_ids", []),
        **who,
    }


OFFLINE = {"type": "users_offline", "value": 100}
ROUTER = {"name": "Support", "steps": [step(team_ids=["primary"]), step(OFFLINE, user_ids=["c1"])]}


def fields(answer: Any) -> list[str]:
    """The fields a 4xx answer names."""
    return [f["field"] for f in answer["error"]["fields"]]


async def count(bridge: RunningBridge) -> int:
    """How many routers acme has."""
    return int((await call(bridge, "GET", ROUTERS))[1]["count"])


# -- router attributes ---------------------------------------------------------------------


async def test_router_id_is_a_uuid_the_server_chooses(bridge: RunningBridge) -> None:
    router = await create(bridge, {**ROUTER, "id": "chosen-by-client"})
    assert str(uuid.UUID(router["id"])) == router["id"]
    status, replaced = await call(bridge, "PUT", f"{ROUTERS}/{router['id']}", {**ROUTER, "id": "x"})
    assert (status, replaced["id"]) == (200, router["id"])
    assert (await call(bridge, "GET", f"{ROUTERS}/x"))[0] == 404


@pytest.mark.parametrize("name", [None, "", 42, ["Support"]])
async def test_router_name_is_a_required_non_empty_string(
    bridge: RunningBridge, name: object
) -> None:
    body: dict[str, Any] = {"steps": ROUTER["steps"]}
    if name is not None:
        body["name"] = name
    status, answer = await call(bridge, "POST", ROUTERS, body)
    assert (status, fields(answer)) == (400, ["name"])
    assert await count(bridge) == 0


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        (None, "steps"),
        ("step", "steps"),
        ([], "steps"),
        ({"0": step()}, "steps"),
        (["step"], "steps[0]"),
    ],
)
async def test_router_steps_are_a_required_array_of_at_least_one_step_object(
    bridge: RunningBridge, steps: object, field: str
) -> None:
    body: dict[str, Any] = {"name": "Support"}
    if steps is not None:
        body["steps"] = steps
    status, answer = await call(bridge, "POST", ROUTERS, body)
    assert (status, fields(answer)) == (400, [field])
    assert await count(bridge) == 0


async def test_router_organization_id_is_read_only_and_scopes_the_router(
    bridge: RunningBridge,
) -> None:
    router = await create(bridge, {**ROUTER, "organization_id": "globex"})
    assert router["organization_id"] == "acme"
    # globex, with its own token on its own URL, does not find acme's router.
    path = f"/api/v5/orgs/globex/routers/{router['id']}"
    assert (await call(bridge, "GET", path, headers=GLOBEX))[0] == 404
    assert (await call(bridge, "GET", "/api/v5/orgs/globex/routers", headers=GLOBEX))[1][
        "count"
    ] == 0
    # ... and acme's token does not open globex's URL.
    assert (await call(bridge, "GET", "/api/v5/orgs/globex/routers"))[0] == 403


async def test_router_times_are_read_only_datetimes_set_by_the_server(
    bridge: RunningBridge,
) -> None:
    forged = "2001-01-01T00:00:00+00:00"
    router = await create(bridge, {**ROUTER, "created_at": forged, "updated_at": forged})
    created = datetime.fromisoformat(router["created_at"])
    assert router["created_at"] != forged and created.tzinfo is not None
    assert router["updated_at"] == router["created_at"]
    status, renamed = await call(
        bridge, "PATCH", f"{ROUTERS}/{router['id']}", {"name": "Renamed", "created_at": forged}
    )
    assert status == 200
    assert renamed["created_at"] == router["created_at"]
    assert datetime.fromisoformat(renamed["updated_at"]) > created


async def test_router_users_are_read_only_and_name_the_tokens_user(bridge: RunningBridge) -> None:
    router = await create(
        bridge, {**ROUTER, "created_by_user_id": "forged", "created_by_user": {"id": "forged"}}
    )
    assert (router["created_by_user_id"], router["created_by_user"]) == ("u-1", {"id": "u-1"})
    assert (router["updated_by_user_id"], router["updated_by_user"]) == ("u-1", {"id": "u-1"})
    status, renamed = await call(
        bridge,
        "PATCH",
        f"{ROUTERS}/{router['id']}",
        {"name": "Renamed", "updated_by_user_id": "forged"},
        EDITOR,
    )
    assert status == 200
    assert (renamed["created_by_user_id"], renamed["created_by_user"]) == ("u-1", {"id": "u-1"})
    assert (renamed["updated_by_user_id"], renamed["updated_by_user"]) == ("u-2", {"id": "u-2"})


async def test_a_router_has_exactly_the_seeds_attributes(bridge: RunningBridge) -> None:
    router = await create(bridge, ROUTER)
    assert set(router) == {
        "id",
        "name",
        "steps",
        "organization_id",
        "created_at",
        "created_by_user_id",
        "created_by_user",
        "updated_at",
        "updated_by_user_id",
        "updated_by_user",
    }
    assert set(router["steps"][0]) == {
        "id",
        "index",
        "preconditions",
        "organization_ids",
        "team_ids",
        "user_ids",
        "created_at",
        "created_by_user_id",
        "created_by_user",
        "updated_at",
        "updated_by_user_id",
        "updated_by_user",
    }
    assert router["steps"][1]["preconditions"] == [{"type": "users_offline", "value": 100}]


async def test_patch_changes_only_what_is_sent_and_put_needs_the_whole_router(
    bridge: RunningBridge,
) -> None:
    router = await create(bridge, ROUTER)
    path = f"{ROUTERS}/{router['id']}"
    status, renamed = await call(bridge, "PATCH", path, {"name": "Renamed"})
    assert status == 200 and renamed["steps"] == router["steps"]
    status, answer = await call(bridge, "PUT", path, {"name": "Only a name"})
    assert (status, fields(answer)) == (400, ["steps"])
    status, answer = await call(bridge, "PUT", path, {"steps": ROUTER["steps"]})
    assert (status, fields(answer)) == (400, ["name"])
    assert (await call(bridge, "GET", path))[1] == renamed


async def test_rooms_of_a_router_are_a_paginated_collection_of_rooms(
    bridge: RunningBridge,
) -> None:
    router = await create(bridge, ROUTER)
    for room in ("mysite-en", "mysite-de"):
        status, linked = await call(
            bridge, "PATCH", f"/api/v5/orgs/acme/rooms/{room}", {"router_id": router["id"]}
        )
        assert status == 200
        assert linked == {
            "id": room,
            "name": room,
            "organization_id": "acme",
            "router_id": router["id"],
        }
    status, rooms = await call(bridge, "GET", f"{ROUTERS}/{router['id']}/rooms")
    assert status == 200
    assert (rooms["count"], rooms["next"], rooms["previous"]) == (2, None, None)
    assert [r["id"] for r in rooms["results"]] == ["mysite-de", "mysite-en"]
    assert (await call(bridge, "GET", f"{ROUTERS}/{uuid.uuid4()}/rooms"))[0] == 404


# -- routing steps -------------------------------------------------------------------------


async def test_step_ids_are_uuids_kept_when_the_step_is_sent_back(bridge: RunningBridge) -> None:
    router = await create(bridge, ROUTER)
    first, second = router["steps"]
    assert len({uuid.UUID(first["id"]), uuid.UUID(second["id"])}) == 2
    changed = {**second, "user_ids": ["c1", "b1"]}
    added = step({"type": "task_waited", "value": 60}, team_ids=["secondary"], id="made-up")
    status, updated = await call(
        bridge,
        "PUT",
        f"{ROUTERS}/{router['id']}",
        {"name": "Support", "steps": [first, changed, added]},
        EDITOR,
    )
    assert status == 200, updated
    kept, edited, new = updated["steps"]
    # An unchanged step keeps everything; a changed one keeps its id and creation.
    assert kept == first
    assert edited["id"] == second["id"] and edited["created_at"] == second["created_at"]
    assert edited["updated_by_user_id"] == "u-2" and edited["updated_at"] != second["updated_at"]
    assert new["id"] not in {"made-up", first["id"], second["id"]}
    assert (new["created_by_user_id"], new["created_by_user"]) == ("u-2", {"id": "u-2"})


async def test_step_index_is_read_only_and_numbers_steps_by_position(
    bridge: RunningBridge,
) -> None:
    steps = [{**s, "index": 7 - i} for i, s in enumerate(ROUTER["steps"])]
    router = await create(bridge, {"name": "Support", "steps": steps})
    assert [s["index"] for s in router["steps"]] == [0, 1]


async def test_step_users_and_times_are_read_only(bridge: RunningBridge) -> None:
    forged = {
        "created_at": "2001-01-01T00:00:00+00:00",
        "created_by_user_id": "forged",
        "created_by_user": {"id": "forged"},
        "updated_at": "2001-01-01T00:00:00+00:00",
        "updated_by_user_id": "forged",
        "updated_by_user": {"id": "forged"},
    }
    router = await create(bridge, {"name": "S", "steps": [step(team_ids=["primary"], **forged)]})
    made = router["steps"][0]
    assert made["created_by_user_id"] == made["updated_by_user_id"] == "u-1"
    assert made["created_at"] == router["created_at"]


@pytest.mark.parametrize("attribute", ["preconditions", "organization_ids", "team_ids", "user_ids"])
async def test_every_step_array_is_required(bridge: RunningBridge, attribute: str) -> None:
    first = step(team_ids=["primary"])
    del first[attribute]
    status, answer = await call(bridge, "POST", ROUTERS, {"name": "S", "steps": [first]})
    assert (status, fields(answer)) == (400, [f"steps[0].{attribute}"])
    assert await count(bridge) == 0


@pytest.mark.parametrize(
    ("who", "field"),
    [
        ({"team_ids": "primary"}, "steps[0].team_ids"),
        ({"team_ids": ["primary", 7]}, "steps[0].team_ids[1]"),
        ({"user_ids": [None]}, "steps[0].user_ids[0]"),
        ({"organization_ids": {"acme": True}}, "steps[0].organization_ids"),
    ],
)
async def test_step_arrays_hold_strings(
    bridge: RunningBridge, who: dict[str, Any], field: str
) -> None:
    status, answer = await call(bridge, "POST", ROUTERS, {"name": "S", "steps": [step(**who)]})
    assert (status, fields(answer)) == (400, [field])


async def test_step_arrays_may_all_be_empty(bridge: RunningBridge) -> None:
    router = await create(bridge, {"name": "Nobody", "steps": [step()]})
    assert router["steps"][0]["user_ids"] == router["steps"][0]["team_ids"] == []


async def test_the_first_step_has_no_preconditions_and_every_later_one_some(
    bridge: RunningBridge,
) -> None:
    status, answer = await call(bridge, "POST", ROUTERS, {"name": "S", "steps": [step(OFFLINE)]})
    assert (status, fields(answer)) == (400, ["steps[0].preconditions"])
    status, answer = await call(bridge, "POST", ROUTERS, {"name": "S", "steps": [step(), step()]})
    assert (status, fields(answer)) == (400, ["steps[1].preconditions"])


# -- routing preconditions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("precondition", "field"),
    [
        ({"value": 10}, "steps[1].preconditions[0].type"),
        ({"type": "agents_busy", "value": 10}, "steps[1].preconditions[0].type"),
        ({"type": "users_offline"}, "steps[1].preconditions[0].value"),
        ({"type": "task_waited", "value": 1.5}, "steps[1].preconditions[0].value"),
        ({"type": "task_waited", "value": "10"}, "steps[1].preconditions[0].value"),
        ({"type": "task_waited", "value": True}, "steps[1].preconditions[0].value"),
        ({"type": "task_waited", "value": -1}, "steps[1].preconditions[0].value"),
        ({"type": "users_offline", "value": 101}, "steps[1].preconditions[0]"),
        ({"type": "users_absent", "value": 100, "extra": 1}, "steps[1].preconditions[0].extra"),
    ],
)
async def test_a_precondition_is_a_known_type_and_an_integer_value(
    bridge: RunningBridge, precondition: dict[str, Any], field: str
) -> None:
    body = {"name": "S", "steps": [step(), step(precondition)]}
    status, answer = await call(bridge, "POST", ROUTERS, body)
    assert (status, fields(answer)) == (400, [field])
    assert await count(bridge) == 0


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("users_offline", 0),
        ("users_offline", 100),
        ("users_absent", 50),
        ("task_waited", 3600),
        ("task_waited_in_previous_step", 10),
    ],
)
async def test_each_precondition_type_is_accepted_with_an_integer_value(
    bridge: RunningBridge, kind: str, value: int
) -> None:
    router = await create(
        bridge, {"name": "S", "steps": [step(), step({"type": kind, "value": value})]}
    )
    shown = router["steps"][1]["preconditions"][0]
    assert shown == {"type": kind, "value": value} and type(shown["value"]) is int
