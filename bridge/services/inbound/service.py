"""Platform webhooks: verified and parsed by the channel's adapter, then applied once.

An event is applied through the same HandoffService calls the console makes, each of
which is idempotent on its own: a message is stored once per platform message id (a
unique index), a join of an active conversation and a close of a closed one change
nothing. So a webhook redelivered (even concurrently, on two replicas) is applied once,
and every copy gets a 2xx.

An event about a chat whose platform id the open has not stored yet is parked, and
applied in the order of arrival once the id is known (see early_events.py beside this module).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from bridge.attachments import read_stored, with_links
from bridge.db.repo import Store
from bridge.db.tables import ConversationRow, MessageRow
from bridge.domain.conversation import reply_joins_first
from bridge.domain.status import ACTIVE
from bridge.errors import FieldProblem, InvalidInput, InvalidTransition, NotFound
from bridge.models import MAX_TEXT, AgentMessageRequest
from bridge.ports.agent_side import (
    AgentSideAdapter,
    ConversationInfo,
    InboundEvent,
    InboundReply,
    InboundRequest,
    OutboundMessage,
)
from bridge.services.assignment import Assignment
from bridge.services.handoff import HandoffService
from bridge.services.inbound.early_events import can_park, event_of, parked_row, reason_to_drop
from bridge.services.inbound.limits import storable_events
from bridge.services.typing import TypingRelay

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
        *,
        park_for: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        typing: TypingRelay | None = None,
    ) -> None:
        self._typing = typing
        self._store = store
        self._service = service
        self._assignment = assignment
        self._adapters = adapters
        self._main_channel_of = main_channel_of
        self._park_for = park_for
        self._clock = clock

    async def handle(self, channel: str, request: InboundRequest) -> InboundReply:
        """Verify, parse, apply and answer one webhook for `channel`."""
        adapter = self._adapters.get(channel)
        if adapter is None:
            raise NotFound(f"no channel {channel!r}", [FieldProblem("channel", "unknown")])
        adapter.verify_inbound(request)
        # An event the store cannot keep is left out here (a 2xx, so it is not redelivered).
        events = storable_events(channel, adapter.parse_inbound(request))
        for event in events:
            await self.apply(channel, adapter, event)
        return await adapter.reply_inbound(request, events, self)

    async def apply(self, channel: str, adapter: AgentSideAdapter, event: InboundEvent) -> None:
        """Apply one event; one that may precede its conversation's platform id is parked."""
        if event.kind == "agent.presence":
            if event.agent_id and event.presence:
                await self._assignment.set_presence(
                    event.agent_id, event.presence, name=event.agent_name, source=channel
                )
            return
        if event.kind == "agent.typing":
            await self.typing(channel, event)
            return
        row, parked_first = await self._find(channel, event)
        if row is None:
            await self._park(channel, adapter, event)
            return
        if parked_first and row.external_ref:
            # Events parked for this chat arrived before this one, so they go first.
            await self._apply_parked(channel, adapter, row.external_ref)
            row = (await self._find(channel, event))[0] or row
        await self._apply_to(row, adapter, event)

    async def typing(self, channel: str, event: InboundEvent) -> bool:
        """An agent is typing: the bot hears it now (throttled); whether it is told.

        A moment, not a record: never parked, never stored (see services/typing.py).
        Platform webhooks and the console's own route both come this way.
        """
        found, _ = await self._find(channel, event)
        if found is None or self._typing is None:
            return False
        return self._typing.typing(found, event.agent_name)

    async def replay(self, conversation_id: str) -> None:
        """Apply the events parked for a conversation whose platform id is now stored."""
        async with self._store.transaction() as tx:
            row = await tx.get_conversation(conversation_id)
        adapter = self._adapters.get(row.channel) if row is not None else None
        if row is None or row.external_ref is None or adapter is None:
            return
        await self._apply_parked(row.channel, adapter, row.external_ref)

    async def _apply_to(
        self, row: ConversationRow, adapter: AgentSideAdapter, event: InboundEvent
    ) -> None:
        name = event.agent_name or event.agent_id or f"{adapter.platform} agent"
        try:
            if event.kind == "agent.joined":
                await self._service.agent_joined(row.id, name)
            elif event.kind == "agent.message" and (event.text or event.attachments):
                if reply_joins_first(row.status):
                    await self._service.agent_joined(row.id, name)
                await self._agent_message(row.id, event, name)
            elif event.kind == "conversation.closed":
                await self._service.close(row.id, "agent", f"closed on {adapter.platform}")
        except InvalidTransition as exc:
            log.info(
                "inbound.ignored",
                extra={"conversation": row.id, "event": event.event_id, "why": exc.message},
            )

    async def _agent_message(self, conversation_id: str, event: InboundEvent, name: str) -> None:
        """The agent's reply; files the bridge may not pass on reach the bot as links."""
        text = event.text or ""
        request = AgentMessageRequest(
            text=text, attachments=list(event.attachments), client_id=event.event_id
        )
        try:
            await self._service.agent_message(conversation_id, request, name)
        except InvalidInput as exc:
            if not event.attachments:
                raise
            # The platform already holds the file and the agent sent it: refusing the
            # webhook would only make the platform retry it for ever. The bot gets the
            # message with its files as `name: url` lines, as before attachments existed.
            log.info(
                "inbound.attachments_as_links",
                extra={
                    "conversation": conversation_id,
                    "event": event.event_id,
                    "fields": [problem.field for problem in exc.fields],
                },
            )
            linked = with_links(text, event.attachments)[:MAX_TEXT]
            await self._service.agent_message(
                conversation_id, AgentMessageRequest(text=linked, client_id=event.event_id), name
            )

    async def _find(self, channel: str, event: InboundEvent) -> tuple[ConversationRow | None, bool]:
        """The event's conversation, and whether events parked for its platform id wait."""
        async with self._store.transaction() as tx:
            row = None
            if event.conversation_id:
                row = await tx.get_conversation(event.conversation_id)
                if row is not None and row.channel != channel:
                    row = None
            if row is None:
                row = await tx.find_for_platform(
                    channel,
                    external_ref=event.external_ref,
                    customer_id=event.customer_id,
                    main_channel=self._main_channel_of.get(channel),
                )
            if row is None or row.external_ref is None:
                return row, False
            return row, await tx.has_parked_events(channel, row.external_ref)

    async def _park(self, channel: str, adapter: AgentSideAdapter, event: InboundEvent) -> None:
        """Keep an event that may be about a chat whose open has not stored its id yet."""
        if not can_park(event):
            log.info("inbound.unmatched", extra={"channel": channel, "event": event.event_id})
            return
        assert event.external_ref is not None
        async with self._store.transaction() as tx:
            await tx.lock_platform_ref(channel, event.external_ref)
            await tx.park_event(parked_row(channel, event, self._clock()))
            known = await tx.find_for_platform(channel, external_ref=event.external_ref)
        if known is None:
            log.info("inbound.parked", extra={"channel": channel, "event": event.event_id})
            return
        # The open stored the id between our lookup and the park, too late to see this one.
        await self._apply_parked(channel, adapter, event.external_ref)

    async def _apply_parked(self, channel: str, adapter: AgentSideAdapter, ref: str) -> None:
        """Apply, in arrival order, the events parked for a platform id now known; drop them."""
        now = self._clock()
        async with self._store.transaction() as tx:
            parked = await tx.parked_events(channel, ref)
        for item in parked:
            # Read again for each: the previous event may have changed the status.
            async with self._store.transaction() as tx:
                row = await tx.find_for_platform(channel, external_ref=ref)
            if row is None:
                return
            why = reason_to_drop(item, row, now, self._park_for)
            if why is None:
                await self._apply_to(row, adapter, event_of(item))
            else:
                log.warning(
                    "inbound.parked_dropped",
                    extra={"conversation": row.id, "event": item.event_id, "why": why},
                )
            # Removed only once applied: a crash before this applies it again, which
            # changes nothing (every apply is idempotent).
            async with self._store.transaction() as tx:
                await tx.drop_parked_event(item.id)

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
            if row is None or row.status not in ACTIVE:
                return None
            messages = await tx.messages(row.id)
        return ConversationInfo(
            id=row.id,
            status=row.status,
            channel=row.channel,
            external_ref=row.external_ref,
            customer=row.customer,
            metadata=row.conversation_metadata,
            history=tuple(_outbound(m) for m in messages),
        )


def _outbound(row: MessageRow) -> OutboundMessage:
    """A stored message as the agent side's adapter reads it."""
    return OutboundMessage(
        row.seq, row.role, row.text, row.author, row.sent_at, read_stored(row.attachments)
    )
