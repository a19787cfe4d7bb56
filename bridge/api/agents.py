"""Agents, teams and presence: from config, this API, CRMs and platforms.

Each agent and team belongs to one organization. An organization token's caller sees and
changes only its own (another organization's agent or team is 404, like an unknown one);
an agent's teams are always teams of the agent's organization.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bridge.api.errors import parse_body
from bridge.api.openapi import Access, Operations
from bridge.api.openapi.directory import (
    Agent,
    AgentList,
    DeskLink,
    PresenceAnswer,
    Team,
    TeamList,
)
from bridge.api.tenancy import OrganizationQuery, listed_organization, owning_organization, visible
from bridge.db.repo import Tx
from bridge.db.tables import AgentRow, TeamRow
from bridge.errors import FieldProblem, InvalidInput, NotFound
from bridge.typedefs import ASSIGNMENT, DESK_LINKS, SETTINGS, STORE

routes = web.RouteTableDef()
agent_doc = Operations("Agents", Access.DIRECTORY)
team_doc = Operations("Teams", Access.DIRECTORY)


class AgentBody(BaseModel):
    """An agent as a client creates or replaces it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    # Strict: `true` is not a capacity of 1.
    capacity: int = Field(default=3, ge=0, le=1000, strict=True)
    teams: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, max_length=100
    )
    organization_id: str | None = Field(default=None, max_length=128)

    @field_validator("teams")
    @classmethod
    def _each_team_once(cls, teams: list[str] | None) -> list[str] | None:
        # Naming a team twice means being in it once (a membership is one row).
        return list(dict.fromkeys(teams)) if teams is not None else None


class PresenceBody(BaseModel):
    """A presence change."""

    model_config = ConfigDict(extra="forbid")

    presence: Literal["online", "offline", "absent"]


class TeamBody(BaseModel):
    """A team as a client creates or replaces it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    hours: str | None = Field(default=None, max_length=128)
    organization_id: str | None = Field(default=None, min_length=1, max_length=128)


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


def _no_agent(agent_id: str) -> NotFound:
    return NotFound(f"no agent {agent_id!r}", [FieldProblem("agent_id", "unknown agent")])


def _no_team(team_id: str) -> NotFound:
    return NotFound(f"no team {team_id!r}", [FieldProblem("team_id", "unknown team")])


async def _visible_agent(request: web.Request) -> AgentRow:
    """The path's agent, or 404 when it is unknown or another organization's (nothing to probe)."""
    agent_id = request.match_info["agent_id"]
    async with request.app[STORE].transaction() as tx:
        row = await tx.get_agent(agent_id)
    if row is None or not visible(request, row.organization_id):
        raise _no_agent(agent_id)
    return row


def _replaced_organization(
    request: web.Request, asked: str | None, existing: AgentRow | TeamRow | None, missing: NotFound
) -> str:
    """The organization a replaced agent or team belongs to; `missing` for another's."""
    if existing is not None and not visible(request, existing.organization_id):
        raise missing
    # Not naming an organization keeps the existing one's: a replace never moves it silently.
    return asked or (
        existing.organization_id if existing else request.app[SETTINGS].organization_id
    )


async def _check_teams(
    tx: Tx, existing: AgentRow | None, teams: list[str] | None, organization_id: str
) -> None:
    """An agent's teams must be teams of its organization (422 naming each other one)."""
    if teams is not None:
        owners = await tx.team_organizations(teams)
        problems = [
            FieldProblem(f"teams[{i}]", f"no team {team!r} in organization {organization_id!r}")
            for i, team in enumerate(teams)
            if owners.get(team) != organization_id
        ]
    elif existing is not None and existing.organization_id != organization_id:
        # Moving an agent keeps its memberships: none may stay in the old organization.
        current = [m.team_id for m in await tx.team_members() if m.agent_id == existing.id]
        owners = await tx.team_organizations(current)
        problems = [
            FieldProblem("organization_id", f"the agent is in team {team!r}; send new teams")
            for team in current
            if owners.get(team) != organization_id
        ]
    else:
        return
    if problems:
        raise InvalidInput("an agent's teams must be of its organization", problems)


@routes.get("/v1/agents")
@agent_doc("List agents with presence and load", query=OrganizationQuery, answers={200: AgentList})
async def list_agents(request: web.Request) -> web.Response:
    """Every agent the caller may see, with presence and load (`?organization_id=` narrows)."""
    organization = listed_organization(request)
    async with request.app[STORE].transaction() as tx:
        rows = await tx.agents()
    rows = [r for r in rows if organization in (None, r.organization_id)]
    teams = await _teams_by_agent(request)
    return web.json_response({"items": [agent_view(r, teams.get(r.id, [])) for r in rows]})


