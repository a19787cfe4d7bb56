"""Changes to customers and conversation metadata from outside the chat.

These arrive from the bot (PATCH /v1/conversations/{id}/metadata) and from signed CRM or
helpdesk calls (/integrations/*). A signed call's webhook-id is recorded in the same
transaction as its effect, so a redelivery changes nothing and still gets a 2xx.
Presence has one path for every source: `Assignment.set_presence`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bridge.db.repo import Store, Tx
from bridge.db.tables import ConversationRow
from bridge.domain.status import Event, transition
from bridge.errors import ConversationNotFound
from bridge.events import announce
from bridge.models import CustomerUpdate, MetadataValue
from bridge.services.assignment import Assignment


class ProfileService:
    """Applies profile and metadata updates."""

    def __init__(
        self,
        store: Store,
        assignment: Assignment,
        on_commit: Callable[[str | None], None] = lambda _: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._assignment = assignment
        self._on_commit = on_commit
        self._clock = clock

    async def update_metadata(
        self,
        conversation_id: str,
        metadata: dict[str, MetadataValue],
        *,
        replace: bool = False,
        delivery_id: str | None = None,
    ) -> ConversationRow:
        """Merge (or replace) an active conversation's metadata; agents see the change."""
        now = self._clock()
        async with self._store.transaction() as tx:
            row = await tx.get_conversation(conversation_id)
            if row is None:
                raise ConversationNotFound(conversation_id)
            if not await self._first_delivery(tx, delivery_id, now):
                return row
            transition(conversation_id, row.status, Event.UPDATE_METADATA)
            merged = dict(metadata) if replace else {**row.conversation_metadata, **metadata}
            await tx.update_conversation(
                conversation_id, conversation_metadata=merged, updated_at=now
            )
            await tx.session.refresh(row)
            await announce(
                tx, row, "conversation.metadata_updated", {"metadata": merged}, now, to_bot=False
            )
        self._on_commit(conversation_id)
        return row

    async def update_customer(
        self, update: CustomerUpdate, *, delivery_id: str | None = None
    ) -> list[ConversationRow]:
        """Re-identify or tag a customer on each of their active conversations."""
        now = self._clock()
        changed: list[ConversationRow] = []
        async with self._store.transaction() as tx:
            if not await self._first_delivery(tx, delivery_id, now):
                return []
            for row in await tx.active_of_customer(update.customer_id):
                customer = _apply_customer(row.customer, update)
                await tx.update_conversation(row.id, customer=customer, updated_at=now)
                await tx.session.refresh(row)
                changed.append(row)
        for row in changed:
            self._on_commit(row.id)
        return changed

    @staticmethod
    async def _first_delivery(tx: Tx, delivery_id: str | None, now: datetime) -> bool:
        return delivery_id is None or await tx.record_delivery(delivery_id, now)


def _apply_customer(customer: dict[str, Any], update: CustomerUpdate) -> dict[str, Any]:
    result = dict(customer)
    for field in ("email", "firstname", "lastname"):
        value = getattr(update, field)
        if value is not None:
            result[field] = value
    labels = [label for label in result.get("labels", []) if label not in update.labels_remove]
    labels.extend(label for label in update.labels_add if label not in labels)
    result["labels"] = labels
    return result
