"""A conversation's status and the one table of what may happen to it in each status.

    pending ──join / take──▶ active
    pending ◀──requeue──── active      (back in the queue; a transfer too)
       │                       │
       ├──────── close ────────┼──▶ closed
       ├──────── release ──────┼──▶ released   (handed back to the bot)
       ├──────── cancel ───────────▶ released   (the bot took back a waiting handoff)
       └──────── fail ─────────┴──▶ failed     (the agent side was never opened)

A handoff outside business hours is created failed (see `conversation.opening_status`).
Messages and metadata updates keep the status, but only some statuses allow them, so they
are in the table too. The store keeps the status as its string value.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Final

from bridge.errors import InvalidTransition


class Status(StrEnum):
    """Where a conversation is in its lifecycle; the value is what the store and API show."""

    PENDING = "pending"
    ACTIVE = "active"
    CLOSED = "closed"
    RELEASED = "released"
    FAILED = "failed"


# A conversation still under way: it has a join link, takes messages, and is the one a
# bot conversation or a customer meets again (the store's unique indexes hold it to one).
ACTIVE: Final = frozenset({Status.PENDING, Status.ACTIVE})


class Event(Enum):
    """What can happen to a conversation; the value is the verb InvalidTransition names."""

    JOIN = "join"
    TAKE = "take"
    CLOSE = "close"
    RELEASE = "release"
    FAIL = "fail"
    CANCEL = "cancel"
    # Back to the queue: the assigned agent did not answer in time, or went away.
    REQUEUE = "return to the queue"
    # To another agent, team or channel: it waits there (a transfer to an agent then
    # takes it for them at once).
    TRANSFER = "transfer"
    CUSTOMER_MESSAGE = "send a customer message to"
    AGENT_MESSAGE = "send an agent message to"
    UPDATE_METADATA = "update the metadata of"


# (status now, event) -> status after. A pair that is not here is refused.
TRANSITIONS: Final[Mapping[tuple[Status, Event], Status]] = MappingProxyType(
    {
        # An agent joins through the platform or a join link, or takes it from the desk.
        (Status.PENDING, Event.JOIN): Status.ACTIVE,
        (Status.PENDING, Event.TAKE): Status.ACTIVE,
        # Either side ends a chat that is under way, whether or not an agent came.
        (Status.PENDING, Event.CLOSE): Status.CLOSED,
        (Status.ACTIVE, Event.CLOSE): Status.CLOSED,
        (Status.PENDING, Event.RELEASE): Status.RELEASED,
        (Status.ACTIVE, Event.RELEASE): Status.RELEASED,
        # The bot takes back a handoff nobody has taken yet: it is the bot's again.
        (Status.PENDING, Event.CANCEL): Status.RELEASED,
        # An assigned chat nobody answered goes back to the queue; a transfer re-queues.
        (Status.ACTIVE, Event.REQUEUE): Status.PENDING,
        (Status.PENDING, Event.TRANSFER): Status.PENDING,
        (Status.ACTIVE, Event.TRANSFER): Status.PENDING,
        # The agent side's open was given up; an agent may have joined by link meanwhile.
        (Status.PENDING, Event.FAIL): Status.FAILED,
        (Status.ACTIVE, Event.FAIL): Status.FAILED,
        # Kept status: the customer may write while waiting, the agent only once joined.
        (Status.PENDING, Event.CUSTOMER_MESSAGE): Status.PENDING,
        (Status.ACTIVE, Event.CUSTOMER_MESSAGE): Status.ACTIVE,
        (Status.ACTIVE, Event.AGENT_MESSAGE): Status.ACTIVE,
        (Status.PENDING, Event.UPDATE_METADATA): Status.PENDING,
        (Status.ACTIVE, Event.UPDATE_METADATA): Status.ACTIVE,
    }
)


def allows(current: Status, event: Event) -> bool:
    """Whether a conversation in `current` may undergo `event`."""
    return (current, event) in TRANSITIONS


def transition(conversation_id: str, current: Status, event: Event) -> Status:
    """The status after `event`, or InvalidTransition when `current` does not allow it."""
    after = TRANSITIONS.get((current, event))
    if after is None:
        raise InvalidTransition(conversation_id, current, event.value)
    return after


def sources(event: Event) -> frozenset[Status]:
    """The statuses `event` may start from: the condition of the store's conditional update."""
    return frozenset(now for now, happening in TRANSITIONS if happening is event)


def target(event: Event) -> Status:
    """The status a status-changing `event` leads to, from whichever status it starts."""
    after = {TRANSITIONS[now, event] for now in sources(event)}
    if len(after) != 1:
        raise ValueError(f"{event.name} does not lead to one status: {sorted(after)}")
    return after.pop()
