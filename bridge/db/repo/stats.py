"""What the store holds right now, in a few grouped counts: read at each metrics scrape.

Each count reads only rows that are still live (conversations pending or active, the
outbox's pending and dead rows, agents), along an index whose leading column is the
status, so a scrape costs what the live work costs, never the store's whole history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from bridge.db.repo.base import TxPart
from bridge.db.tables import AgentRow, ConversationRow, OutboxRow
from bridge.domain.status import ACTIVE, Status


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """How many conversations of one channel are in one status, and the oldest's start."""

    channel: str
    status: str
    count: int
    oldest: datetime | None


@dataclass(frozen=True, slots=True)
class OutboxState:
    """The outbox's waiting and dead rows."""

    pending: int = 0
    # The earliest time a pending row was due (or is due): its age is how late it is.
    earliest_due: datetime | None = None
    dead: int = 0


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """The live conversations, the outbox and the agents' presence, read together."""

    conversations: list[ChannelStatus] = field(default_factory=list)
    outbox: OutboxState = field(default_factory=OutboxState)
    agents: dict[str, int] = field(default_factory=dict)


class StatsQueries(TxPart):
    """Grouped counts for monitoring; read-only."""

    async def snapshot(self) -> StoreSnapshot:
        """Three grouped statements: conversations, outbox, agents."""
        live = await self.session.execute(
            select(
                ConversationRow.channel,
                ConversationRow.status,
                func.count(),
                func.min(ConversationRow.created_at),
            )
            .where(ConversationRow.status.in_(sorted(ACTIVE)))
            .group_by(ConversationRow.channel, ConversationRow.status)
        )
        conversations = [
            ChannelStatus(channel, Status(status).value, int(count), oldest)
            for channel, status, count, oldest in live
        ]
        outbox = await self.session.execute(
            select(OutboxRow.status, func.count(), func.min(OutboxRow.next_attempt_at))
            .where(OutboxRow.status.in_(("pending", "dead")))
            .group_by(OutboxRow.status)
        )
        by_status = {status: (int(count), due) for status, count, due in outbox}
        pending, earliest_due = by_status.get("pending", (0, None))
        dead = by_status.get("dead", (0, None))[0]
        agents = await self.session.execute(
            select(AgentRow.presence, func.count()).group_by(AgentRow.presence)
        )
        return StoreSnapshot(
            conversations,
            OutboxState(pending, earliest_due, dead),
            {presence: int(count) for presence, count in agents},
        )
