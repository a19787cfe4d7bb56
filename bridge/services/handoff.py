"""The conversation lifecycle: a state machine on top of routing, the store and the outbox.

    pending ──agent joins──▶ active
       │                        │
       ├──────── close ─────────┼──▶ closed
       ├──────── release ───────┼──▶ released   (handed back to the bot)
       └── agent side never opened (delivery dead) ──▶ failed

Every change and the deliveries it causes are written in one transaction, so a crash
never leaves a change without its deliveries or a delivery without its change.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from adapters.base import AgentSideAdapter, ConversationRef
from adapters.console.links import JoinLinks
from bridge.db.repo import Store, Tx
from bridge.db.tables import ACTIVE_STATUSES, ConversationRow, MessageRow, OutboxRow
from bridge.errors import ConversationNotFound, FieldProblem, InvalidInput, InvalidTransition
from bridge.events import announce
from bridge.models import AgentMessageRequest, CustomerMessageRequest, HandoffRequest
from bridge.relay import outbox
from bridge.relay.worker import DeliveryResult
from bridge.routing.engine import Decision, HandoffFacts, decide
from bridge.routing.steps import Directory
from bridge.services.assignment import Assignment
from bridge.services.early_events import replay_job
from bridge.services.routing_state import RoutingState
from bridge.views import message_view

log = logging.getLogger(__name__)

Actor = Literal["bot", "agent"]


def _aware(value: datetime) -> datetime:
    """Times without an offset are taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class HandoffService:
    """Opens, relays, closes and releases conversations."""

    def __init__(
        self,
        store: Store,
        routing: RoutingState,
        assignment: Assignment,
        default_channel: str,
        adapters: Mapping[str, AgentSideAdapter],
        links: JoinLinks,
        on_commit: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._routing = routing
        self._assignment = assignment
        self._default_channel = default_channel
        self._adapters = adapters
        self._links = links
        self._on_commit = on_commit
        self._clock = clock

    # -- reading -------------------------------------------------------------------------

    async def get(self, conversation_id: str) -> ConversationRow:
        """The conversation, or ConversationNotFound."""
        async with self._store.transaction() as tx:
            return await self._require(tx, conversation_id)

    async def transcript(
        self, conversation_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[MessageRow]:
        """The messages after `after_seq`, oldest first."""
        async with self._store.transaction() as tx:
            await self._require(tx, conversation_id)
            return await tx.messages(conversation_id, after_seq=after_seq, limit=limit)

    async def find_by_bot_conversation(
        self, bot_platform: str, bot_conversation_id: str
    ) -> ConversationRow | None:
        """The newest conversation handed over from this bot conversation, if any."""
        async with self._store.transaction() as tx:
            return await tx.find_by_bot_conversation(bot_platform, bot_conversation_id)

    async def destinations(self) -> list[dict[str, Any]]:
        """Where a bot may send a handoff: every main channel and its region codes."""
        return [
            {"channel": main, "regions": sorted(self._routing.table.regions.regions_of(main))}
            for main in sorted(self._routing.table.regions.main_channels)
        ]

    async def notify_bot(
        self,
        bot: str,
        bot_conversation_id: str,
        target: str,
        event_type: str,
        data: dict[str, Any],
    ) -> None:
        """Queue an event for bot `bot`'s adapter to deliver to `target`, durably.

        For bot-side adapters that relay a bot's own traffic (e.g. a business channel
        forwarding a client's message to the bot). Events of one bot conversation are
        delivered in order; there need not be a handed-off conversation yet.
        """
        now = self._clock()
        body = {"bot_conversation_id": bot_conversation_id, **data}
        row = outbox.bot_event(None, target, event_type, body, now, bot)
        # Hashed: the lane column is short and bot conversation ids are not.
        digest = hashlib.sha256(f"{bot}\0{bot_conversation_id}".encode()).hexdigest()
        row.lane = f"bot:{digest[:48]}"
        async with self._store.transaction() as tx:
            await tx.enqueue([row])
        self._on_commit()

    async def put_state(self, adapter: str, key: str, value: str) -> None:
        """Keep a small value for an adapter, e.g. a webhook URL its platform registered."""
        async with self._store.transaction() as tx:
            await tx.put_state(adapter, key, value, self._clock())

    async def get_state(self, adapter: str, key: str) -> str | None:
        """A value an adapter kept."""
        async with self._store.transaction() as tx:
            return await tx.get_state(adapter, key)

    def join_url(self, row: ConversationRow) -> str | None:
        """The platform's join link, else the bridge's signed console link; none once ended."""
        if row.status not in ACTIVE_STATUSES:
            return None
        if row.platform_join_url:
            return row.platform_join_url
        adapter = self._adapters.get(row.channel)
        if adapter is not None:
            native = adapter.join_url(ConversationRef(row.id, row.channel, row.external_ref))
            if native:
                return native
        return self._links.url(row.id)

    # -- the bot's side ------------------------------------------------------------------

    async def open(self, request: HandoffRequest) -> tuple[ConversationRow, bool]:
        """Route and open a handoff; the existing active conversation when there is one.

        Returns the conversation and whether it was created now. Two requests racing
        for the same customer meet at the database's unique indexes: one inserts, the
        other gets IntegrityError and returns the winner's conversation.
        """
        decision = self.explain(request)
        main = decision.main_channel
        # Read before the transaction (SQLite has one connection), and only when the
        # decision names agents: a chat answered through a join link needs no directory.
        directory = await self._routing.directory() if decision.names_agents else Directory()
        try:
            async with self._store.transaction() as tx:
                existing = await tx.find_active(
                    request.bot.platform, request.bot.conversation_id, main, request.customer.id
                )
                if existing is not None:
                    return existing, False
                row = await self._create(tx, request, decision)
                if row.status == "pending":
                    await self._assignment.place(tx, row, decision, directory)
                    await self._assignment.update_queue(tx, row.channel, row.created_at)
        except IntegrityError:
            async with self._store.transaction() as tx:
                existing = await tx.find_active(
                    request.bot.platform, request.bot.conversation_id, main, request.customer.id
                )
            if existing is None:
                raise
            return existing, False
        self._on_commit()
        log.info(
            "handoff.routed",
            extra={"conversation": row.id, "channel": row.channel, "rule": row.route_rule},
        )
        return row, True

    def explain(self, request: HandoffRequest) -> Decision:
        """The routing decision for a would-be handoff, without storing anything."""
        main = request.channel or self._default_channel
        if main not in self._routing.table.regions.main_channels:
            known = ", ".join(sorted(self._routing.table.regions.main_channels))
            raise InvalidInput(
                f"unknown main channel {main!r}",
                [FieldProblem("channel", f"unknown main channel; known: {known}")],
            )
        facts = HandoffFacts(
            main_channel=main,
            region=request.region,
            customer=request.customer.model_dump(mode="json"),
            metadata=request.metadata,
            settings=request.settings,
        )
        return decide(self._routing.table, facts, self._clock())

    async def _create(self, tx: Tx, request: HandoffRequest, decision: Decision) -> ConversationRow:
        now = self._clock()
        channel, trace = decision.channel, list(decision.trace)
        adapter = self._adapters[channel]
        closed_reason = None
        if decision.closed:
            when = decision.next_open.isoformat() if decision.next_open else None
            closed_reason = f"outside business hours; next opening {when or 'unknown'}"
        row = ConversationRow(
            id=str(uuid.uuid4()),
            status="failed" if decision.closed else "pending",
            main_channel=decision.main_channel,
            channel=channel,
            platform=adapter.platform,
            region=request.region,
            route_rule=decision.region_rule,
            route_trace=trace,
            bot_platform=request.bot.platform,
            bot_conversation_id=request.bot.conversation_id,
            callback_url=str(request.callback_url),
            customer_id=request.customer.id,
            customer=request.customer.model_dump(mode="json"),
            conversation_metadata=dict(request.metadata),
            settings=decision.settings.model_dump(mode="json"),
            agent=None,
            external_ref=None,
            platform_join_url=None,
            status_reason=closed_reason,
            organization_id=self._routing.channel_organization(channel),
            created_at=now,
            updated_at=now,
            closed_at=now if decision.closed else None,
            offered_to=[],
            routing_progress=[],
            priority=decision.priority,
        )
        await tx.insert_conversation(row)
        history = [
            MessageRow(
                conversation_id=row.id,
                role=m.role,
                text=m.text,
                author=m.author,
                external_id=None,
                sent_at=_aware(m.sent_at),
                created_at=now,
            )
            for m in request.history
        ]
        await tx.add_messages(history)
        route = {"rule": decision.region_rule, "trace": trace, "channel": channel}
        await announce(tx, row, "handoff.requested", {}, now, to_bot=False)
        if decision.closed:
            data = {
                "reason": closed_reason,
                "next_opening": decision.next_open.isoformat() if decision.next_open else None,
            }
            await announce(tx, row, "handoff.failed", data, now, to_bot=True)
            return row
        history_payload = [message_view(m) for m in history]
        snapshot = {
            "id": row.id,
            "channel": row.channel,
            "main_channel": row.main_channel,
            "region": row.region,
            "customer": row.customer,
            "metadata": row.conversation_metadata,
            "settings": row.settings,
        }
        deliveries: list[OutboxRow] = []
        if adapter.capabilities.history or not adapter.capabilities.messages:
            payload = {"conversation": snapshot, "history": history_payload}
            deliveries.append(
                outbox.agent_delivery(row.id, channel, outbox.AGENT_OPEN, payload, now)
            )
        else:
            # The platform cannot import history: replay it, one delivery per message,
            # so a failure part-way resumes where it stopped instead of starting over.
            payload = {"conversation": snapshot, "history": []}
            deliveries.append(
                outbox.agent_delivery(row.id, channel, outbox.AGENT_OPEN, payload, now)
            )
            deliveries.extend(
                outbox.agent_delivery(row.id, channel, outbox.AGENT_MESSAGE, {"message": m}, now)
                for m in history_payload
            )
        await tx.enqueue(deliveries)
        await announce(tx, row, "handoff.routed", {"route": route}, now, to_bot=False)
        return row

    async def customer_message(
        self, conversation_id: str, request: CustomerMessageRequest
    ) -> tuple[MessageRow, bool]:
        """Store a customer message and relay it to the agent side; repeats are stored once."""
        return await self._add_message(
            conversation_id,
            role="customer",
            text=request.text,
            author=None,
            external_id=request.id,
            sent_at=request.sent_at,
            allowed=ACTIVE_STATUSES,
            action="send a customer message to",
        )

    # -- the agent's side ----------------------------------------------------------------

    async def agent_joined(self, conversation_id: str, name: str) -> ConversationRow:
        """An agent took the conversation; the bot hears of it once."""
        now = self._clock()
        async with self._store.transaction() as tx:
            row = await self._require(tx, conversation_id)
            if row.status == "active":
                return row
            agent = {"name": name, "joined_at": now.isoformat()}
            moved = await tx.transition(
                conversation_id,
                ("pending",),
                "active",
                agent=agent,
                assigned_at=now,
                updated_at=now,
            )
            if not moved:
                current = await self._require(tx, conversation_id, refresh=True)
                if current.status == "active":
                    return current
                raise InvalidTransition(conversation_id, current.status, "join")
            await announce(tx, row, "agent.joined", {"agent": agent}, now, to_bot=True)
            # The chat left the queue: the others move up, and its wait feeds the estimate.
            await self._assignment.update_queue(tx, row.channel, now)
            row = await self._require(tx, conversation_id, refresh=True)
        self._on_commit()
        log.info("handoff.agent_joined", extra={"conversation": conversation_id})
        return row

    async def agent_message(
        self, conversation_id: str, request: AgentMessageRequest, author: str | None
    ) -> tuple[MessageRow, bool]:
        """Store an agent's reply and relay it to the bot."""
        return await self._add_message(
            conversation_id,
            role="agent",
            text=request.text,
            author=author,
            external_id=request.client_id,
            sent_at=None,
            allowed=("active",),
            action="send an agent message to",
        )

    # -- either side -----------------------------------------------------------------------

    async def close(self, conversation_id: str, by: Actor, reason: str | None) -> ConversationRow:
        """End the conversation and tell the other side."""
        return await self._end(conversation_id, "closed", by, reason or f"closed by the {by}")

    async def release(self, conversation_id: str, by: Actor, reason: str | None) -> ConversationRow:
        """Hand the conversation back to the bot and tell the other side."""
        return await self._end(conversation_id, "released", by, reason or f"released by the {by}")

    async def _end(
        self, conversation_id: str, status: Literal["closed", "released"], by: Actor, reason: str
    ) -> ConversationRow:
        now = self._clock()
        verb = "close" if status == "closed" else "release"
        async with self._store.transaction() as tx:
            row = await self._require(tx, conversation_id)
            moved = await tx.transition(
                conversation_id,
                ACTIVE_STATUSES,
                status,
                status_reason=reason,
                closed_at=now,
                updated_at=now,
            )
            if not moved:
                current = await self._require(tx, conversation_id, refresh=True)
                raise InvalidTransition(conversation_id, current.status, verb)
            event = "conversation.closed" if status == "closed" else "conversation.released"
            # The bot hears of what the agent did, the agent side of what the bot did.
            await announce(tx, row, event, {"by": by, "reason": reason}, now, to_bot=by == "agent")
            if row.assignee_id:
                await tx.release_capacity(row.assignee_id)
            # `row` was loaded before the conditional update, so it holds the status the
            # chat had: a chat that left the queue moves the others up.
            if row.status == "pending":
                await self._assignment.update_queue(tx, row.channel, now)
            if by == "bot":
                await tx.enqueue(
                    [
                        outbox.agent_delivery(
                            row.id,
                            row.channel,
                            outbox.AGENT_CLOSE,
                            {"reason": reason, "status": status},
                            now,
                        )
                    ]
                )
            row = await self._require(tx, conversation_id, refresh=True)
        self._on_commit()
        log.info(f"handoff.{status}", extra={"conversation": conversation_id, "by": by})
        return row

    async def _add_message(
        self,
        conversation_id: str,
        *,
        role: Literal["customer", "agent"],
        text: str,
        author: str | None,
        external_id: str | None,
        sent_at: datetime | None,
        allowed: tuple[str, ...],
        action: str,
    ) -> tuple[MessageRow, bool]:
        now = self._clock()
        try:
            async with self._store.transaction() as tx:
                row = await self._require(tx, conversation_id)
                if external_id is not None:
                    earlier = await tx.find_message(conversation_id, role, external_id)
                    if earlier is not None:
                        return earlier, False
                if row.status not in allowed:
                    raise InvalidTransition(conversation_id, row.status, action)
                message = MessageRow(
                    conversation_id=conversation_id,
                    role=role,
                    text=text,
                    author=author,
                    external_id=external_id,
                    sent_at=_aware(sent_at) if sent_at else now,
                    created_at=now,
                )
                await tx.add_messages([message])
                view = message_view(message)
                if role == "agent":
                    await announce(tx, row, "agent.message", {"message": view}, now, to_bot=True)
                else:
                    await announce(
                        tx, row, "customer.message", {"message": view}, now, to_bot=False
                    )
                if role == "customer" and self._relays_messages(row.channel):
                    await tx.enqueue(
                        [
                            outbox.agent_delivery(
                                row.id, row.channel, outbox.AGENT_MESSAGE, {"message": view}, now
                            )
                        ]
                    )
                await tx.update_conversation(conversation_id, updated_at=now)
        except IntegrityError:
            # The same message id raced in twice; the other request stored it.
            assert external_id is not None
            async with self._store.transaction() as tx:
                earlier = await tx.find_message(conversation_id, role, external_id)
            if earlier is None:
                raise
            return earlier, False
        self._on_commit()
        return message, True

    def _relays_messages(self, channel: str) -> bool:
        adapter = self._adapters.get(channel)
        return adapter is None or adapter.capabilities.messages

    # -- relay outcomes (DeliveryHooks) ----------------------------------------------------

    async def delivered(self, tx: Tx, row: OutboxRow, result: DeliveryResult) -> None:
        """Keep the platform's id for the conversation once the agent side has opened it.

        Events the platform sent about the chat before this (parked, see early_events)
        are then applied by a job queued in this same transaction.
        """
        if row.kind == outbox.AGENT_OPEN and row.conversation_id and result.external_ref:
            await tx.update_conversation(
                row.conversation_id,
                external_ref=result.external_ref,
                platform_join_url=result.join_url,
            )
            # An agent delivery's target is its channel.
            await tx.lock_platform_ref(row.target, result.external_ref)
            if await tx.has_parked_events(row.target, result.external_ref):
                await tx.enqueue([replay_job(row.conversation_id, self._clock())])

    async def dead(self, tx: Tx, row: OutboxRow, error: str) -> None:
        """The agent side could not be opened: fail the handoff and tell the bot why."""
        if row.kind != outbox.AGENT_OPEN or row.conversation_id is None:
            return
        now = self._clock()
        conversation = await tx.get_conversation(row.conversation_id)
        if conversation is None:
            return
        reason = f"the agent side ({conversation.platform}) could not be reached: {error}"
        moved = await tx.transition(
            conversation.id,
            ACTIVE_STATUSES,
            "failed",
            status_reason=reason,
            closed_at=now,
            updated_at=now,
        )
        if not moved:
            return
        await tx.cancel_lane(outbox.lane(conversation.id, "agent"), "conversation failed to open")
        await announce(tx, conversation, "handoff.failed", {"reason": reason}, now, to_bot=True)
        log.warning("handoff.failed", extra={"conversation": conversation.id})

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    async def _require(tx: Tx, conversation_id: str, refresh: bool = False) -> ConversationRow:
        row = await tx.get_conversation(conversation_id)
        if row is None:
            raise ConversationNotFound(conversation_id)
        if refresh:
            await tx.session.refresh(row)
        return row
