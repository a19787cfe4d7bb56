"""The outbox: deliveries that commit with the change that caused them, leased in lane order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.orm import aliased

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

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxRow]:
        """Lease up to `limit` deliveries that are due and at the head of their lane.

        Only the oldest pending row of a lane is eligible, and not while it is leased,
        so one lane is delivered by one worker at a time, in order, across replicas.
        """
        earlier = aliased(OutboxRow)
        candidates = (
            select(OutboxRow.id)
            .where(
                OutboxRow.status == "pending",
                OutboxRow.next_attempt_at <= now,
                or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now),
                ~exists().where(
                    earlier.lane == OutboxRow.lane,
                    earlier.status == "pending",
                    earlier.id < OutboxRow.id,
                ),
            )
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        ids = list((await self.session.execute(candidates)).scalars())
        claimed: list[int] = []
        for row_id in ids:
            result = await self.session.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id == row_id,
                    OutboxRow.status == "pending",
                    or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now),
                )
                .values(lease_until=now + lease)
                .execution_options(synchronize_session=False)
            )
            if affected(result):
                claimed.append(row_id)
        if not claimed:
            return []
        rows = await self.session.execute(
            select(OutboxRow).where(OutboxRow.id.in_(claimed)).order_by(OutboxRow.id)
        )
        return list(rows.scalars())

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

    async def mark_retry(self, row_id: int, next_attempt_at: datetime, error: str) -> None:
        """The attempt failed for a passing reason; try again later."""
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row_id)
            .values(
                attempts=OutboxRow.attempts + 1,
                next_attempt_at=next_attempt_at,
                lease_until=None,
                last_error=error[:2000],
            )
        )

    async def mark_dead(self, row_id: int, error: str, *, count_attempt: bool = True) -> None:
        """Give up on the delivery; it stays visible and can be retried by hand."""
        values: dict[str, Any] = {"status": "dead", "lease_until": None, "last_error": error[:2000]}
        if count_attempt:
            values["attempts"] = OutboxRow.attempts + 1
        await self.session.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(**values))

    async def release_leases(self, row_ids: Sequence[int]) -> None:
        """Give back leases of deliveries this process will not finish."""
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(row_ids), OutboxRow.status == "pending")
            .values(lease_until=None)
        )

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
