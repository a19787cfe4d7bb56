"""Inbound bookkeeping: applied webhook ids, and platform events parked for their conversation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, select, text

from bridge.db.handoff_steps import parked_lock_key
from bridge.db.repo.base import TxPart, affected
from bridge.db.tables import InboundDeliveryRow, ParkedEventRow


class InboundQueries(TxPart):
    """Webhook ids already applied, and events parked for a conversation."""

    async def record_delivery(self, webhook_id: str, now: datetime) -> bool:
        """Remember an applied inbound webhook id; False when it was applied before."""
        if await self.session.get(InboundDeliveryRow, webhook_id) is not None:
            return False
        self.session.add(InboundDeliveryRow(webhook_id=webhook_id, received_at=now))
        await self.session.flush()
        return True

    async def prune_deliveries(self, before: datetime) -> int:
        """Forget inbound webhook ids older than the retention window."""
        result = await self.session.execute(
            delete(InboundDeliveryRow).where(InboundDeliveryRow.received_at < before)
        )
        return affected(result)

    async def lock_platform_ref(self, channel: str, external_ref: str) -> None:
        """Make transactions that park an event for, or store, this platform id take turns.

        Each must see the other's commit, whichever commits first, or an event parked
        while the open stores the id would wait for nothing. PostgreSQL (read committed)
        needs a lock, held until commit; SQLite already runs one transaction at a time.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return
        space, key = parked_lock_key(channel, external_ref)
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": space, "key": key}
        )

    async def park_event(self, row: ParkedEventRow) -> bool:
        """Keep an early event; False when a copy of it (same channel and id) already waits."""
        values = {
            "channel": row.channel,
            "external_ref": row.external_ref,
            "event_id": row.event_id,
            "event": row.event,
            "received_at": row.received_at,
        }
        return await self._insert_new(ParkedEventRow, values, key=("channel", "event_id"))

    async def has_parked_events(self, channel: str, external_ref: str) -> bool:
        """Whether any event waits for this platform id."""
        query = select(
            exists().where(
                ParkedEventRow.channel == channel, ParkedEventRow.external_ref == external_ref
            )
        )
        return bool((await self.session.execute(query)).scalar())

    async def parked_events(self, channel: str, external_ref: str) -> list[ParkedEventRow]:
        """The events waiting for this platform id, in the order they arrived."""
        query = (
            select(ParkedEventRow)
            .where(ParkedEventRow.channel == channel, ParkedEventRow.external_ref == external_ref)
            .order_by(ParkedEventRow.id)
        )
        return list((await self.session.execute(query)).scalars())

    async def drop_parked_event(self, row_id: int) -> None:
        """Forget a parked event (applied, or too old to apply)."""
        await self.session.execute(delete(ParkedEventRow).where(ParkedEventRow.id == row_id))

    async def prune_parked_events(self, before: datetime) -> int:
        """Drop parked events that arrived before `before`: their conversation never came."""
        result = await self.session.execute(
            delete(ParkedEventRow).where(ParkedEventRow.received_at < before)
        )
        return affected(result)
