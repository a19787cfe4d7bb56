"""Opening a handoff: route it, store the conversation and its history, queue the agent side.

Everything is written in one transaction, so a crash never leaves a conversation without
its deliveries or a delivery without its conversation. The relay reports back through
`delivered` once the agent side has opened the chat.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from bridge.db import handoff_steps as hs
from bridge.db import steps
from bridge.db.repo import Store
from bridge.db.retry import unique_violation
from bridge.db.tables import ConversationRow, MessageRow, OutboxRow
from bridge.db.units import Unit
from bridge.domain.conversation import opening_status
from bridge.domain.reasons import OUTSIDE_HOURS, failed
from bridge.domain.status import Status
from bridge.errors import Conflict, FieldProblem, InvalidInput
from bridge.models import HandoffRequest
from bridge.ports.agent_side import AgentSideAdapter
from bridge.relay.delivery import DeliveryResult
from bridge.relay.jobs import OpenConversation, ReplayInbound
from bridge.routing.engine import Decision, HandoffFacts, decide
from bridge.routing.steps.escalation import Directory
from bridge.services.assignment import Assignment
from bridge.services.live_routing import Landing, LiveRouting
from bridge.services.messages import history_values
from bridge.services.open_jobs import open_jobs
from bridge.services.opening_unit import OpenOutcome, OpenPlan, open_unit
from bridge.services.pending import Announcement, Later, Pending
from bridge.services.queue import QueueSpot
from bridge.services.routing_state import RoutingState

log = logging.getLogger(__name__)


class Opened(NamedTuple):
    """A handoff's conversation, whether it was created now, and its place in the queue."""

    row: ConversationRow
    created: bool
    queue: QueueSpot


