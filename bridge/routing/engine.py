"""The routing decision: region → rules → settings overrides → business hours → target.

Pure: the table is built once from config and stored data (and rebuilt when they
change); `decide` only looks things up. Every step of the decision adds a line to the
trace, which is stored with the conversation and shown by the explain endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge.routing.hours import BusinessHours
from bridge.routing.overrides import ConversationSettings, merge_settings, parse_settings
from bridge.routing.regions import RegionRouter, RouteRule
from bridge.routing.rules.ruleset import RuleSet
from bridge.routing.rules.schema import Facts
from bridge.routing.steps.schema import RouterStep


@dataclass(frozen=True, slots=True)
class Fallback:
    """Where a channel's chats go outside its hours: a channel, a team, or nowhere (fail)."""

    channel: str | None = None
    team_id: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """Everything a decision needs, compiled once."""

    regions: RegionRouter
    rules: Mapping[str, RuleSet] = field(default_factory=dict)
    # Parsed channel default settings (parse_settings output), by channel.
    channel_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    channel_team: Mapping[str, str] = field(default_factory=dict)
    channel_router: Mapping[str, str] = field(default_factory=dict)
    routers: Mapping[str, tuple[RouterStep, ...]] = field(default_factory=dict)
    channel_hours: Mapping[str, BusinessHours] = field(default_factory=dict)
    team_hours: Mapping[str, BusinessHours] = field(default_factory=dict)
    outside_hours: Mapping[str, Fallback] = field(default_factory=dict)
    # Routing across platforms, by main channel: where its chats go next when nobody is
    # available, in order, and after how long a chat nobody took moves on.
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fallback_after: Mapping[str, float] = field(default_factory=dict)

    def channels_using(self, router_id: str) -> list[str]:
        """Channels linked to this router."""
        return sorted(c for c, r in self.channel_router.items() if r == router_id)


@dataclass(frozen=True, slots=True)
class HandoffFacts:
    """What a decision looks at."""

    main_channel: str
    region: str | None
    customer: Mapping[str, Any]
    metadata: Mapping[str, Any]
    settings: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Decision:
    """Where the conversation goes and who may get it, with the reasons."""

    main_channel: str
    channel: str
    region_rule: RouteRule
    settings: ConversationSettings
    team_id: str | None = None
    router_id: str | None = None
    agent_ids: tuple[str, ...] = ()
    assignee: str | None = None
    priority: int = 0
    rule_name: str | None = None
    # Outside business hours with no fallback: the handoff fails, and the bot is told
    # when it opens next (None when it never does).
    closed: bool = False
    next_open: datetime | None = None
    trace: tuple[str, ...] = ()
    # Where the chat may move when nobody is available here (see services/live_routing.py).
    fallback_channels: tuple[str, ...] = ()
    fallback_after_seconds: float | None = None

    @property
    def names_agents(self) -> bool:
        """Whether the chat goes to known agents (so offers need the agent directory)."""
        return bool(
            self.team_id
            or self.router_id
            or self.agent_ids
            or self.assignee
            or self.settings.default_agent_ids
        )


def decide(table: RoutingTable, facts: HandoffFacts, now: datetime) -> Decision:
    """Route one handoff. Raises InvalidInput for a settings object that does not parse."""
    region = table.regions.resolve(facts.main_channel, facts.region)
    trace = list(region.trace)
    channel = region.channel
    team_id: str | None = None
    router_id: str | None = None
    agent_ids: tuple[str, ...] = ()
    assignee: str | None = None
    priority = 0
    rule_name: str | None = None

    ruleset = table.rules.get(facts.main_channel)
    if ruleset is not None:
        match = ruleset.first_match(Facts(facts.region, facts.customer, facts.metadata))
        if match is not None:
            then = match.rule.then
            rule_name = match.rule.name
            trace.append(match.explanation)
            channel = then.channel or channel
            team_id = then.team_id
            router_id = then.router_id
            agent_ids = tuple(then.agent_ids or ())
            assignee = then.assignee
            priority = then.priority or 0
        elif ruleset:
            trace.append("no rule matched")

    given = parse_settings(facts.settings)
    defaults = table.channel_settings.get(channel, {})
    settings = merge_settings(defaults, given)
    if defaults and not given:
        trace.append(f"settings: channel {channel!r} defaults")
    # The handoff's own team beats a rule's; the channel's default only fills a gap.
    if given.get("team_id") and given["team_id"] != team_id:
        team_id = settings.team_id
        trace.append(f"settings: team {team_id!r}")
    elif team_id is None and settings.team_id:
        team_id = settings.team_id
        trace.append(f"settings: channel {channel!r} default team {team_id!r}")
    effective = settings.effective_assignee()
    if effective:
        assignee = effective
        trace.append(f"settings: skip routing, assignee {effective!r}")
    elif settings.default_assignee and not settings.skip_routing:
        trace.append("settings: default assignee ignored without skip routing")

    if team_id is None and router_id is None and not agent_ids and assignee is None:
        linked = table.channel_router.get(channel)
        if linked is not None and linked in table.routers:
            router_id = linked
            trace.append(f"channel {channel!r} → router {linked!r}")
        elif table.channel_team.get(channel):
            team_id = table.channel_team[channel]
            trace.append(f"channel {channel!r} → team {team_id!r}")

    closed, opening = False, None
    hours = table.channel_hours.get(channel) or (table.team_hours.get(team_id) if team_id else None)
    if hours is not None and not hours.is_open(now):
        fallback = table.outside_hours.get(channel)
        if fallback is not None and fallback.channel:
            trace.append(f"outside hours of {channel!r} → channel {fallback.channel!r}")
            channel = fallback.channel
        elif fallback is not None and fallback.team_id:
            trace.append(f"outside hours of {channel!r} → team {fallback.team_id!r}")
            team_id, router_id, agent_ids, assignee = fallback.team_id, None, (), None
        else:
            closed = True
            opening = hours.next_opening(now)
            when = opening.isoformat() if opening else "never"
            trace.append(f"outside hours of {channel!r}; next opening {when}")

    fallbacks = tuple(c for c in table.fallbacks.get(facts.main_channel, ()) if c != channel)
    after = table.fallback_after.get(facts.main_channel)
    if fallbacks and not closed:
        names = ", ".join(repr(c) for c in fallbacks)
        timer = f", or after {after:g} s without an agent" if after else ""
        trace.append(f"fallback channels {names} when nobody is available on {channel!r}{timer}")

    return Decision(
        facts.main_channel,
        channel,
        region.rule,
        settings,
        team_id=team_id,
        router_id=router_id,
        agent_ids=agent_ids,
        assignee=assignee,
        priority=priority,
        rule_name=rule_name,
        closed=closed,
        next_open=opening,
        trace=tuple(trace),
        fallback_channels=fallbacks,
        fallback_after_seconds=after,
    )
