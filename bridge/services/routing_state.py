"""Builds the routing table from config and stored data, and rebuilds it when they change.

Config parts (rules, settings, hours) are validated once at start: a bad rule or hours
definition is a startup error naming it. Stored parts (routers, channel router links)
are re-read on every change made through this replica's API, and on a short timer so
changes made on another replica arrive too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import NamedTuple

from pydantic import ValidationError

from bridge.db.repo import Store
from bridge.db.tables import AgentRow, TeamRow
from bridge.errors import ConfigError, InvalidInput
from bridge.routing.engine import Fallback, RoutingTable
from bridge.routing.hours import BusinessHours
from bridge.routing.overrides import parse_settings
from bridge.routing.regions import RegionRouter
from bridge.routing.rules.ruleset import RuleSet
from bridge.routing.steps.escalation import Directory, Presence
from bridge.routing.steps.schema import RouterStep, stored_step
from bridge.settings import Settings

log = logging.getLogger(__name__)


def compile_hours(settings: Settings) -> dict[str, BusinessHours]:
    """Validate every named business hours definition."""
    compiled: dict[str, BusinessHours] = {}
    for name, raw in settings.hours.items():
        try:
            compiled[name] = BusinessHours.model_validate(raw)
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"hours.{name}: {detail}") from exc
    return compiled


def _hours_ref(where: str, name: str | None, hours: Mapping[str, BusinessHours]) -> None:
    if name is not None and name not in hours:
        raise ConfigError(f"{where}.hours: no business hours named {name!r}")


def compile_table(settings: Settings) -> RoutingTable:
    """Validate the routing config and compile it; a bad part is a ConfigError naming it."""
    hours = compile_hours(settings)
    team_ids = {team.id for team in settings.teams}
    mains = settings.main_channels()
    regions = RegionRouter({name: settings.channels[name].regions for name in mains})
    rules: dict[str, RuleSet] = {}
    channel_settings = {}
    outside: dict[str, Fallback] = {}
    for name, channel in settings.channels.items():
        where = f"channels.{name}"
        if channel.rules:
            if name not in mains:
                raise ConfigError(f"{where}.rules: only a main channel has rules")
            own = {name, *channel.regions.values()}
            rules[name] = RuleSet(name, channel.rules, channels=own, teams=team_ids or None)
        try:
            channel_settings[name] = parse_settings(channel.settings, where=f"{where}.settings")
        except InvalidInput as exc:
            raise ConfigError(
                "; ".join(f"{f.field}: {f.problem}" for f in exc.fields) or exc.message
            ) from exc
        _hours_ref(where, channel.hours, hours)
        if channel.team_id is not None and team_ids and channel.team_id not in team_ids:
            raise ConfigError(f"{where}.team_id: no team {channel.team_id!r}")
        if channel.outside_hours is not None:
            fallback = channel.outside_hours
            if fallback.channel and fallback.channel not in settings.channels:
                raise ConfigError(f"{where}.outside_hours.channel: no channel {fallback.channel!r}")
            outside[name] = Fallback(fallback.channel, fallback.team_id)
    for team in settings.teams:
        _hours_ref(f"teams[{team.id}]", team.hours, hours)
    fallbacks = compile_fallbacks(settings)
    return RoutingTable(
        regions=regions,
        rules=rules,
        channel_settings=channel_settings,
        channel_team={n: c.team_id for n, c in settings.channels.items() if c.team_id},
        channel_router={n: c.router_id for n, c in settings.channels.items() if c.router_id},
        channel_hours={n: hours[c.hours] for n, c in settings.channels.items() if c.hours},
        team_hours={t.id: hours[t.hours] for t in settings.teams if t.hours},
        outside_hours=outside,
        fallbacks=fallbacks,
        fallback_after={
            name: after
            for name in fallbacks
            if (after := settings.channels[name].fallback_after_seconds) is not None
        },
    )


def compile_fallbacks(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Each main channel's fallback channels; a name that is no channel stops the start."""
    mains = set(settings.main_channels())
    known = ", ".join(sorted(settings.channels))
    compiled: dict[str, tuple[str, ...]] = {}
    for name, channel in settings.channels.items():
        where = f"channels.{name}"
        if channel.fallback_after_seconds is not None and not channel.fallback_channels:
            raise ConfigError(f"{where}.fallback_after_seconds: needs fallback_channels")
        if not channel.fallback_channels:
            continue
        if name not in mains:
            raise ConfigError(f"{where}.fallback_channels: only a main channel has fallbacks")
        for index, fallback in enumerate(channel.fallback_channels):
            if fallback not in settings.channels:
                raise ConfigError(
                    f"{where}.fallback_channels[{index}]: no channel {fallback!r} (known: {known})"
                )
            if channel.fallback_channels.index(fallback) != index:
                raise ConfigError(
                    f"{where}.fallback_channels[{index}]: {fallback!r} is listed twice"
                )
        compiled[name] = tuple(channel.fallback_channels)
    return compiled


class DirectoryAgent(NamedTuple):
    """What the directory needs of an agent."""

    id: str
    organization_id: str
    presence: str
    capacity: int
    active_count: int