class Opening:
    """Routes and opens handoffs; keeps the platform's id once the agent side has opened."""

    def __init__(
        self,
        store: Store,
        routing: RoutingState,
        assignment: Assignment,
        default_channel: str,
        adapters: Mapping[str, AgentSideAdapter],
        on_commit: Callable[[], None],
        clock: Callable[[], datetime],
        live: LiveRouting,
    ) -> None:
        self._live = live
        self._store = store
        self._routing = routing
        self._assignment = assignment
        self._default_channel = default_channel
        self._adapters = adapters
        self._on_commit = on_commit
        self._clock = clock
        self._count_limit = assignment.count_limit

    async def open(self, request: HandoffRequest) -> Opened:
        """Route and open a handoff; the existing active conversation when there is one.

        Returns the conversation, whether it was created now, and its queue position,
        counted in the same unit of work. Two requests racing for the same customer meet
        at the database's unique indexes: one inserts, the other is refused and returns
        the winner's conversation.
        """
        # Routing across platforms: nobody available there moves the chat to a fallback.
        landing = await self._live.land(self.explain(request), request.settings)
        decision = landing.decision
        now = self._clock()
        plan = self._plan(request, decision, landing, now)
        try:
            outcome = await self._store.run(open_unit(plan))
        except Exception as exc:
            if not unique_violation(exc):
                raise
            outcome = OpenOutcome(existing_id="")
        if outcome.existing_id is not None:
            return await self._existing(request, decision.main_channel)
        row = plan.row
        self._on_commit()
        if row.status == Status.PENDING:
            self._assignment.queue_woken()
        log.info(
            "handoff.routed",
            extra={"conversation": row.id, "channel": row.channel, "rule": row.route_rule},
        )
        return Opened(row, True, outcome.spot)

    async def _existing(self, request: HandoffRequest, main_channel: str) -> Opened:
        """The active conversation that made this handoff a repeat, with its place."""
        async with self._store.transaction() as tx:
            existing = await tx.find_active(
                request.bot.platform, request.bot.conversation_id, main_channel, request.customer.id
            )
            if existing is None:
                # Ended between the two reads: the caller may simply try again.
                raise Conflict(
                    "the conversation this handoff repeats ended meanwhile; try again",
                    [FieldProblem("customer.id", "its conversation just ended")],
                )
            return Opened(existing, False, await self._assignment.spot_in(tx, existing))

    def explain(self, request: HandoffRequest) -> Decision:
        """The routing decision for a would-be handoff, without storing anything."""
        customer = request.customer.model_dump(mode="json")
        return self.route(
            request.channel, request.region, customer, request.metadata, request.settings
        )

    def route(
        self,
        channel: str | None,
        region: str | None,
        customer: Mapping[str, Any],
        metadata: Mapping[str, Any],
        settings: Mapping[str, Any],
    ) -> Decision:
        """The decision for a handoff's routing part (InvalidInput for an unknown channel)."""
        main = channel or self._default_channel
        if main not in self._routing.table.regions.main_channels:
            known = ", ".join(sorted(self._routing.table.regions.main_channels))
            raise InvalidInput(
                f"unknown main channel {main!r}",
                [FieldProblem("channel", f"unknown main channel; known: {known}")],
            )
        facts = HandoffFacts(main, region, customer, metadata, settings)
        return decide(self._routing.table, facts, self._clock())

    def _plan(
        self, request: HandoffRequest, decision: Decision, landing: Landing, now: datetime
    ) -> OpenPlan:
        """The new conversation and what it queues, decided before anything is written."""
        channel, trace = decision.channel, list(decision.trace)
        adapter = self._adapters[channel]
        closed_reason = None
        if decision.closed:
            when = decision.next_open.isoformat() if decision.next_open else None
            closed_reason = f"outside business hours; next opening {when or 'unknown'}"
        # Made as the ORM makes rows it loads (no attribute events): it is written by the
        # unit's own statement, never added to a session.
        row = steps.orm_row(
            ConversationRow,
            id=str(uuid.uuid4()),
            status=opening_status(outside_hours=decision.closed),
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
            # Every other column, as the ORM's defaults would set them: the unit writes
            # the row as it is.
            accept_round=0,
            passed_over=[],
            team_id=None,
            router_id=None,
            assignee_id=None,
            assigned_at=None,
            handback=None,
            queue_position=None,
            queue_eta_seconds=None,
        )
        history = steps.orm_rows(MessageRow, history_values(row.id, request.history, now))
        requested = Announcement("handoff.requested")
        if decision.closed:
            opening = decision.next_open.isoformat() if decision.next_open else None
            data = failed(OUTSIDE_HOURS, closed_reason, next_opening=opening)
            closed: list[Pending] = [requested, Announcement("handoff.failed", data, to_bot=True)]
            return OpenPlan(row, history, lambda: closed, now, None, False, self._count_limit)
        route = {"rule": decision.region_rule, "trace": trace, "channel": channel}

        def pending() -> list[Pending]:
            # Once the history is stored: the platform's open carries its messages' seqs.
            return [
                requested,
                *(Later(job) for job in open_jobs(row, adapter, history)),
                Announcement("handoff.routed", {"route": route}),
            ]

        def place(row: ConversationRow, directory: Directory) -> list[Pending]:
            # A handoff outside business hours failed at once: nobody is offered it.
            return [
                *self._assignment.placement(row, decision, directory, now),
                *self._live.landing(row, landing, now),
            ]

        return OpenPlan(row, history, pending, now, place, decision.names_agents, self._count_limit)

    def delivered(self, row: OutboxRow, result: DeliveryResult) -> Unit[None]:
        """Keep the platform's id for the conversation once the agent side has opened it:
        steps of the unit that records the delivery.

        Events the platform sent about the chat before this (parked, see early_events)
        are then applied by a job queued in this same transaction.
        """
        if row.kind != OpenConversation.kind or not row.conversation_id:
            return None
        ref = result.external_ref
        if not ref:
            return None
        yield hs.set_platform_ref(row.conversation_id, ref, result.join_url)
        # An agent delivery's target is its channel.
        yield hs.lock_platform_ref(row.target, ref)
        if (yield hs.has_parked_events(row.target, ref)):
            yield steps.enqueue(ReplayInbound(row.conversation_id).values(self._clock()))
