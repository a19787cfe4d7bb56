"""Routing across platforms: the same handoff decided again for one of its fallback channels.

A main channel lists `fallback_channels` (any platform). When nobody is available on
the channel a decision chose, the chat may move to the next of them; this works out
where it would land there. Pure, like the engine: whether anybody is available is the
caller's question (services/live_routing.py), asked of the platform or the bridge's
own presence.

On a fallback channel the metadata rules no longer apply (they chose the first
channel); the chat is routed as one with no rule match there: the handoff's settings
over that channel's defaults, else the channel's router, else its team. A fallback
channel outside its business hours (or its team's) is passed over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bridge.routing.engine import Decision, RoutingTable
from bridge.routing.overrides import merge_settings, parse_settings


def on_fallback(
    table: RoutingTable,
    decision: Decision,
    channel: str,
    given_settings: Mapping[str, Any],
    now: datetime,
    why: str,
) -> Decision | None:
    """`decision` moved to fallback `channel`; None when that channel is closed now.

    `why` starts the trace line (`nobody available on 'mysite-es'`).
    """
    settings = merge_settings(
        table.channel_settings.get(channel, {}), parse_settings(given_settings)
    )
    team_id = settings.team_id
    router_id: str | None = None
    assignee = settings.effective_assignee()
    if team_id is None and assignee is None:
        linked = table.channel_router.get(channel)
        if linked is not None and linked in table.routers:
            router_id = linked
        else:
            team_id = table.channel_team.get(channel)
    hours = table.channel_hours.get(channel) or (table.team_hours.get(team_id) if team_id else None)
    if hours is not None and not hours.is_open(now):
        return None
    target = (
        f"router {router_id!r}"
        if router_id
        else f"team {team_id!r}"
        if team_id
        else f"assignee {assignee!r}"
        if assignee
        else "no team"
    )
    line = f"{why} → fallback channel {channel!r} ({target})"
    rest = decision.fallback_channels
    return dataclasses.replace(
        decision,
        channel=channel,
        settings=settings,
        team_id=team_id,
        router_id=router_id,
        agent_ids=(),
        assignee=assignee,
        trace=(*decision.trace, line),
        # What is left of the chain after this channel.
        fallback_channels=rest[rest.index(channel) + 1 :] if channel in rest else (),
    )


def chain_after(table: RoutingTable, main_channel: str, channel: str) -> tuple[str, ...]:
    """The fallback channels still ahead of a chat that is on `channel` now."""
    chain = table.fallbacks.get(main_channel, ())
    if channel in chain:
        return chain[chain.index(channel) + 1 :]
    return tuple(c for c in chain if c != channel)
