"""What the worker needs from those it runs deliveries for: a deliverer and outcome hooks."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from bridge.db.repo import Tx
from bridge.db.tables import OutboxRow
from bridge.db.units import Unit
from bridge.ports.agent_side import ConversationRef

# Where the conversation of the delivery being attempted is on its platform, as the
# worker's claim read it in the same statement. Set in each attempt's own task, so a
# handler needs no read of its own (one fewer round trip per message posted).
claimed_ref: ContextVar[ConversationRef | None] = ContextVar("bridge_claimed_ref", default=None)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What a delivery learned that the bridge keeps (the platform's id, its join link)."""

    external_ref: str | None = None
    join_url: str | None = None


class Deliverer(Protocol):
    """Performs one delivery, raising a PlatformError when it fails."""

    async def deliver(self, row: OutboxRow) -> DeliveryResult: ...


class DeliveryHooks(Protocol):
    """Lets the conversation lifecycle react to a delivery's outcome, in the same transaction."""

    def delivered(self, row: OutboxRow, result: DeliveryResult) -> Unit[None]:
        """What a delivery that learned something (a chat's platform id) writes, as steps
        of the unit of work that records it."""
        ...

    async def dead(self, tx: Tx, row: OutboxRow, error: str) -> None: ...
