"""The queue of waiting chats: positions counted on the index, and what is due to be announced.

Nothing here writes to every waiting row: a position is a count over the index
`ix_conversations_queue (channel, status, priority, created_at)` when it is read, a
change to a channel's queue is one inserted marker row, and the announcer writes only
the positions that changed since they were last announced.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    ScalarSelect,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)

from bridge.db.repo.base import TxPart, affected
from bridge.db.tables import ConversationRow, QueueChangeRow, QueueChannelRow
from bridge.domain.status import Status

# A channel never announced counts as announced long ago.
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def _bounded_count(*condition: ColumnElement[bool]) -> ScalarSelect[int]:
    """How many waiting chats of `:channel` meet `condition`, read no further than `:limit`."""
    matching = (
        select(literal(1))
        .where(
            ConversationRow.channel == bindparam("channel"),
            ConversationRow.status == Status.PENDING,
            *condition,
        )
        .limit(bindparam("limit"))
        .subquery()
    )
    return select(func.count()).select_from(matching).scalar_subquery()


# Queue order is priority (higher first), then age, then id: the chats ahead are three
# ranges of the queue's index. Built once, so asking costs one cached statement.
_PRIORITY = bindparam("priority", type_=Integer())
_CREATED = bindparam("created_at", type_=ConversationRow.created_at.type)
_AHEAD = select(
    _bounded_count(ConversationRow.priority > _PRIORITY),
    _bounded_count(ConversationRow.priority == _PRIORITY, ConversationRow.created_at < _CREATED),
    # Ties in age are rare; only they are read from the table, for the id.
    _bounded_count(
        ConversationRow.priority == _PRIORITY,
        ConversationRow.created_at == _CREATED,
        ConversationRow.id < bindparam("id"),
    ),
)


class Waiting(NamedTuple):
    """A waiting chat in queue order, with the position and wait last announced for it."""

    id: str
    announced_position: int | None
    announced_eta: int | None


class Announced(NamedTuple):
    """A position and estimated wait to record as announced."""

    id: str
    position: int
    eta: int | None


class QueueQueries(TxPart):
    """Positions in a channel's queue, its change markers and its announcement turns."""

    async def ahead_in_queue(self, row: ConversationRow, limit: int) -> int | None:
        """How many waiting chats of the channel are ahead of `row`; None past `limit`.

        Each part of the count reads no further than `limit + 1` entries of the index, so
        its cost is bounded however long the queue is.
        """
        params = {
            "channel": row.channel,
            "priority": row.priority,
            "created_at": row.created_at,
            "id": row.id,
            "limit": limit + 1,
        }
        counts = (await self.session.execute(_AHEAD, params)).one()
        ahead = sum(int(count) for count in counts)
        return ahead if ahead <= limit else None

    async def mark_queue_changed(self, channel: str, now: datetime) -> None:
        """Record that the channel's queue changed, in the transaction of the change."""
        await self.session.execute(insert(QueueChangeRow).values(channel=channel, changed_at=now))

    async def changed_queues(self) -> list[str]:
        """Channels whose queue changed since they were last announced."""
        query = select(QueueChangeRow.channel).distinct().order_by(QueueChangeRow.channel)
        return list((await self.session.execute(query)).scalars())

    async def claim_queue(self, channel: str, now: datetime, every: timedelta) -> datetime | None:
        """Take this channel's turn to announce; None when taken, else when it may next be.

        One conditional UPDATE: of replicas claiming together one wins, and a channel
        announced less than `every` ago is not announced again yet.
        """
        await self._insert_new(
            QueueChannelRow, {"channel": channel, "announced_at": _NEVER}, ["channel"]
        )
        claimed = await self.session.execute(
            update(QueueChannelRow)
            .where(QueueChannelRow.channel == channel, QueueChannelRow.announced_at <= now - every)
            .values(announced_at=now)
            .execution_options(synchronize_session=False)
        )
        if affected(claimed):
            return None
        query = select(QueueChannelRow.announced_at).where(QueueChannelRow.channel == channel)
        announced = (await self.session.execute(query)).scalar_one()
        return announced + every

    async def take_queue_changes(self, channel: str) -> int:
        """Remove the channel's change markers; those committed after this stay for next time."""
        result = await self.session.execute(
            delete(QueueChangeRow).where(QueueChangeRow.channel == channel)
        )
        return affected(result)

    async def waiting_in_order(self, channel: str) -> list[Waiting]:
        """The channel's waiting chats in queue order, with what was last announced to each."""
        query = (
            select(
                ConversationRow.id,
                ConversationRow.queue_position,
                ConversationRow.queue_eta_seconds,
            )
            .where(ConversationRow.channel == channel, ConversationRow.status == Status.PENDING)
            .order_by(
                ConversationRow.priority.desc(), ConversationRow.created_at, ConversationRow.id
            )
        )
        return [Waiting(*row) for row in (await self.session.execute(query)).all()]

    async def set_announced(self, announced: Sequence[Announced]) -> list[ConversationRow]:
        """Record positions as announced; returns those conversations still waiting.

        A chat taken since the queue was read (on another replica, say) is left out: its
        bot hears that an agent joined, not a position after it.
        """
        if not announced:
            return []
        waiting = ConversationRow.status == Status.PENDING
        await self.session.execute(
            # Nothing of these rows is loaded in this session: nothing to synchronize.
            update(ConversationRow).where(waiting).execution_options(synchronize_session=None),
            [
                {"id": a.id, "queue_position": a.position, "queue_eta_seconds": a.eta}
                for a in announced
            ],
        )
        query = select(ConversationRow).where(
            ConversationRow.id.in_([a.id for a in announced]), waiting
        )
        return list((await self.session.execute(query)).scalars())