@routes.get("/v1/agents/{agent_id}")
@agent_doc("One agent with presence and load", answers={200: Agent}, errors=(404,))
async def get_agent(request: web.Request) -> web.Response:
    """One agent with presence and load."""
    row = await _visible_agent(request)
    teams = await _teams_by_agent(request)
    return web.json_response(agent_view(row, teams.get(row.id, [])))


@routes.put("/v1/agents/{agent_id}")
@agent_doc(
    "Create or replace an agent (presence and load are kept)",
    body=AgentBody,
    answers={200: Agent},
    errors=(404, 409),
)
async def put_agent(request: web.Request) -> web.Response:
    """Create or replace an agent (presence and load are kept)."""
    agent_id = request.match_info["agent_id"]
    body = await parse_body(request, AgentBody)
    asked = owning_organization(request, body.organization_id)
    async with request.app[STORE].transaction() as tx:
        existing = await tx.get_agent(agent_id)
        organization = _replaced_organization(request, asked, existing, _no_agent(agent_id))
        await _check_teams(tx, existing, body.teams, organization)
        row = AgentRow(
            id=agent_id,
            name=body.name,
            email=body.email,
            organization_id=organization,
            presence="absent",
            capacity=body.capacity,
            active_count=0,
            source="api",
            updated_at=datetime.now(UTC),
        )
        stored = await tx.upsert_agent(row, body.teams)
    teams = await _teams_by_agent(request)
    return web.json_response(agent_view(stored, teams.get(agent_id, [])))


@routes.put("/v1/agents/{agent_id}/presence")
@agent_doc(
    "Set an agent's presence", body=PresenceBody, answers={200: PresenceAnswer}, errors=(404,)
)
async def put_presence(request: web.Request) -> web.Response:
    """Set an agent's presence; pending chats with routers are re-evaluated."""
    body = await parse_body(request, PresenceBody)
    agent_id = (await _visible_agent(request)).id
    await request.app[ASSIGNMENT].set_presence(agent_id, body.presence)
    return web.json_response({"id": agent_id, "presence": body.presence})


@routes.get("/v1/agents/{agent_id}/desk_link")
@agent_doc("A fresh personal desk link for the agent", answers={200: DeskLink}, errors=(404,))
async def get_desk_link(request: web.Request) -> web.Response:
    """A fresh personal desk link for the agent (whoever holds it signs in as the agent)."""
    agent_id = (await _visible_agent(request)).id
    return web.json_response(
        {"agent_id": agent_id, "url": request.app[DESK_LINKS].url(agent_id)},
        headers={"Cache-Control": "no-store"},
    )


@routes.get("/v1/teams")
@team_doc("List teams with their members", query=OrganizationQuery, answers={200: TeamList})
async def list_teams(request: web.Request) -> web.Response:
    """Every team the caller may see, with its members (`?organization_id=` narrows)."""
    organization = listed_organization(request)
    async with request.app[STORE].transaction() as tx:
        rows = [r for r in await tx.teams() if organization in (None, r.organization_id)]
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
@team_doc("Create or replace a team", body=TeamBody, answers={200: Team}, errors=(404, 409))
async def put_team(request: web.Request) -> web.Response:
    """Create or replace a team (members are set on the agents)."""
    team_id = request.match_info["team_id"]
    body = await parse_body(request, TeamBody)
    asked = owning_organization(request, body.organization_id)
    async with request.app[STORE].transaction() as tx:
        existing = await tx.get_team(team_id)
        organization = _replaced_organization(request, asked, existing, _no_team(team_id))
        # Members are set on agents, so a team's id may have members before the team
        # exists: they must all be of the team's organization.
        members = [m.agent_id for m in await tx.team_members() if m.team_id == team_id]
        owners = await tx.agent_organizations(members)
        if any(owners.get(agent) != organization for agent in members):
            raise InvalidInput(
                "a team's members must be of its organization",
                [FieldProblem("organization_id", f"the team has members outside {organization!r}")],
            )
        await tx.upsert_team(
            TeamRow(
                id=team_id,
                name=body.name,
                hours=body.hours,
                organization_id=organization,
                source="api",
            )
        )
    return web.json_response(
        {"id": team_id, "name": body.name, "hours": body.hours, "organization_id": organization}
    )
