"""Platform events that arrive before their conversation is known: parked, then applied.

A platform may report on a chat before the bridge has stored the chat's platform id:
Chatvisor's "status DONE" can come ~50 ms after the handoff, while the open still waits
for Chatvisor's answer. Such an event is parked in the store under its channel and
platform id. The transaction in which the open stores that id also queues a
ReplayInbound job, which applies the parked events in the order they arrived. Applying is
idempotent (see service.py beside this module) and a copy parked twice is kept once, so
an event applied from the park and redelivered by the platform is applied once.

Parking is bounded in time: an event still waiting after `relay.keep_early_events_seconds`
is dropped (housekeeping removes it, with a log line), and so is one that arrived before
its conversation was created, since it was about an earlier chat with the same id.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from bridge.attachments import read_stored
from bridge.db.tables import ConversationRow, ParkedEventRow
from bridge.ports.agent_side import InboundEvent

# Replicas stamp arrival and creation with their own clocks; this much disagreement is
# not taken for "the event came before the conversation".
CLOCK_SKEW = timedelta(seconds=2)
# The length of parked_events.external_ref and .event_id: a longer platform id can match
# no conversation (conversations.external_ref is as long).
_KEY_LENGTH = 256
_FIELDS = frozenset(f.name for f in dataclasses.fields(InboundEvent))


def can_park(event: InboundEvent) -> bool:
    """Whether an unmatched event may be for a chat whose platform id is yet to be stored."""
    return (
        event.kind != "agent.presence"
        and bool(event.external_ref)
        and len(event.external_ref or "") <= _KEY_LENGTH
        and len(event.event_id) <= _KEY_LENGTH
    )


def parked_row(channel: str, event: InboundEvent, now: datetime) -> ParkedEventRow:
    """The stored form of an early event."""
    assert event.external_ref is not None
    return ParkedEventRow(
        channel=channel,
        external_ref=event.external_ref,
        event_id=event.event_id,
        event={
            **dataclasses.asdict(event),
            "attachments": [a.model_dump() for a in event.attachments],
        },
        received_at=now,
    )


def event_of(row: ParkedEventRow) -> InboundEvent:
    """The event a parked row holds (fields a later version dropped are ignored)."""
    data: dict[str, Any] = {k: v for k, v in row.event.items() if k in _FIELDS}
    # Rows parked before attachments existed have none.
    data["attachments"] = read_stored(data.get("attachments"))
    return InboundEvent(**data)


def reason_to_drop(
    row: ParkedEventRow, conversation: ConversationRow, now: datetime, keep: timedelta
) -> str | None:
    """Why a parked event must not be applied to this conversation, if it must not."""
    if row.received_at < now - keep:
        return "waited longer than relay.keep_early_events_seconds"
    if row.received_at < conversation.created_at - CLOCK_SKEW:
        return "arrived before the conversation was created"
    return None
