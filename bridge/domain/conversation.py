"""The small decisions about one conversation that follow from its status.

The services ask these instead of comparing statuses themselves, so a rule such as
"joining a chat an agent already has changes nothing" is written once.
"""

from __future__ import annotations

from bridge.domain.status import Event, Status, allows


def opening_status(outside_hours: bool) -> Status:
    """A new handoff waits for an agent; outside business hours it fails at once."""
    return Status.FAILED if outside_hours else Status.PENDING


def join_changes_nothing(current: Status) -> bool:
    """A join of a chat an agent already has is a repeat (a redelivered platform event)."""
    return current == Status.ACTIVE


def reply_joins_first(current: Status) -> bool:
    """An agent's reply to a chat nobody joined is its join: some platforms send no join."""
    return allows(current, Event.JOIN)


def waiting_for_agent(current: Status, assignee_id: str | None) -> bool:
    """In the queue: nobody has joined or taken it, so it may be offered, escalated, taken."""
    return allows(current, Event.TAKE) and assignee_id is None
