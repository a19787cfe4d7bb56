"""Status changes after the open: an agent joins, either side closes or releases, the open fails.

What may happen in which status is the domain's table (bridge/domain/status.py); here
each change is a conditional UPDATE from the statuses the table allows, so two replicas
racing on one conversation cannot both win, and the change and the deliveries it causes
are written in one transaction.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from bridge.db.repo import Store, Tx
from bridge.db.retry import run_again_on_conflict
from bridge.db.tables import ConversationRow, OutboxRow
from bridge.domain.conversation import join_changes_nothing
from bridge.domain.reasons import PLATFORM_ERROR, failed
from bridge.domain.status import Event, Status, sources, target, transition
from bridge.errors import InvalidTransition
from bridge.events import announce
from bridge.models import HandbackRequest
from bridge.relay.jobs import CloseConversation, OpenConversation, lane
from bridge.services.assignment import Assignment
from bridge.services.handback import released_data, summary_of
from bridge.services.lookup import require_conversation

log = logging.getLogger(__name__)

Actor = Literal["bot", "agent"]


class Lifecycle:
    """Joins, closes, releases and fails conversations."""

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

    async def agent_joined(self, conversation_id: str, name: str) -> ConversationRow:
        """An agent took the conversation; the bot hears of it once."""
        now = self._clock()
        async with self._store.transaction() as tx:
            row = await require_conversation(tx, conversation_id)
            if join_changes_nothing(row.status):
                return row
            joined = transition(conversation_id, row.status, Event.JOIN)
            agent = {"name": name, "joined_at": now.isoformat()}
            moved = await tx.transition(
                conversation_id,
                sources(Event.JOIN),
                joined,
                agent=agent,
                assigned_at=now,
                updated_at=now,
            )
            if not moved:
                # Another replica changed it since it was read: a join there is a repeat.
                current = await require_conversation(tx, conversation_id, refresh=True)
                if join_changes_nothing(current.status):
                    return current
                raise InvalidTransition(conversation_id, current.status, Event.JOIN.value)
            await announce(tx, row, "agent.joined", {"agent": agent}, now, to_bot=True)
            # The chat left the queue: the others move up, and its wait feeds the estimate.
            await self._assignment.queue_changed(tx, row.channel, now)
            row = await require_conversation(tx, conversation_id, refresh=True)
        self._on_commit()
        log.info("handoff.agent_joined", extra={"conversation": conversation_id})
        return row

    async def close(self, conversation_id: str, by: Actor, reason: str | None) -> ConversationRow:
        """End the conversation and tell the other side."""
        return await self._end(conversation_id, Event.CLOSE, by, reason or f"closed by the {by}")

    async def release(
        self,
        conversation_id: str,
        by: Actor,
        reason: str | None,
        summary: HandbackRequest | None = None,
    ) -> ConversationRow:
        """Hand the conversation back to the bot (with the agent's summary, if any) and tell
        the other side."""
        return await self._end(
            conversation_id, Event.RELEASE, by, reason or f"released by the {by}", summary
        )

    async def _end(
        self,
        conversation_id: str,
        event: Event,
        by: Actor,
        reason: str,
        summary: HandbackRequest | None = None,
    ) -> ConversationRow:
        # Locks the conversation, then its agent (capacity given back): the order a take
        # keeps too. Run again should PostgreSQL still abort it for a deadlock.
        return await run_again_on_conflict(
            functools.partial(self._end_once, conversation_id, event, by, reason, summary)
        )

    async def _end_once(
        self,
        conversation_id: str,
        event: Event,
        by: Actor,
        reason: str,
        summary: HandbackRequest | None,
    ) -> ConversationRow:
        now = self._clock()
        async with self._store.transaction() as tx:
            row = await require_conversation(tx, conversation_id)
            status = transition(conversation_id, row.status, event)
            data: dict[str, Any] = {"by": by, "reason": reason}
            kept: dict[str, Any] = {}
            if event is Event.RELEASE:
                # The hand-back summary (bridge/services/handback.py), kept with the chat.
                said = summary_of(summary)
                data |= await released_data(tx, row, said, now)
                kept["handback"] = {**said, "by": by}
            moved = await tx.transition(
                conversation_id,
                sources(event),
                status,
                status_reason=reason,
                closed_at=now,
                updated_at=now,
                **kept,
            )
            if not moved:
                # Another replica ended it since it was read.
                current = await require_conversation(tx, conversation_id, refresh=True)
                raise InvalidTransition(conversation_id, current.status, event.value)
            kind = "conversation.closed" if event is Event.CLOSE else "conversation.released"
            # The bot hears of what the agent did, the agent side of what the bot did.
            await announce(tx, row, kind, data, now, to_bot=by == "agent")
            if row.assignee_id:
                await tx.release_capacity(row.assignee_id)
            # `row` was loaded before the conditional update, so it holds the status the
            # chat had: a chat that left the queue moves the others up.
            if row.status == Status.PENDING:
                await self._assignment.queue_changed(tx, row.channel, now)
            if by == "bot":
                close = CloseConversation(row.id, row.channel, reason, status)
                await tx.enqueue([close.to_row(now)])
            row = await require_conversation(tx, conversation_id, refresh=True)
        self._on_commit()
        log.info(f"handoff.{status.value}", extra={"conversation": conversation_id, "by": by})
        return row

    async def failed_open(self, tx: Tx, row: OutboxRow, error: str) -> None:
        """The agent side could not be opened: fail the handoff and tell the bot why."""
        if row.kind != OpenConversation.kind or row.conversation_id is None:
            return
        now = self._clock()
        conversation = await tx.get_conversation(row.conversation_id)
        if conversation is None:
            return
        reason = f"the agent side ({conversation.platform}) could not be reached: {error}"
        moved = await tx.transition(
            conversation.id,
            sources(Event.FAIL),
            target(Event.FAIL),
            status_reason=reason,
            closed_at=now,
            updated_at=now,
        )
        if not moved:
            # Ended meanwhile (closed, released): nothing is left to fail.
            return
        await tx.cancel_lane(lane(conversation.id, "agent"), "conversation failed to open")
        data = failed(PLATFORM_ERROR, reason)
        await announce(tx, conversation, "handoff.failed", data, now, to_bot=True)
        if conversation.status == Status.PENDING:
            # Loaded before the update: the chat left the queue, the others move up.
            await self._assignment.queue_changed(tx, conversation.channel, now)
        log.warning("handoff.failed", extra={"conversation": conversation.id})
