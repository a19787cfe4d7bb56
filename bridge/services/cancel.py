"""The bot cancels a handoff that is still waiting: it is the bot's again, and everyone hears.

Only a chat in the queue can be cancelled. Once an agent has it (joined, taken, or
assigned and waiting for the agent to accept) the bot has to release or close it, so a
customer is never pulled away from an agent who is already answering; cancelling an
ended conversation changes nothing and says so. Both are a 409 naming the status.

The change, `handoff.cancelled` to the bot and the agent side's close are written in one
transaction. The close goes out in the conversation's agent lane behind its open, so a
platform hears of it even when the open is still on its way; the console's offer
disappears from every desk at the next refresh (it lists waiting chats only).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime

from bridge.db.repo import Store
from bridge.db.retry import run_again_on_conflict
from bridge.db.tables import ConversationRow
from bridge.domain.status import Event, Status, sources, transition
from bridge.errors import Conflict, FieldProblem, InvalidTransition
from bridge.events import announce
from bridge.relay.jobs import CloseConversation
from bridge.services.assignment import Assignment
from bridge.services.lookup import require_conversation

log = logging.getLogger(__name__)

CANCELLED = "handoff.cancelled"
DEFAULT_REASON = "cancelled by the bot"


class Cancellation:
    """Cancels waiting handoffs for the bot."""

    def __init__(
        self,
        store: Store,
        assignment: Assignment,
        on_commit: Callable[[], None],
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._assignment = assignment
        self._on_commit = on_commit
        self._clock = clock

    async def cancel(self, conversation_id: str, reason: str | None) -> ConversationRow:
        """Cancel a waiting handoff; Conflict (409) once an agent has it or it has ended."""
        # Run again should PostgreSQL abort it for a deadlock with a take of the same chat.
        return await run_again_on_conflict(
            functools.partial(self._cancel_once, conversation_id, reason or DEFAULT_REASON)
        )

    async def _cancel_once(self, conversation_id: str, reason: str) -> ConversationRow:
        now = self._clock()
        async with self._store.transaction() as tx:
            row = await require_conversation(tx, conversation_id)
            if row.status == Status.PENDING and row.assignee_id is not None:
                raise Conflict(
                    "this handoff is assigned to an agent; release or close it instead",
                    [FieldProblem("status", f"assigned to {row.assignee_id}")],
                )
            status = transition(conversation_id, row.status, Event.CANCEL)
            moved = await tx.transition(
                conversation_id,
                sources(Event.CANCEL),
                status,
                status_reason=reason,
                closed_at=now,
                updated_at=now,
            )
            if not moved:
                # An agent took it (or it ended) since it was read.
                current = await require_conversation(tx, conversation_id, refresh=True)
                raise InvalidTransition(conversation_id, current.status, Event.CANCEL.value)
            await announce(tx, row, CANCELLED, {"by": "bot", "reason": reason}, now, to_bot=True)
            # It left the queue: the chats behind it move up.
            await self._assignment.queue_changed(tx, row.channel, now)
            close = CloseConversation(row.id, row.channel, reason, status)
            await tx.enqueue([close.to_row(now)])
            row = await require_conversation(tx, conversation_id, refresh=True)
        self._on_commit()
        log.info(CANCELLED, extra={"conversation": conversation_id})
        return row
