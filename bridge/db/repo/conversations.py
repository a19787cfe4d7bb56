"""Conversations: lookups by bot, platform and customer, the queue, and status changes."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, text, update

from bridge.db.handoff_steps import FIND_ACTIVE_SQL
from bridge.db.repo.base import TxPart, affected
from bridge.db.tables import ConversationRow
from bridge.domain.status import ACTIVE, Event, Status, sources, target


class ConversationQueries(TxPart):
    """A conversation: finding it, queueing it, and moving it between statuses."""

    async def insert_conversation(self, row: ConversationRow) -> None:
        """Insert; the active-uniqueness indexes raise IntegrityError on a duplicate."""
        self.session.add(row)
        await self.session.flush()

    async def get_conversation(
        self, conversation_id: str, *, lock: bool = False
    ) -> ConversationRow | None:
        """The conversation with this id, if any; `lock` holds its row until the commit.

        Locking serializes the transactions that append to one conversation (PostgreSQL;
        SQLite has one writer anyway): ids and `seq`s taken after the lock commit in the
        order they were taken, so no lane's later row becomes visible before an earlier one.
        """
        if lock:
            return await self.session.get(
                ConversationRow, conversation_id, with_for_update=True, populate_existing=True
            )
        return await self.session.get(ConversationRow, conversation_id)

    async def find_active(
        self, bot_platform: str, bot_conversation_id: str, main_channel: str, customer_id: str
    ) -> ConversationRow | None:
        """The active conversation of this bot conversation, or of this customer on this channel."""
        # The partial unique indexes' own condition, as text: a bound IN list would not
        # match it, and the lookup would walk every waiting conversation.
        found = await self.session.execute(
            text(FIND_ACTIVE_SQL),
            {
                "bot_platform": bot_platform,
                "bot_conversation_id": bot_conversation_id,
                "main_channel": main_channel,
                "customer_id": customer_id,
            },
        )
        conversation_id = found.scalar_one_or_none()
        if conversation_id is None:
            return None
        return await self.session.get(ConversationRow, conversation_id)

    async def find_for_platform(
        self,
        channel: str,
        *,
        external_ref: str | None = None,
        customer_id: str | None = None,
        main_channel: str | None = None,
    ) -> ConversationRow | None:
        """The newest conversation on a channel with this platform id, else the active one
        of this customer (searched across the main channel's channels when given)."""
        if external_ref is not None:
            row = await self._newest(
                ConversationRow.channel == channel, ConversationRow.external_ref == external_ref
            )
            if row is not None or customer_id is None:
                return row
        if customer_id is None:
            return None
        scope = (
            ConversationRow.main_channel == main_channel
            if main_channel is not None
            else ConversationRow.channel == channel
        )
        query = (
            select(ConversationRow)
            .where(
                scope,
                ConversationRow.customer_id == customer_id,
                ConversationRow.status.in_(ACTIVE),
            )
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def find_by_bot_conversation(
        self, bot_platform: str, bot_conversation_id: str
    ) -> ConversationRow | None:
        """The newest conversation handed over from this bot conversation."""
        return await self._newest(
            ConversationRow.bot_platform == bot_platform,
            ConversationRow.bot_conversation_id == bot_conversation_id,
        )

    async def _newest(self, *conditions: ColumnElement[bool]) -> ConversationRow | None:
        # A bot or platform id may be reused after a conversation ended: the latest one counts.
        query = (
            select(ConversationRow)
            .where(*conditions)
            .order_by(ConversationRow.created_at.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def active_of_customer(self, customer_id: str) -> list[ConversationRow]:
        """The customer's active conversations on every main channel."""
        query = select(ConversationRow).where(
            ConversationRow.customer_id == customer_id,
            ConversationRow.status.in_(ACTIVE),
        )
        return list((await self.session.execute(query)).scalars())

    async def pending_conversations(self, channel: str | None = None) -> list[ConversationRow]:
        """Conversations waiting for an agent, in queue order (priority, then age)."""
        query = select(ConversationRow).where(
            ConversationRow.status == Status.PENDING, ConversationRow.assignee_id.is_(None)
        )
        if channel is not None:
            query = query.where(ConversationRow.channel == channel)
        # The id breaks ties in age, as the position count does (repo/queue.py).
        query = query.order_by(
            ConversationRow.channel,
            ConversationRow.priority.desc(),
            ConversationRow.created_at,
            ConversationRow.id,
        )
        return list((await self.session.execute(query)).scalars())

    async def assigned_to(self, agent_id: str) -> list[ConversationRow]:
        """The agent's conversations that are still active, oldest first."""
        query = (
            select(ConversationRow)
            .where(
                ConversationRow.assignee_id == agent_id,
                ConversationRow.status.in_(ACTIVE),
            )
            .order_by(ConversationRow.assigned_at, ConversationRow.id)
        )
        return list((await self.session.execute(query)).scalars())

    async def recent_waits(self, channel: str, limit: int) -> list[float]:
        """Seconds the last `limit` assigned conversations of a channel waited."""
        query = (
            select(ConversationRow.created_at, ConversationRow.assigned_at)
            .where(ConversationRow.channel == channel, ConversationRow.assigned_at.is_not(None))
            .order_by(ConversationRow.assigned_at.desc())
            .limit(limit)
        )
        rows = (await self.session.execute(query)).all()
        return [(assigned - created).total_seconds() for created, assigned in rows if assigned]

    async def transition(
        self,
        conversation_id: str,
        from_statuses: Collection[Status],
        to_status: Status,
        **fields: Any,
    ) -> bool:
        """Move to `to_status` only if the status is still one of `from_statuses`.

        A conditional UPDATE, so two replicas racing on the same conversation cannot
        both win; the loser sees False.
        """
        result = await self.session.execute(
            update(ConversationRow)
            .where(ConversationRow.id == conversation_id)
            .where(ConversationRow.status.in_(from_statuses))
            .values(status=to_status, **fields)
            .execution_options(synchronize_session=False)
        )
        return affected(result) > 0

    async def assign(
        self, conversation_id: str, agent_id: str, agent: dict[str, Any], now: datetime
    ) -> bool:
        """Give a pending, unassigned chat to an agent; False when someone was faster."""
        result = await self.session.execute(
            update(ConversationRow)
            .where(
                ConversationRow.id == conversation_id,
                ConversationRow.status.in_(sources(Event.TAKE)),
                ConversationRow.assignee_id.is_(None),
            )
            .values(
                status=target(Event.TAKE),
                assignee_id=agent_id,
                assigned_at=now,
                agent=agent,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return affected(result) > 0

    async def update_conversation(self, conversation_id: str, **fields: Any) -> None:
        """Set fields on a conversation."""
        await self.session.execute(
            update(ConversationRow)
            .where(ConversationRow.id == conversation_id)
            .values(**fields)
            .execution_options(synchronize_session=False)
        )