def directory_of(agents: Iterable[DirectoryAgent], members: Iterable[tuple[str, str]]) -> Directory:
    """The directory of these agents and (team, agent) memberships."""
    listed = list(agents)
    teams: dict[str, set[str]] = {}
    for team_id, agent_id in members:
        teams.setdefault(team_id, set()).add(agent_id)
    orgs: dict[str, set[str]] = {}
    presence: dict[str, Presence] = {}
    for agent in listed:
        orgs.setdefault(agent.organization_id, set()).add(agent.id)
        presence[agent.id] = agent.presence  # type: ignore[assignment]
    return Directory(
        team_members={k: frozenset(v) for k, v in teams.items()},
        organization_users={k: frozenset(v) for k, v in orgs.items()},
        presence=presence,
        spare_capacity={a.id: a.capacity - a.active_count for a in listed},
    )


class RoutingState:
    """The current routing table, and the directory of agents for router steps."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        # Channels and their owners are configuration: found once, not per handoff.
        self._owners = {name: settings.channel_organization(name) for name in settings.channels}
        self._store = store
        self._static = compile_table(settings)
        self.table = self._static
        self._refresher: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # Channels whose link to another organization's router is ignored (logged once).
        self._foreign_links: set[str] = set()

    async def seed_directory(self) -> None:
        """Write config-defined teams and agents to the store (presence and load kept)."""
        now = datetime.now(UTC)
        org = self._settings.organization_id
        async with self._store.transaction() as tx:
            for team in self._settings.teams:
                await tx.upsert_team(
                    TeamRow(
                        id=team.id,
                        name=team.name or team.id,
                        organization_id=org,
                        hours=team.hours,
                        source="config",
                    )
                )
            for agent in self._settings.agents:
                await tx.upsert_agent(
                    AgentRow(
                        id=agent.id,
                        name=agent.name or agent.id,
                        email=agent.email,
                        organization_id=org,
                        presence="absent",
                        capacity=agent.capacity,
                        active_count=0,
                        source="config",
                        updated_at=now,
                    ),
                    agent.teams,
                )

    async def reload(self) -> None:
        """Re-read routers and channel links from the store and swap the table."""
        async with self._store.transaction() as tx:
            routers = await tx.all_routers()
            links = await tx.channel_routes()
        compiled: dict[str, tuple[RouterStep, ...]] = {}
        for router in routers:
            try:
                compiled[router.id] = tuple(stored_step(s) for s in router.steps)
            except ValidationError:
                log.error("routing.bad_router", extra={"router": router.id})
        channel_router = dict(self._static.channel_router)
        for channel, router_id in links.items():
            if router_id is None:
                channel_router.pop(channel, None)
            else:
                channel_router[channel] = router_id
        self._drop_foreign_links(channel_router, {r.id: r.organization_id for r in routers})
        # Only the stored parts change; everything compiled from config is kept.
        self.table = dataclasses.replace(
            self._static, channel_router=channel_router, routers=compiled
        )

    def _drop_foreign_links(self, links: dict[str, str], owners: Mapping[str, str]) -> None:
        # A channel never uses another organization's router, whatever linked it (a link
        # stored before channels had owners, a config typo): its chats would be offered to
        # people of that organization.
        foreign = {
            channel
            for channel, router_id in links.items()
            if channel in self._settings.channels
            and router_id in owners
            and owners[router_id] != self._settings.channel_organization(channel)
        }
        for channel in sorted(foreign - self._foreign_links):
            log.warning(
                "routing.foreign_router", extra={"channel": channel, "router": links[channel]}
            )
        self._foreign_links = foreign
        for channel in foreign:
            del links[channel]

    @property
    def organization_id(self) -> str:
        """The organization config-defined agents and teams belong to."""
        return self._settings.organization_id

    def channel_organization(self, channel: str) -> str:
        """The organization owning a channel (giosg's room)."""
        owner = self._owners.get(channel)
        return owner if owner is not None else self._settings.channel_organization(channel)

    def reporter_organization(self, source: str) -> str:
        """The organization of an agent first reported by `source` (a channel, or not)."""
        # Other sources (the API, the desk, a CRM naming no channel) report for the top one.
        if source in self._settings.channels:
            return self._settings.channel_organization(source)
        return self._settings.organization_id

    def channels_using(self, router_id: str) -> list[str]:
        """Channels linked to a router."""
        return self.table.channels_using(router_id)

    async def directory(self) -> Directory:
        """Teams, organizations and presence as they are now, for router steps."""
        async with self._store.transaction() as tx:
            agents = await tx.agents()
            members = await tx.team_members()
        return directory_of(
            [
                DirectoryAgent(a.id, a.organization_id, a.presence, a.capacity, a.active_count)
                for a in agents
            ],
            [(m.team_id, m.agent_id) for m in members],
        )

    def start(self, every_seconds: float = 5.0) -> None:
        """Reload on a timer so other replicas' router changes arrive."""

        stopping = self._stopping = asyncio.Event()

        async def loop() -> None:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), every_seconds)
                if stopping.is_set():
                    return
                try:
                    await self.reload()
                except Exception:
                    log.exception("routing.reload_failed")

        self._refresher = asyncio.create_task(loop(), name="routing-reload")

    async def stop(self) -> None:
        """Stop the timer; a reload in progress finishes first (not cut off mid-statement)."""
        if self._refresher is not None:
            self._stopping.set()
            done, _ = await asyncio.wait({self._refresher}, timeout=5.0)
            if not done:  # stuck on the store: cancelled after all, as a last resort
                self._refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._refresher
            self._refresher = None
