"""Agents, teams and presence: from config, this API, CRMs and platforms."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bridge.api.errors import parse_body
from bridge.db.tables import AgentRow, TeamRow
from bridge.errors import FieldProblem, NotFound
from bridge.typedefs import ASSIGNMENT, DESK_LINKS, SETTINGS, STORE

routes = web.RouteTableDef()


class AgentBody(BaseModel):
    """An agent as a client creates or replaces it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    capacity: int = Field(default=3, ge=0, le=1000)
    teams: list[str] | None = None
    organization_id: str | None = Field(default=None, max_length=128)


class PresenceBody(BaseModel):
    """A presence change."""

    model_config = ConfigDict(extra="forbid")

    presence: Literal["online", "offline", "absent"]


class TeamBody(BaseModel):
    """A team as a client creates or replaces it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    hours: str | None = None


def agent_view(row: AgentRow, teams: list[str]) -> dict[str, Any]:
    """An agent with presence and load."""
    return {
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "organization_id": row.organization_id,
        "presence": row.presence,
        "capacity": row.capacity,
        "active_chats": row.active_count,
        "teams": teams,
        "source": row.source,
        "updated_at": row.updated_at.isoformat(),
    }


async def _teams_by_agent(request: web.Request) -> dict[str, list[str]]:
    async with request.app[STORE].transaction() as tx:
        members = await tx.team_members()
    teams: dict[str, list[str]] = {}
    for member in members:
        teams.setdefault(member.agent_id, []).append(member.team_id)
    return {agent: sorted(ids) for agent, ids in teams.items()}


@routes.get("/v1/agents")
async def list_agents(request: web.Request) -> web.Response:
    """Every agent with presence and load."""
    async with request.app[STORE].transaction() as tx:
        rows = await tx.agents()
    teams = await _teams_by_agent(request)
    return web.json_response({"items": [agent_view(r, teams.get(r.id, [])) for r in rows]})


@routes.put("/v1/agents/{agent_id}")
async def put_agent(request: web.Request) -> web.Response:
    """Create or replace an agent (presence and load are kept)."""
    agent_id = request.match_info["agent_id"]
    body = await parse_body(request, AgentBody)
    row = AgentRow(
        id=agent_id,
        name=body.name,
        email=body.email,
        organization_id=body.organization_id or request.app[SETTINGS].organization_id,
        presence="absent",
        capacity=body.capacity,
        active_count=0,
        source="api",
        updated_at=datetime.now(UTC),
    )
    async with request.app[STORE].transaction() as tx:
        stored = await tx.upsert_agent(row, body.teams)
    teams = await _teams_by_agent(request)
    return web.json_response(agent_view(stored, teams.get(agent_id, [])))


@routes.put("/v1/agents/{agent_id}/presence")
async def put_presence(request: web.Request) -> web.Response:
    """Set an agent's presence; pending chats with routers are re-evaluated."""
    agent_id = request.match_info["agent_id"]
    body = await parse_body(request, PresenceBody)
    async with request.app[STORE].transaction() as tx:
        if await tx.get_agent(agent_id) is None:
            raise NotFound(f"no agent {agent_id!r}", [FieldProblem("agent_id", "unknown agent")])
    await request.app[ASSIGNMENT].set_presence(agent_id, body.presence)
    return web.json_response({"id": agent_id, "presence": body.presence})


@routes.get("/v1/agents/{agent_id}/desk_link")
async def get_desk_link(request: web.Request) -> web.Response:
    """A fresh personal desk link for the agent (whoever holds it signs in as the agent)."""
    agent_id = request.match_info["agent_id"]
    async with request.app[STORE].transaction() as tx:
        if await tx.get_agent(agent_id) is None:
            raise NotFound(f"no agent {agent_id!r}", [FieldProblem("agent_id", "unknown agent")])
    return web.json_response(
        {"agent_id": agent_id, "url": request.app[DESK_LINKS].url(agent_id)},
        headers={"Cache-Control": "no-store"},
    )


@routes.get("/v1/teams")
async def list_teams(request: web.Request) -> web.Response:
    """Every team with its members."""
    async with request.app[STORE].transaction() as tx:
        rows = await tx.teams()
        members = await tx.team_members()
    by_team: dict[str, list[str]] = {}
    for member in members:
        by_team.setdefault(member.team_id, []).append(member.agent_id)
    return web.json_response(
        {
            "items": [
                {
                    "id": r.id,
                    "name": r.name,
                    "hours": r.hours,
                    "organization_id": r.organization_id,
                    "members": sorted(by_team.get(r.id, [])),
                }
                for r in rows
            ]
        }
    )


@routes.put("/v1/teams/{team_id}")
async def put_team(request: web.Request) -> web.Response:
    """Create or replace a team (members are set on the agents)."""
    team_id = request.match_info["team_id"]
    body = await parse_body(request, TeamBody)
    async with request.app[STORE].transaction() as tx:
        await tx.upsert_team(
            TeamRow(
                id=team_id,
                name=body.name,
                hours=body.hours,
                organization_id=request.app[SETTINGS].organization_id,
                source="api",
            )
        )
    return web.json_response({"id": team_id, "name": body.name, "hours": body.hours})
