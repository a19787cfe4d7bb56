"""Who gets a pending chat: offers from teams, agents and router steps; taking; capacity.

A routing decision names a target (assignee, agents, team or router). The chat is
offered to the target's agents; for a router, later steps add agents as their
preconditions come to hold (offers only grow). An agent takes a chat from their desk:
the first to take it wins, and an agent at capacity cannot take more. Router timers
are outbox rows due at the next time a precondition can start to hold, so they survive
a restart and fire once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from bridge.db.repo import Store, Tx
from bridge.db.retry import run_again_on_conflict
from bridge.db.tables import AgentRow, ConversationRow, OutboxRow
from bridge.domain.conversation import waiting_for_agent
from bridge.domain.reasons import waiting
from bridge.errors import (
    Conflict,
    ConversationNotFound,
    FieldProblem,
    NotFound,
)
from bridge.events import announce
from bridge.relay.jobs import EvaluateRouting
from bridge.routing.engine import Decision
from bridge.routing.staffing import staffing_of
from bridge.routing.steps.escalation import Directory, Progress, advance
from bridge.services.pending import Announcement, Later, Pending, write_pending
from bridge.services.queue import QueueSpot, queue_changed, spot_of, spots_in_order
from bridge.services.routing_state import RoutingState
from bridge.services.timeouts import AcceptTimeouts

log = logging.getLogger(__name__)


def evaluation_timer(conversation_id: str, due: datetime, now: datetime) -> OutboxRow:
    """A durable timer: re-evaluate this conversation's routing at `due`."""
    return EvaluateRouting(conversation_id).to_row(now, due=due)


async def _desk_agent(tx: Tx, agent_id: str) -> AgentRow:
    # A valid link of an agent since removed from the directory signs in no one.
    agent = await tx.get_agent(agent_id)
    if agent is None:
        raise NotFound(f"no agent {agent_id!r}", [FieldProblem("agent_id", "unknown agent")])
    return agent


