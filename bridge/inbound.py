"""Platform webhooks: verified and parsed by the channel's adapter, then applied once.

An event is applied through the same HandoffService calls the console makes, each of
which is idempotent on its own: a message is stored once per platform message id (a
unique index), a join of an active conversation and a close of a closed one change
nothing. So a webhook redelivered (even concurrently, on two replicas) is applied once,
and every copy gets a 2xx.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from adapters.base import (
    AgentSideAdapter,
    ConversationInfo,
    InboundEvent,
    InboundReply,
    InboundRequest,
)
from bridge.assignment import Assignment
from bridge.db.repo import Store
from bridge.db.tables import ConversationRow
from bridge.errors import FieldProblem, InvalidTransition, NotFound
from bridge.handoff import HandoffService
from bridge.models import AgentMessageRequest
from bridge.relay.dispatch import message_from_payload
from bridge.views import message_view

log = logging.getLogger(__name__)


class InboundService:
    """Applies verified platform events to conversations; also the adapters' read access."""

    def __init__(
        self,
        store: Store,
        service: HandoffService,
        assignment: Assignment,
        adapters: Mapping[str, AgentSideAdapter],
        main_channel_of: Mapping[str, str],
    ) -> None:
        self._store = store
        self._service = service
        self._assignment = assignment
        self._adapters = adapters
        self._main_channel_of = main_channel_of

    async def handle(self, channel: str, request: InboundRequest) -> InboundReply:
        """Verify, parse, apply and answer one webhook for `channel`."""
        adapter = self._adapters.get(channel)
        if adapter is None:
            raise NotFound(f"no channel {channel!r}", [FieldProblem("channel", "unknown")])
        adapter.verify_inbound(request)
        events = adapter.parse_inbound(request)
        for event in events:
            await self.apply(channel, adapter, event)
        return await adapter.reply_inbound(request, events, self)

    async def apply(self, channel: str, adapter: AgentSideAdapter, event: InboundEvent) -> None:
        """Apply one event; unknown conversations and finished ones are logged and skipped."""
        if event.kind == "agent.presence":
            if event.agent_id and event.presence:
                await self._assignment.set_presence(
                    event.agent_id, event.presence, name=event.agent_name, source=channel
                )
            return
        row = await self._find(channel, event)
        if row is None:
            log.info("inbound.unmatched", extra={"channel": channel, "event": event.event_id})
            return
        name = event.agent_name or event.agent_id or f"{adapter.platform} agent"
        try:
            if event.kind == "agent.joined":
                await self._service.agent_joined(row.id, name)
            elif event.kind == "agent.message" and event.text:
                if row.status == "pending":
                    # Platforms that send no join event: the first reply is the join.
                    await self._service.agent_joined(row.id, name)
                await self._service.agent_message(
                    row.id, AgentMessageRequest(text=event.text, client_id=event.event_id), name
                )
            elif event.kind == "conversation.closed":
                await self._service.close(row.id, "agent", f"closed on {adapter.platform}")
        except InvalidTransition as exc:
            log.info(
                "inbound.ignored",
                extra={"conversation": row.id, "event": event.event_id, "why": exc.message},
            )

    async def _find(self, channel: str, event: InboundEvent) -> ConversationRow | None:
        async with self._store.transaction() as tx:
            if event.conversation_id:
                row = await tx.get_conversation(event.conversation_id)
                if row is not None and row.channel == channel:
                    return row
            return await tx.find_for_platform(
                channel,
                external_ref=event.external_ref,
                customer_id=event.customer_id,
                main_channel=self._main_channel_of.get(channel),
            )

    async def find_active(
        self, channel: str, *, external_ref: str | None = None, customer_id: str | None = None
    ) -> ConversationInfo | None:
        """ConversationReader: an active conversation with its history, for webhook replies."""
        async with self._store.transaction() as tx:
            row = await tx.find_for_platform(
                channel,
                external_ref=external_ref,
                customer_id=customer_id,
                main_channel=self._main_channel_of.get(channel),
            )
            if row is None or row.status not in ("pending", "active"):
                return None
            messages = await tx.messages(row.id)
        return ConversationInfo(
            id=row.id,
            status=row.status,
            channel=row.channel,
            external_ref=row.external_ref,
            customer=row.customer,
            metadata=row.conversation_metadata,
            history=tuple(message_from_payload(message_view(m)) for m in messages),
        )
