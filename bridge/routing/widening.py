"""Who an unanswered chat is offered to next: the widening rings of an accept timeout.

Pure. When nobody takes a chat within its accept time, its offer widens by one ring, as
contact centres widen a queue's target step by step (Amazon Connect's routing steps,
Genesys's bullseye rings):

1. the router's next step (taking effect now, whatever its preconditions say);
2. the team of the chat's channel, when the chat was offered more narrowly;
3. every agent of the chat's organization.

A ring that adds nobody new (everyone there is offered already, or let the chat lapse
before) is skipped. When no ring adds anyone, the chat keeps its offers and waits.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from bridge.routing.steps.escalation import Directory, step_users
from bridge.routing.steps.schema import RouterStep

_NAMED = 10


@dataclass(frozen=True, slots=True)
class Chat:
    """What widening looks at: where the chat is and who has had it."""

    offered_to: frozenset[str]
    passed_over: frozenset[str]
    organization_id: str | None
    channel_team: str | None
    team_id: str | None
    router_steps: Sequence[RouterStep] = ()
    # When each router step took effect: a prefix of `router_steps`.
    activated_at: tuple[datetime, ...] = ()


@dataclass(frozen=True, slots=True)
class Widened:
    """The ring that took effect: everyone the chat is offered to now, and why."""

    offered_to: frozenset[str]
    added: frozenset[str]
    activated_at: tuple[datetime, ...]
    trace: str


def describe(users: Collection[str]) -> str:
    """Users as a trace names them: sorted, the first ten, and how many more."""
    names = sorted(users)
    shown = ", ".join(names[:_NAMED])
    more = len(names) - _NAMED
    return f"{shown} and {more} more" if more > 0 else shown


def widen(chat: Chat, directory: Directory, now: datetime) -> Widened | None:
    """The next ring that adds someone, or None when no ring does."""
    activated = list(chat.activated_at)
    skip = chat.offered_to | chat.passed_over
    for index in range(len(activated), len(chat.router_steps)):
        activated.append(now)
        added = step_users(chat.router_steps[index], directory) - skip
        if added:
            return _ring(chat, added, tuple(activated), f"router step {index} in effect")
    if chat.channel_team and chat.channel_team != chat.team_id:
        added = directory.team_members.get(chat.channel_team, frozenset()) - skip
        if added:
            return _ring(chat, added, tuple(activated), f"team {chat.channel_team!r}")
    if chat.organization_id is not None:
        added = directory.organization_users.get(chat.organization_id, frozenset()) - skip
        if added:
            ring = f"organization {chat.organization_id!r}"
            return _ring(chat, added, tuple(activated), ring)
    return None


def _ring(chat: Chat, added: frozenset[str], activated: tuple[datetime, ...], ring: str) -> Widened:
    return Widened(
        offered_to=chat.offered_to | added,
        added=added,
        activated_at=activated,
        trace=f"{ring} → also offered to {describe(added)}",
    )
