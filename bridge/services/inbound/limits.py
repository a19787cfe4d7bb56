"""Platform events held to what the store can keep, right after an adapter parses them.

A platform's ids and names end up in columns of fixed length (a message key in
`messages.external_id`, an agent id in `agents.id`); PostgreSQL refuses a longer value, a
NUL, or a lone surrogate, and the whole webhook used to fail with a 5xx. Platforms
redeliver a webhook that failed, so that event came back for ever. An event that cannot
be stored is therefore dropped with a warning naming the field (never the value), and the
webhook is still answered as usual: the same payload can never fit, and a 2xx is the one
answer every platform takes as "delivered". The webhook's other events are applied.

An agent's text longer than the bridge keeps is shortened instead, with a warning: the
customer gets most of a long reply rather than none of it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

from bridge.db.lengths import column_length
from bridge.db.tables import AgentRow, MessageRow
from bridge.errors import FieldProblem
from bridge.input_limits import text_problem
from bridge.models import MAX_TEXT
from bridge.ports.agent_side import InboundEvent

log = logging.getLogger(__name__)

# The event's fields that are stored, and the length of the column that keeps each.
STORED_LENGTHS = {
    "event_id": column_length(MessageRow, "external_id"),
    "agent_id": column_length(AgentRow, "id"),
    "agent_name": column_length(AgentRow, "name"),
}


def event_problems(event: InboundEvent) -> list[FieldProblem]:
    """Why an event cannot be stored: a value too long, a NUL, or a lone surrogate."""
    problems = []
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if not isinstance(value, str):
            continue
        problem = text_problem(value)
        limit = STORED_LENGTHS.get(field.name)
        if problem is None and limit is not None and len(value) > limit:
            problem = f"is {len(value)} characters long; at most {limit} can be kept"
        if problem:
            problems.append(FieldProblem(field.name, problem))
    return problems


def storable_events(channel: str, events: Iterable[InboundEvent]) -> list[InboundEvent]:
    """The events that can be applied; the others are logged and left out."""
    kept = []
    for event in events:
        problems = event_problems(event)
        if problems:
            log.warning(
                "inbound.refused",
                extra={
                    "channel": channel,
                    "kind": event.kind,
                    "why": "; ".join(f"{p.field} {p.problem}" for p in problems),
                },
            )
            continue
        if event.text is not None and len(event.text) > MAX_TEXT:
            log.warning(
                "inbound.text_shortened",
                extra={"channel": channel, "event": event.event_id, "length": len(event.text)},
            )
            event = dataclasses.replace(event, text=event.text[: MAX_TEXT - 1] + "…")
        kept.append(event)
    return kept
