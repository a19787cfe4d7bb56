"""A new handoff as one unit of work: everything it writes, and its place in the queue.

The opening service (opening.py) routes the handoff and builds the conversation in plain
Python; this unit then checks for an active conversation of the same bot conversation or
customer, reads the directory when the chat names agents, makes the first offers,
writes the conversation, its history, deliveries, timers and timeline, marks its queue
changed, and counts its place, all in one transaction. On SQLite the handoffs waiting at
the same moment share that transaction and its one fsync (bridge/db/runner.py).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from bridge.db import handoff_steps as hs
from bridge.db import steps
from bridge.db.tables import ConversationRow, MessageRow, SubscriptionRow
from bridge.db.units import Unit
from bridge.domain.conversation import waiting_for_agent
from bridge.domain.status import Status
from bridge.routing.steps.escalation import Directory
from bridge.services.pending import Pending, announces, pending_rows
from bridge.services.queue import NOT_QUEUED, WAIT_SAMPLE, QueueSpot, estimate
from bridge.services.routing_state import DirectoryAgent, directory_of

# Decides the offers of a new conversation once the directory is read: sets the target
# on the row and says what to queue with it (Assignment.placement and the landing's).
Place = Callable[[ConversationRow, Directory], list[Pending]]


@dataclass(frozen=True, slots=True)
class OpenPlan:
    """A new handoff's conversation and what goes with it, decided before the unit runs."""

    row: ConversationRow
    history: Sequence[MessageRow]
    # What is queued with the conversation, before what `place` adds (events, the
    # platform's open); asked once the history is stored, as the open carries its seqs.
    pending: Callable[[], list[Pending]]
    now: datetime
    # Reads the directory and places the chat (None: it failed at once, outside hours).
    place: Place | None
    names_agents: bool
    count_limit: int


class OpenOutcome(NamedTuple):
    """The active conversation found instead (its id), or the new one's queue spot."""

    existing_id: str | None
    spot: QueueSpot = NOT_QUEUED


def open_unit(plan: OpenPlan) -> Unit[OpenOutcome]:
    """Open the planned conversation unless one is active for its bot conversation or
    customer (then answer that one's id, writing nothing)."""
    row = plan.row
    found = yield hs.find_active(
        row.bot_platform, row.bot_conversation_id, row.main_channel, row.customer_id
    )
    if found["existing"] is not None:
        return OpenOutcome(str(found["existing"]))
    # The offers first: they are columns of the conversation's row.
    placed: list[Pending] = []
    if plan.place is not None:
        directory = Directory()
        if plan.names_agents:
            agents = yield hs.agents()
            members = yield hs.team_members()
            directory = directory_of(
                [DirectoryAgent(**agent) for agent in agents],
                [(m["team_id"], m["agent_id"]) for m in members],
            )
        placed = plan.place(row, directory)
    yield hs.insert_conversation(row)
    if plan.history:
        seqs = yield hs.insert_messages(plan.history)
        for message, seq in zip(plan.history, sorted(r["seq"] for r in seqs), strict=True):
            message.seq = seq
    pending = [*plan.pending(), *placed]
    subscribers: list[SubscriptionRow] = []
    if found["has_subscribers"] and announces(pending):
        subscribers = steps.subscription_rows((yield steps.subscriptions()))
    outbox, timeline = pending_rows(row, pending, plan.now, subscribers)
    if outbox:
        yield hs.enqueue_all(outbox)
    if timeline:
        yield hs.insert_timeline(timeline)
    if row.status != Status.PENDING:
        return OpenOutcome(None)
    yield hs.mark_queue_changed(row.channel, plan.now)
    spot = yield from spot_in_queue(row, plan.count_limit)
    return OpenOutcome(None, spot)


def spot_in_queue(row: ConversationRow, count_limit: int) -> Unit[QueueSpot]:
    """The chat's place in its channel's queue (bridge/services/queue.py's `spot_of`)."""
    if not waiting_for_agent(row.status, row.assignee_id):
        return NOT_QUEUED
    ahead = yield hs.ahead_in_queue(row, count_limit)
    # Past the count's bound the position last announced stands in (None for a new chat).
    position = int(ahead) + 1 if int(ahead) <= count_limit else row.queue_position
    if position is None:
        return QueueSpot()
    waits = hs.waits((yield hs.recent_waits(row.channel, WAIT_SAMPLE)))
    typical = statistics.median(waits) if waits else None
    return QueueSpot(position, estimate(typical, position))
