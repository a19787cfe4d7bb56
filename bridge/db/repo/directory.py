"""The directory: agents and teams, presence, organizations and capacity."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, select, update

from bridge.db.repo.base import TxPart, affected
from bridge.db.tables import AgentRow, TeamMemberRow, TeamRow


class DirectoryQueries(TxPart):
    """Agents, teams and their memberships, presence and load."""

    async def set_presence(
        self,
        channel: str,
        agent_id: str,
        name: str | None,
        presence: str,
        now: datetime,
        organization_id: str,
    ) -> bool:
        """Record an agent's presence; an unknown agent is created in `organization_id`.

        Returns whether the presence changed (routing re-evaluates only then).
        """
        row = await self.session.get(AgentRow, agent_id)
        if row is None:
            self.session.add(
                AgentRow(
                    id=agent_id,
                    name=name or agent_id,
                    email=None,
                    organization_id=organization_id,
                    presence=presence,
                    capacity=3,
                    active_count=0,
                    source=channel,
                    updated_at=now,
                )
            )
            await self.session.flush()
            return True
        changed = row.presence != presence
        row.presence, row.updated_at = presence, now
        if name and row.source != "config":
            row.name = name
        await self.session.flush()
        return changed

    async def agents(self) -> list[AgentRow]:
        """Every agent, by id."""
        return list((await self.session.execute(select(AgentRow).order_by(AgentRow.id))).scalars())

    async def get_agent(self, agent_id: str) -> AgentRow | None:
        """One agent."""
        return await self.session.get(AgentRow, agent_id)

    async def upsert_agent(self, row: AgentRow, team_ids: Sequence[str] | None) -> AgentRow:
        """Create or update an agent (keeping presence and load), and its teams if given."""
        existing = await self.session.get(AgentRow, row.id)
        if existing is None:
            self.session.add(row)
            existing = row
        else:
            existing.name, existing.email = row.name, row.email
            existing.organization_id, existing.capacity = row.organization_id, row.capacity
            existing.source, existing.updated_at = row.source, row.updated_at
        if team_ids is not None:
            await self.session.execute(
                delete(TeamMemberRow).where(TeamMemberRow.agent_id == row.id)
            )
            self.session.add_all(TeamMemberRow(team_id=t, agent_id=row.id) for t in team_ids)
        await self.session.flush()
        return existing

    async def upsert_team(self, row: TeamRow) -> None:
        """Create or update a team."""
        existing = await self.session.get(TeamRow, row.id)
        if existing is None:
            self.session.add(row)
        else:
            existing.name, existing.hours = row.name, row.hours
            existing.organization_id, existing.source = row.organization_id, row.source
        await self.session.flush()

    async def teams(self) -> list[TeamRow]:
        """Every team, by id."""
        return list((await self.session.execute(select(TeamRow).order_by(TeamRow.id))).scalars())

    async def team_members(self) -> list[TeamMemberRow]:
        """Every membership."""
        return list((await self.session.execute(select(TeamMemberRow))).scalars())

    async def get_team(self, team_id: str) -> TeamRow | None:
        """One team."""
        return await self.session.get(TeamRow, team_id)

    async def agent_organizations(self, agent_ids: Collection[str]) -> dict[str, str]:
        """The organization of each of these agents that exists."""
        query = select(AgentRow.id, AgentRow.organization_id).where(AgentRow.id.in_(agent_ids))
        return {id_: org for id_, org in (await self.session.execute(query)).all()}

    async def team_organizations(self, team_ids: Collection[str]) -> dict[str, str]:
        """The organization of each of these teams that exists."""
        query = select(TeamRow.id, TeamRow.organization_id).where(TeamRow.id.in_(team_ids))
        return {id_: org for id_, org in (await self.session.execute(query)).all()}

    async def try_take_capacity(self, agent_id: str) -> bool:
        """Count one more active chat for the agent, only if under capacity (atomic)."""
        result = await self.session.execute(
            update(AgentRow)
            .where(AgentRow.id == agent_id, AgentRow.active_count < AgentRow.capacity)
            .values(active_count=AgentRow.active_count + 1)
            .execution_options(synchronize_session=False)
        )
        return affected(result) > 0

    async def release_capacity(self, agent_id: str) -> None:
        """One of the agent's chats ended."""
        await self.session.execute(
            update(AgentRow)
            .where(AgentRow.id == agent_id, AgentRow.active_count > 0)
            .values(active_count=AgentRow.active_count - 1)
            .execution_options(synchronize_session=False)
        )