class Assignment:
    """Offers, escalation, taking, capacity and the queue."""

    def __init__(
        self,
        store: Store,
        routing: RoutingState,
        on_commit: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        on_queue_change: Callable[[], None] = lambda: None,
        count_limit: int = 100,
        timeouts: AcceptTimeouts | None = None,
    ) -> None:
        self._store = store
        self._routing = routing
        self._on_commit = on_commit
        self._clock = clock
        self._on_queue_change = on_queue_change
        self._count_limit = count_limit
        self._timeouts = timeouts

    @property
    def count_limit(self) -> int:
        """How far a queue position is counted (`queue.count_limit`)."""
        return self._count_limit

    def queue_woken(self) -> None:
        """A queue changed in a unit of work that has committed: wake its announcer."""
        self._on_queue_change()

    # -- at creation (inside the handoff's transaction) ----------------------------------

    async def place(
        self, tx: Tx, row: ConversationRow, decision: Decision, directory: Directory
    ) -> None:
        """Record the decision's target on a conversation in `tx` and make the first offers."""
        now = self._clock()
        pending = self.placement(row, decision, directory, now)
        await tx.session.flush()
        await write_pending(tx, row, pending, now)

    def placement(
        self, row: ConversationRow, decision: Decision, directory: Directory, now: datetime
    ) -> list[Pending]:
        """Set the decision's target and the first offers on `row` (not written here), and
        say what to queue with it: the router's timer, the accept timer, `handoff.waiting`.

        Plain Python, so a new handoff decides it inside its unit of work.
        """
        row.team_id, row.router_id, row.priority = (
            decision.team_id,
            decision.router_id,
            decision.priority,
        )
        pending: list[Pending] = []
        offered: set[str] = set(decision.agent_ids) | set(decision.settings.default_agent_ids)
        if decision.assignee:
            offered.add(decision.assignee)
        elif decision.team_id:
            offered |= directory.team_members.get(decision.team_id, frozenset())
        trace = list(row.route_trace)
        if decision.router_id and not decision.assignee:
            steps = self._routing.table.routers.get(decision.router_id, ())
            if steps:
                evaluation = advance(steps, None, directory, row.created_at, now)
                offered |= evaluation.offered_to
                row.routing_progress = [t.isoformat() for t in evaluation.progress.activated_at]
                trace.extend(f"router {decision.router_id!r}: {line}" for line in evaluation.trace)
                if evaluation.next_due is not None:
                    pending.append(Later(EvaluateRouting(row.id), evaluation.next_due))
        row.offered_to = sorted(offered)
        if row.offered_to:
            trace.append(f"offered to {', '.join(row.offered_to)}")
        row.route_trace = trace
        if self._timeouts is not None and (timer := self._timeouts.next_round(row, now)):
            pending.append(timer)
        # Chats nobody is offered to are answered through join links; only a real
        # target with nobody online (or everyone online full) leaves the customer waiting.
        reason = staffing_of(row.offered_to, directory).waiting_reason
        if reason is not None:
            pending.append(Announcement("handoff.waiting", waiting(reason), to_bot=True))
        return pending

    # -- later: timers and presence changes ---------------------------------------------------

    async def evaluate(self, conversation_id: str) -> None:
        """Re-run the router's steps for a pending chat; new steps add offers."""
        now = self._clock()
        directory = await self._routing.directory()
        async with self._store.transaction() as tx:
            row = await tx.get_conversation(conversation_id)
            if row is None or not row.router_id:
                return
            if not waiting_for_agent(row.status, row.assignee_id):
                return
            steps = self._routing.table.routers.get(row.router_id, ())
            if not steps:
                return
            progress = Progress(tuple(datetime.fromisoformat(t) for t in row.routing_progress))
            evaluation = advance(steps, progress, directory, row.created_at, now)
            if evaluation.newly_activated:
                offered = set(row.offered_to) | evaluation.offered_to
                trace = [
                    *row.route_trace,
                    *(f"router {row.router_id!r}: {line}" for line in evaluation.trace),
                ]
                await tx.update_conversation(
                    row.id,
                    offered_to=sorted(offered),
                    routing_progress=[t.isoformat() for t in evaluation.progress.activated_at],
                    route_trace=trace,
                    updated_at=now,
                )
                log.info(
                    "routing.escalated",
                    extra={"conversation": row.id, "steps": evaluation.newly_activated},
                )
            if evaluation.next_due is not None:
                await tx.enqueue([evaluation_timer(row.id, evaluation.next_due, now)])
        self._on_commit()

    async def set_presence(
        self,
        agent_id: str,
        presence: str,
        *,
        name: str | None = None,
        source: str = "api",
        delivery_id: str | None = None,
    ) -> None:
        """Record presence; when it changed, pending chats with routers are re-evaluated.

        The one path for every source (the desk, the agents API, signed integrations and
        platforms), so each one re-evaluates routing and creates an unknown agent in the
        organization of the reporting channel, else the configured one. A signed call's
        webhook-id is recorded in the same transaction, so a redelivery changes nothing.
        """
        now = self._clock()
        async with self._store.transaction() as tx:
            if delivery_id is not None and not await tx.record_delivery(delivery_id, now):
                return
            changed = await tx.set_presence(
                source, agent_id, name, presence, now, self._routing.reporter_organization(source)
            )
            if changed:
                await self.schedule_reevaluation(tx, now)
                # An agent who leaves hands back the chats they have not answered yet.
                if presence != "online" and self._timeouts is not None:
                    await self._timeouts.agent_away(tx, agent_id, now)
        self._on_commit()

    async def schedule_reevaluation(self, tx: Tx, now: datetime) -> None:
        """Queue an evaluation, due now, of every pending chat that has a router."""
        pending = [c for c in await tx.pending_conversations() if c.router_id]
        if pending:
            await tx.enqueue([evaluation_timer(c.id, now, now) for c in pending])

    # -- the agent's desk -----------------------------------------------------------------------

    async def offers(self, agent_id: str) -> list[tuple[ConversationRow, QueueSpot]]:
        """Pending chats offered to this agent, in queue order, with their places in it."""
        async with self._store.transaction() as tx:
            pending = await tx.pending_conversations()
            offered = [c for c in pending if agent_id in c.offered_to]
            spots = await spots_in_order(tx, pending, offered)
        return [(c, spots[c.id]) for c in offered]

    async def agent(self, agent_id: str) -> AgentRow:
        """The agent a desk link signs in, or NotFound once they left the directory."""
        async with self._store.transaction() as tx:
            return await _desk_agent(tx, agent_id)

    async def desk(self, agent_id: str) -> tuple[AgentRow, list[ConversationRow]]:
        """The agent and their active chats (oldest first), read together."""
        async with self._store.transaction() as tx:
            return await _desk_agent(tx, agent_id), await tx.assigned_to(agent_id)

    async def take(self, conversation_id: str, agent_id: str) -> ConversationRow:
        """Give the chat to the agent: the first to take it wins, capacity permitting."""
        return await run_again_on_conflict(functools.partial(self._take, conversation_id, agent_id))

    async def _take(self, conversation_id: str, agent_id: str) -> ConversationRow:
        now = self._clock()
        async with self._store.transaction() as tx:
            agent = await tx.get_agent(agent_id)
            if agent is None:
                raise NotFound(f"no agent {agent_id!r}", [FieldProblem("agent_id", "unknown")])
            row = await tx.get_conversation(conversation_id)
            if row is None:
                raise ConversationNotFound(conversation_id)
            if not waiting_for_agent(row.status, row.assignee_id):
                raise Conflict(
                    "this chat was already taken", [FieldProblem("conversation", "already taken")]
                )
            if row.offered_to and agent_id not in row.offered_to:
                raise Conflict(
                    "this chat is not offered to you",
                    [FieldProblem("agent_id", "not among the offered agents")],
                )
            joined = {"id": agent.id, "name": agent.name, "joined_at": now.isoformat()}
            # Locks in the one order every path keeps, the conversation before its agent
            # (a close gives capacity back in that order too), so concurrent takes never
            # deadlock. Conditional: of two agents taking at once, one update finds it
            # already taken.
            if not await tx.assign(conversation_id, agent_id, joined, now):
                raise Conflict(
                    "this chat was already taken", [FieldProblem("conversation", "already taken")]
                )
            # Conditional too; at capacity, the whole transaction, the assignment
            # included, rolls back.
            if not await tx.try_take_capacity(agent_id):
                raise Conflict(
                    f"you are at capacity ({agent.capacity} active chats)",
                    [FieldProblem("capacity", f"{agent.capacity} reached")],
                )
            await tx.session.refresh(row)
            if self._timeouts is not None:
                await self._timeouts.arm(tx, row, now)
            await announce(tx, row, "agent.joined", {"agent": joined}, now, to_bot=True)
            await self.queue_changed(tx, row.channel, now)
        self._on_commit()
        return row

    # -- the queue (bridge/services/queue.py) ------------------------------------------------

    async def queue_changed(self, tx: Tx, channel: str, now: datetime) -> None:
        """A chat joined or left the channel's queue: its bots hear their new positions at
        the channel's next announcement, not each one now."""
        await queue_changed(tx, channel, now, self._on_queue_change)

    async def spot(self, row: ConversationRow) -> QueueSpot:
        """The chat's position and estimated wait, counted now (none once it left the queue)."""
        if not waiting_for_agent(row.status, row.assignee_id):
            return QueueSpot()
        async with self._store.transaction() as tx:
            return await self.spot_in(tx, row)

    async def spot_in(self, tx: Tx, row: ConversationRow) -> QueueSpot:
        """The same, counted in a transaction the caller has open."""
        return await spot_of(tx, row, self._count_limit)
