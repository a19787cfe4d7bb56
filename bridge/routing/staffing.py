"""Who could take a chat now: the agents a decision offers it to at once, and which of them
are online with room for one more chat. Pure: the directory is read by the caller.

The handoff uses it to tell the bot why it waits (`handoff.waiting`), the availability
check to answer before anything is stored, and routing across platforms to decide
whether a channel has anybody at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from bridge.domain.reasons import CAPACITY, NO_AGENTS_ONLINE, Reason
from bridge.routing.engine import Decision
from bridge.routing.steps.escalation import Directory, advance
from bridge.routing.steps.schema import RouterStep


@dataclass(frozen=True, slots=True)
class Staffing:
    """The agents a chat is offered to, those online, and those online with room."""

    offered: frozenset[str]
    online: frozenset[str]
    free: frozenset[str]

    @property
    def waiting_reason(self) -> Reason | None:
        """Why a chat offered to these agents would wait for nobody; None when someone can take it.

        A chat offered to nobody is answered through join links (or the platform's own
        routing), so the bridge's presence says nothing about it: None.
        """
        if not self.offered:
            return None
        if not self.online:
            return NO_AGENTS_ONLINE
        if not self.free:
            return CAPACITY
        return None


def staffing_of(agents: Iterable[str], directory: Directory) -> Staffing:
    """Presence and room of these agents, as the directory has them."""
    offered = frozenset(agents)
    online = frozenset(a for a in offered if directory.presence_of(a) == "online")
    # An agent whose load is unknown (not in the directory's counts) is not known to be full.
    free = frozenset(a for a in online if directory.spare_capacity.get(a, 1) > 0)
    return Staffing(offered, online, free)


def first_offer(
    decision: Decision,
    routers: Mapping[str, tuple[RouterStep, ...]],
    directory: Directory,
    now: datetime,
) -> frozenset[str]:
    """Whom a handoff decided now is offered to at once (as Assignment.place offers it)."""
    offered = set(decision.agent_ids) | set(decision.settings.default_agent_ids)
    if decision.assignee:
        offered.add(decision.assignee)
    elif decision.team_id:
        offered |= directory.team_members.get(decision.team_id, frozenset())
    if decision.router_id and not decision.assignee:
        steps = routers.get(decision.router_id, ())
        if steps:
            offered |= advance(steps, None, directory, now, now).offered_to
    return frozenset(offered)
