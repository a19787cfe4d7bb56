"""What a supervisor reads: conversations by filter, page by page, and the queues' heads.

Read-only. A list is paged by keyset on `(created_at, id)`, never by OFFSET, so a page
costs the same however far the supervisor has scrolled and a chat handed off meanwhile
neither repeats nor hides a row. Indexes: `ix_conversations_created` and
`ix_conversations_org_created` for the order, the queue's index for a channel's head,
and `ix_outbox_conversation_stuck` (partial: only deliveries not yet delivered) for the
stuck-delivery counts.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, Select, case, func, select, text, tuple_

from bridge.db.repo.base import TxPart
from bridge.db.tables import STUCK_SQL, ConversationRow, OutboxRow
from bridge.domain.status import ACTIVE, Status


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    """Which conversations a list holds; None and empty mean "any"."""

    organization_id: str | None = None
    statuses: frozenset[Status] = frozenset()
    channel: str | None = None
    team_id: str | None = None
    agent_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    # Only chats still waiting for an agent that were handed off at or before this time.
    waiting_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Keyset:
    """Where a page starts: after (or, newest first, before) this row of the order."""

    created_at: datetime
    id: str


class ChannelQueue(NamedTuple):
    """A channel's waiting chats: how many, and since when the oldest waits."""

    channel: str
    length: int
    oldest_created_at: datetime


class ChangeMarker(NamedTuple):
    """What changes when any conversation under way changes or ends (see `change_marker`)."""

    under_way: int
    waiting: int
    last_update: datetime | None


def _conditions(chosen: ConversationFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if chosen.organization_id is not None:
        conditions.append(ConversationRow.organization_id == chosen.organization_id)
    if chosen.statuses:
        conditions.append(ConversationRow.status.in_(sorted(chosen.statuses)))
    if chosen.channel is not None:
        conditions.append(ConversationRow.channel == chosen.channel)
    if chosen.team_id is not None:
        conditions.append(ConversationRow.team_id == chosen.team_id)
    if chosen.agent_id is not None:
        conditions.append(ConversationRow.assignee_id == chosen.agent_id)
    if chosen.created_from is not None:
        conditions.append(ConversationRow.created_at >= chosen.created_from)
    if chosen.created_to is not None:
        conditions.append(ConversationRow.created_at < chosen.created_to)
    if chosen.waiting_since is not None:
        conditions.append(ConversationRow.status == Status.PENDING)
        conditions.append(ConversationRow.created_at <= chosen.waiting_since)
    return conditions


def _page(
    chosen: ConversationFilter, start: Keyset | None, newest_first: bool, limit: int
) -> Select[ConversationRow]:
    key = tuple_(ConversationRow.created_at, ConversationRow.id)
    query = select(ConversationRow).where(*_conditions(chosen))
    if start is not None:
        # One row-value comparison (each value bound as its column's type): both
        # backends read it as a range of the index.
        mark = (start.created_at, start.id)
        query = query.where(key < mark if newest_first else key > mark)
    if newest_first:
        query = query.order_by(ConversationRow.created_at.desc(), ConversationRow.id.desc())
    else:
        query = query.order_by(ConversationRow.created_at, ConversationRow.id)
    return query.limit(limit)


class SupervisionQueries(TxPart):
    """Conversations listed for a supervisor, the queues' heads and stuck deliveries."""

    async def list_conversations(
        self,
        chosen: ConversationFilter,
        start: Keyset | None,
        *,
        newest_first: bool,
        limit: int,
    ) -> list[ConversationRow]:
        """Up to `limit` conversations matching `chosen`, in `(created_at, id)` order."""
        query = _page(chosen, start, newest_first, limit)
        return list((await self.session.execute(query)).scalars())

    async def stuck_deliveries(
        self, conversation_ids: Collection[str]
    ) -> dict[str, dict[str, int]]:
        """Per conversation, how many of its deliveries are pending and how many dead."""
        if not conversation_ids:
            return {}
        query = (
            select(OutboxRow.conversation_id, OutboxRow.status, func.count())
            .where(
                OutboxRow.conversation_id.in_(sorted(conversation_ids)),
                # The partial index's own condition, as literal text: a planner uses the
                # index only when it can prove this, which bound parameters can hide.
                text(STUCK_SQL),
            )
            .group_by(OutboxRow.conversation_id, OutboxRow.status)
        )
        counts: dict[str, dict[str, int]] = {}
        for conversation_id, status, count in (await self.session.execute(query)).all():
            if conversation_id is not None:
                counts.setdefault(conversation_id, {})[status] = int(count)
        return counts

    async def waiting_channels(self, organization_id: str | None) -> list[ChannelQueue]:
        """Every channel with chats waiting (of `organization_id`, or any), by name."""
        query = select(
            ConversationRow.channel, func.count(), func.min(ConversationRow.created_at)
        ).where(ConversationRow.status == Status.PENDING)
        if organization_id is not None:
            query = query.where(ConversationRow.organization_id == organization_id)
        query = query.group_by(ConversationRow.channel).order_by(ConversationRow.channel)
        rows = (await self.session.execute(query)).all()
        return [ChannelQueue(channel, int(count), oldest) for channel, count, oldest in rows]

    async def queue_head(
        self, channel: str, organization_id: str | None, limit: int
    ) -> list[ConversationRow]:
        """The channel's first `limit` waiting chats in queue order (priority, age, id)."""
        query = select(ConversationRow).where(
            ConversationRow.channel == channel, ConversationRow.status == Status.PENDING
        )
        if organization_id is not None:
            query = query.where(ConversationRow.organization_id == organization_id)
        query = query.order_by(
            ConversationRow.priority.desc(), ConversationRow.created_at, ConversationRow.id
        ).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def change_marker(self, organization_id: str | None) -> ChangeMarker:
        """How many conversations are under way (how many of them wait), and the latest
        change to one of them.

        Every change to a conversation under way stamps its `updated_at`; one that ends
        leaves the set (the count drops, unless another joined it, whose stamp is then the
        latest). So the marker differs after any change a supervisor would see, and reads
        only the rows under way, on the status index.
        """
        waiting = case((ConversationRow.status == Status.PENDING, 1), else_=0)
        query = select(
            func.count(), func.coalesce(func.sum(waiting), 0), func.max(ConversationRow.updated_at)
        ).where(ConversationRow.status.in_(sorted(ACTIVE)))
        if organization_id is not None:
            query = query.where(ConversationRow.organization_id == organization_id)
        count, pending, latest = (await self.session.execute(query)).one()
        return ChangeMarker(int(count), int(pending), latest)
