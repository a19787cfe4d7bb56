"""The handoff service: one entry point for the API, the console and bot-side adapters.

A conversation's lifecycle is the domain's table (bridge/domain/status.py); the work is
split by job: opening (opening.py), messages (messages.py), and the status changes after
the open (lifecycle.py). This facade wires them and answers the reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bridge import metrics
from bridge.attachments import AttachmentCheck
from bridge.db.repo import Store, Tx
from bridge.db.tables import ConversationRow, MessageRow, OutboxRow, TimelineRow
from bridge.db.units import Unit
from bridge.domain.status import ACTIVE
from bridge.errors import FieldProblem, InvalidInput, RequestError
from bridge.models import (
    AgentMessageRequest,
    CustomerMessageRequest,
    HandbackRequest,
    HandoffRequest,
)
from bridge.ports.agent_side import AgentSideAdapter, ConversationRef
from bridge.ports.links import JoinLinks
from bridge.relay.delivery import DeliveryResult
from bridge.relay.jobs import BotEvent
from bridge.routing.engine import Decision
from bridge.services.assignment import Assignment
from bridge.services.availability import PlatformAvailability, Prober
from bridge.services.cancel import Cancellation
from bridge.services.lifecycle import Actor, Lifecycle
from bridge.services.live_routing import LiveRouting
from bridge.services.lookup import require_conversation
from bridge.services.messages import Messages
from bridge.services.opening import Opened, Opening
from bridge.services.routing_state import RoutingState
from bridge.settings import AttachmentSettings, AvailabilitySettings


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
        *,
        prober: Prober | None = None,
        attachments: AttachmentCheck | None = None,
    ) -> None:
        self._store = store
        self._routing = routing
        self._adapters = adapters
        self._links = links
        self._on_commit = on_commit
        self._clock = clock
        defaults = AvailabilitySettings()
        self.prober = prober or Prober(
            PlatformAvailability(
                adapters,
                cache_seconds=defaults.cache_seconds,
                timeout_seconds=defaults.timeout_seconds,
            )
        )
        self.live = LiveRouting(store, routing, assignment, adapters, self.prober, on_commit, clock)
        self._opening = Opening(
            store, routing, assignment, default_channel, adapters, on_commit, clock, self.live
        )
        # Without the app's check (tests), the default limits apply and no URL is resolved.
        self.attachments = attachments or AttachmentCheck(AttachmentSettings())
        self._messages = Messages(store, adapters, on_commit, clock, self.attachments)
        self._lifecycle = Lifecycle(store, assignment, on_commit, clock)
        self._cancellation = Cancellation(store, assignment, on_commit, clock)

    # -- reading -------------------------------------------------------------------------

    async def get(self, conversation_id: str) -> ConversationRow:
        """The conversation, or ConversationNotFound."""
        async with self._store.transaction() as tx:
            return await require_conversation(tx, conversation_id)

    async def transcript(
        self, conversation_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[MessageRow]:
        """The messages after `after_seq`, oldest first."""
        async with self._store.transaction() as tx:
            await require_conversation(tx, conversation_id)
            return await tx.messages(conversation_id, after_seq=after_seq, limit=limit)

    async def timeline(self, conversation_id: str, *, after_id: int = 0) -> list[TimelineRow]:
        """The conversation's joins, leaves and ending after `after_id`, oldest first."""
        async with self._store.transaction() as tx:
            return await tx.timeline(conversation_id, after_id=after_id)

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

    def join_url(self, row: ConversationRow) -> str | None:
        """The platform's join link, else the bridge's signed console link; none once ended."""
        if row.status not in ACTIVE:
            return None
        if row.platform_join_url:
            return row.platform_join_url
        adapter = self._adapters.get(row.channel)
        if adapter is not None:
            native = adapter.join_url(ConversationRef(row.id, row.channel, row.external_ref))
            if native:
                return native
        return self._links.url(row.id)

    # -- for bot-side adapters -------------------------------------------------------------

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
        job = BotEvent.for_bot_conversation(bot, bot_conversation_id, target, event_type, body, now)
        row = job.to_row(now)
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

    # -- the lifecycle (opening.py, messages.py, lifecycle.py) ------------------------------

    async def open(self, request: HandoffRequest) -> tuple[ConversationRow, bool]:
        """Route and open a handoff; the existing active conversation when there is one."""
        opened = await self.open_placed(request)
        return opened.row, opened.created

    async def open_placed(self, request: HandoffRequest) -> Opened:
        """The same, with the chat's place in the queue counted in the same transaction."""
        try:
            await self._check_history_files(request)
            opened = await self._opening.open(request)
        except RequestError:
            metrics.handoff(metrics.NO_RULE, "refused")
            raise
        metrics.handoff(opened.row.route_rule, "created" if opened.created else "existing")
        return opened

    async def _check_history_files(self, request: HandoffRequest) -> None:
        """The history's files, checked as a message's are: InvalidInput naming each."""
        problems: list[FieldProblem] = []
        for index, message in enumerate(request.history):
            where = f"history[{index}].attachments"
            problems.extend(await self.attachments.problems(message.attachments, where))
        if problems:
            raise InvalidInput("the history has attachments the bridge may not pass on", problems)

    def explain(self, request: HandoffRequest) -> Decision:
        """The routing decision for a would-be handoff, without storing anything."""
        return self._opening.explain(request)

    def route(
        self,
        channel: str | None,
        region: str | None,
        customer: Mapping[str, Any],
        metadata: Mapping[str, Any],
        settings: Mapping[str, Any],
    ) -> Decision:
        """The decision for a handoff's routing part alone (the availability check's)."""
        return self._opening.route(channel, region, customer, metadata, settings)

    async def customer_message(
        self, conversation_id: str, request: CustomerMessageRequest
    ) -> tuple[MessageRow, bool]:
        """Store a customer message and relay it to the agent side; repeats are stored once."""
        return await self._messages.customer_message(conversation_id, request)

    async def agent_joined(self, conversation_id: str, name: str) -> ConversationRow:
        """An agent took the conversation; the bot hears of it once."""
        return await self._lifecycle.agent_joined(conversation_id, name)

    async def agent_message(
        self,
        conversation_id: str,
        request: AgentMessageRequest,
        author: str | None,
        *,
        by_assignee: bool = False,
    ) -> tuple[MessageRow, bool]:
        """Store an agent's reply and relay it to the bot (`by_assignee`: the assignee wrote it)."""
        return await self._messages.agent_message(
            conversation_id, request, author, by_assignee=by_assignee
        )

    async def close(self, conversation_id: str, by: Actor, reason: str | None) -> ConversationRow:
        """End the conversation and tell the other side."""
        return await self._lifecycle.close(conversation_id, by, reason)

    async def release(
        self,
        conversation_id: str,
        by: Actor,
        reason: str | None,
        summary: HandbackRequest | None = None,
    ) -> ConversationRow:
        """Hand the conversation back to the bot, with the agent's summary, and tell the
        other side."""
        return await self._lifecycle.release(conversation_id, by, reason, summary)

    async def cancel(self, conversation_id: str, reason: str | None) -> ConversationRow:
        """The bot cancels a waiting handoff; 409 once an agent has it or it has ended."""
        return await self._cancellation.cancel(conversation_id, reason)

    # -- relay outcomes (DeliveryHooks) ----------------------------------------------------

    def delivered(self, row: OutboxRow, result: DeliveryResult) -> Unit[None]:
        """Keep the platform's id for the conversation once the agent side has opened it."""
        return self._opening.delivered(row, result)

    async def dead(self, tx: Tx, row: OutboxRow, error: str) -> None:
        """The agent side could not be opened: fail the handoff and tell the bot why."""
        await self._lifecycle.failed_open(tx, row, error)
