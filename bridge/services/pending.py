"""What a change queues, said before it is written: jobs (timers among them) and events.

The handoff path decides everything in plain Python and writes it in one unit of work
(bridge/services/opening_unit.py); the ORM paths (a move, a take) write the same
decisions in their transactions. Both turn the same list into the same outbox rows and
timeline lines, in the order given (a lane's rows are delivered in that order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge.db.repo import Tx
from bridge.db.tables import ConversationRow, SubscriptionRow, TimelineRow
from bridge.events import announce, event_jobs
from bridge.relay.jobs import Job
from bridge.timeline import timeline_entry


@dataclass(frozen=True, slots=True)
class Later:
    """A job to queue: due at `due`, else at once."""

    job: Job
    due: datetime | None = None


@dataclass(frozen=True, slots=True)
class Announcement:
    """A lifecycle event to announce: to the bot if `to_bot`, and to subscribers."""

    event_type: str
    data: dict[str, Any] = field(default_factory=dict)
    to_bot: bool = False


Pending = Later | Announcement


def announces(pending: Sequence[Pending]) -> bool:
    """Whether any of it is an event (subscribers need reading only then)."""
    return any(isinstance(item, Announcement) for item in pending)


def pending_rows(
    row: ConversationRow,
    pending: Sequence[Pending],
    now: datetime,
    subscriptions: Sequence[SubscriptionRow],
) -> tuple[list[dict[str, Any]], list[TimelineRow]]:
    """The outbox rows' values and the timeline lines of `pending`, in its order."""
    outbox: list[dict[str, Any]] = []
    timeline: list[TimelineRow] = []
    for item in pending:
        if isinstance(item, Later):
            outbox.append(item.job.values(now, due=item.due))
            continue
        moment = timeline_entry(row, item.event_type, item.data, now)
        if moment is not None:
            timeline.append(moment)
        jobs = event_jobs(
            row, item.event_type, item.data, now, to_bot=item.to_bot, subscriptions=subscriptions
        )
        outbox.extend(job.values(now) for job in jobs)
    return outbox, timeline


async def write_pending(
    tx: Tx, row: ConversationRow, pending: Sequence[Pending], now: datetime
) -> None:
    """Queue `pending` in an ORM transaction, in its order."""
    for item in pending:
        if isinstance(item, Later):
            await tx.enqueue([item.job.to_row(now, due=item.due)])
        else:
            await announce(tx, row, item.event_type, item.data, now, to_bot=item.to_bot)
