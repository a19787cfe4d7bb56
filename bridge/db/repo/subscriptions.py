"""Subscriptions: who receives signed conversation events."""

from __future__ import annotations

from sqlalchemy import select, update

from bridge.db.repo.base import TxPart
from bridge.db.tables import OutboxRow, SubscriptionRow


class SubscriptionQueries(TxPart):
    """Subscribers to conversation events."""

    # Read once per transaction: a handoff or a close announces several events, each to
    # the subscribers, and they do not change under it (unless this transaction does).
    _subscribers: list[SubscriptionRow] | None = None

    async def add_subscription(self, row: SubscriptionRow) -> None:
        """Register a subscriber."""
        self._subscribers = None
        self.session.add(row)
        await self.session.flush()

    async def subscriptions(self) -> list[SubscriptionRow]:
        """Every subscriber, oldest first."""
        if self._subscribers is None:
            query = select(SubscriptionRow).order_by(SubscriptionRow.created_at)
            self._subscribers = list((await self.session.execute(query)).scalars())
        return list(self._subscribers)

    async def get_subscription(self, subscription_id: str) -> SubscriptionRow | None:
        """One subscriber."""
        return await self.session.get(SubscriptionRow, subscription_id)

    async def delete_subscription(self, subscription_id: str) -> bool:
        """Remove a subscriber; its queued events are cancelled."""
        self._subscribers = None
        row = await self.session.get(SubscriptionRow, subscription_id)
        if row is None:
            return False
        await self.session.delete(row)
        await self.session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.kind == "subscription.event",
                OutboxRow.target == subscription_id,
                OutboxRow.status == "pending",
            )
            .values(status="cancelled", last_error="subscription deleted")
        )
        return True
