"""The outbox: deliveries that commit with the change that caused them, leased in lane order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from bridge.db.notify import notify_outbox
from bridge.db.repo.base import TxPart, affected
from bridge.db.tables import OutboxRow


class OutboxQueries(TxPart):
    """Deliveries waiting, leased, done or dead."""

    # Once per transaction is enough: PostgreSQL sends a transaction's notifications at commit.
    _replicas_notified = False

    async def enqueue(self, rows: Sequence[OutboxRow]) -> None:
        """Add deliveries; they commit (or roll back) with the change that caused them."""
        self.session.add_all(rows)
        await self.session.flush()
        if rows and not self._replicas_notified:
            # In the same transaction, so every replica's worker wakes exactly at commit.
            await notify_outbox(self.session)
            self._replicas_notified = True

    async def enqueue_values(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add deliveries given as their columns (jobs' `values`), in one statement run
        for all of them: for many rows at once, without an ORM object for each."""
        if not rows:
            return
        await self.session.execute(insert(OutboxRow), list(rows))
        if not self._replicas_notified:
            await notify_outbox(self.session)
            self._replicas_notified = True

    async def mark_delivered(self, row_id: int, now: datetime) -> None:
        """The receiver accepted the delivery."""
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row_id)
            .values(
                status="delivered",
                attempts=OutboxRow.attempts + 1,
                delivered_at=now,
                lease_until=None,
                last_error=None,
            )
        )

    async def mark_dead(self, row_id: int, error: str, *, count_attempt: bool = True) -> None:
        """Give up on the delivery; it stays visible and can be retried by hand."""
        values: dict[str, Any] = {"status": "dead", "lease_until": None, "last_error": error[:2000]}
        if count_attempt:
            values["attempts"] = OutboxRow.attempts + 1
        await self.session.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(**values))

    async def cancel_lane(self, lane: str, reason: str) -> None:
        """Drop the lane's pending deliveries (their conversation failed to open)."""
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.lane == lane, OutboxRow.status == "pending")
            .values(status="cancelled", lease_until=None, last_error=reason)
        )

    async def prune_outbox(self, before: datetime) -> int:
        """Forget delivered and cancelled deliveries older than `before` (dead ones stay)."""
        result = await self.session.execute(
            delete(OutboxRow).where(
                OutboxRow.status.in_(("delivered", "cancelled")), OutboxRow.created_at < before
            )
        )
        return affected(result)

    async def list_outbox(
        self, *, status: str | None, conversation_id: str | None, after_id: int, limit: int
    ) -> list[OutboxRow]:
        """Deliveries for the operator, oldest first."""
        query = select(OutboxRow).where(OutboxRow.id > after_id)
        if status is not None:
            query = query.where(OutboxRow.status == status)
        if conversation_id is not None:
            query = query.where(OutboxRow.conversation_id == conversation_id)
        rows = await self.session.execute(query.order_by(OutboxRow.id).limit(limit))
        return list(rows.scalars())

    async def get_outbox(self, row_id: int) -> OutboxRow | None:
        """One delivery."""
        return await self.session.get(OutboxRow, row_id)

    async def requeue(self, row_id: int, now: datetime) -> bool:
        """Put a dead delivery back in line, with a fresh attempt count."""
        result = await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row_id, OutboxRow.status == "dead")
            .values(status="pending", attempts=0, next_attempt_at=now, lease_until=None)
        )
        return affected(result) > 0

    async def pending_count(self) -> int:
        """How many deliveries are waiting."""
        query = select(func.count()).select_from(OutboxRow).where(OutboxRow.status == "pending")
        return int((await self.session.execute(query)).scalar_one())
