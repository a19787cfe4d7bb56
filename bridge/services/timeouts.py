"""Accept timeouts: a chat nobody answers is offered further, or goes back to the queue.

A channel (or the team a chat was routed to) may set `accept_timeout_seconds`. Then:

- a waiting chat that nobody takes within that time is offered one ring wider
  (bridge/routing/widening.py), and the timer starts again;
- an assigned chat whose agent has not answered (sent a first message) within that time
  goes back to the queue: the agent is passed over, their capacity given back, the bot
  hears `agent.left`, and the chat is offered one ring wider when nobody online is left;
- an agent who goes offline or absent hands back, the same way, every assigned chat of
  theirs that they have not answered yet.

Timers are outbox rows (`AcceptTimeout`), so they survive a restart and fire once across
replicas. Each carries the round it was armed in; arming a new one (a take, a requeue, a
transfer) moves the conversation's round on, so an older timer fires as a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from bridge.db.repo import Store, Tx
from bridge.db.retry import run_again_on_conflict
from bridge.db.tables import ConversationRow
from bridge.domain.conversation import waiting_for_agent
from bridge.domain.status import Event, Status, sources, target
from bridge.events import announce
from bridge.relay.jobs import AcceptTimeout
from bridge.routing.steps.escalation import Directory
from bridge.routing.widening import Chat, widen
from bridge.services.pending import Later
from bridge.services.queue import queue_changed
from bridge.services.routing_state import RoutingState
from bridge.settings import Settings

log = logging.getLogger(__name__)

# Why an agent left a chat, as `agent.left` says it.
LeftReason = Literal["accept_timeout", "agent_offline", "agent_absent", "transferred"]


@dataclass(frozen=True, slots=True)
class AcceptTimes:
    """Accept timeouts by channel and by team; a team's wins for chats routed to it."""

    channels: Mapping[str, float] = field(default_factory=dict)
    teams: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> AcceptTimes:
        """Every channel's and config team's `accept_timeout_seconds` that is set."""
        channels = {
            name: channel.accept_timeout_seconds
            for name, channel in settings.channels.items()
            if channel.accept_timeout_seconds is not None
        }
        teams = {
            team.id: team.accept_timeout_seconds
            for team in settings.teams
            if team.accept_timeout_seconds is not None
        }
        return cls(channels, teams)

    def seconds(self, row: ConversationRow) -> float | None:
        """The chat's accept timeout: its team's, else its channel's, else its main channel's."""
        if row.team_id is not None and row.team_id in self.teams:
            return self.teams[row.team_id]
        return self.channels.get(row.channel, self.channels.get(row.main_channel))


class AcceptTimeouts:
    """Arms accept timers, and acts on them when they fire."""

    def __init__(
        self,
        store: Store,
        routing: RoutingState,
        times: AcceptTimes,
        on_commit: Callable[[], None],
        clock: Callable[[], datetime],
        *,
        on_queue_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._routing = routing
        self._times = times
        self._on_commit = on_commit
        self._clock = clock
        self._on_queue_change = on_queue_change

    def seconds(self, row: ConversationRow) -> float | None:
        """The chat's accept timeout, None when it has none."""
        return self._times.seconds(row)

    async def arm(self, tx: Tx, row: ConversationRow, now: datetime) -> None:
        """Start a new round for the chat as it is now (waiting or assigned), if it has a
        timeout; the previous round's timer, if any, will change nothing."""
        timer = self.next_round(row, now)
        if timer is None:
            return
        await tx.update_conversation(row.id, accept_round=row.accept_round)
        await tx.enqueue([timer.job.to_row(now, due=timer.due)])

    def next_round(self, row: ConversationRow, now: datetime) -> Later | None:
        """Move `row` to its next round (not written here) and answer that round's timer;
        None when the chat has no timeout."""
        seconds = self.seconds(row)
        if seconds is None:
            return None
        row.accept_round = (row.accept_round or 0) + 1
        return Later(AcceptTimeout(row.id, row.accept_round), now + timedelta(seconds=seconds))

    async def agent_away(self, tx: Tx, agent_id: str, now: datetime) -> None:
        """The agent went offline or absent: check each of their assigned chats now.

        Only timers are queued here, in the presence change's transaction: the checks
        lock each conversation in their own transaction, conversation before agent, the
        order every other path keeps.
        """
        rows = [
            row
            for row in await tx.assigned_to(agent_id)
            if row.status == Status.ACTIVE and self.seconds(row) is not None
        ]
        if rows:
            timers = [AcceptTimeout(row.id, row.accept_round, away=True) for row in rows]
            await tx.enqueue([timer.to_row(now) for timer in timers])

    async def fire(self, timer: AcceptTimeout) -> None:
        """A timer is due: act on the chat if its round is still the current one."""
        await run_again_on_conflict(lambda: self._fire_once(timer))

    async def _fire_once(self, timer: AcceptTimeout) -> None:
        now = self._clock()
        # Read before the transaction: SQLite has one connection.
        directory = await self._routing.directory()
        async with self._store.transaction() as tx:
            row = await tx.get_conversation(timer.conversation_id, lock=True)
            if row is None or row.accept_round != timer.round:
                return
            if row.status == Status.ACTIVE and row.assignee_id and row.assigned_at:
                reason = self._lapsed(row, directory, timer.away)
                if reason is None or await tx.first_agent_reply(row.id, row.assigned_at):
                    return
                await self.requeue(tx, row, directory, now, reason)
            elif waiting_for_agent(row.status, row.assignee_id) and not timer.away:
                why = f"nobody took it within {self.seconds(row) or 0:g} s"
                await self._widen(tx, row, directory, now, why)
            else:
                return
        self._on_commit()

    @staticmethod
    def _lapsed(row: ConversationRow, directory: Directory, away: bool) -> LeftReason | None:
        """Why the assigned agent loses the chat, or None while they still may answer."""
        presence = directory.presence_of(row.assignee_id or "")
        if presence == "offline":
            return "agent_offline"
        if presence == "absent":
            return "agent_absent"
        # An away check that finds the agent back online leaves it to the round's timer,
        # which was queued due at the end of the accept time: its time is up.
        return None if away else "accept_timeout"

    async def requeue(
        self,
        tx: Tx,
        row: ConversationRow,
        directory: Directory,
        now: datetime,
        reason: LeftReason,
    ) -> None:
        """Take the chat from its assigned agent and put it back in its queue."""
        agent_id = row.assignee_id
        if agent_id is None:
            return
        seconds = self.seconds(row)
        why = {
            "accept_timeout": f"did not answer within {seconds:g} s" if seconds else "timed out",
            "agent_offline": "went offline before answering",
            "agent_absent": "signed out before answering",
            "transferred": "transferred it",
        }[reason]
        passed_over = sorted({*row.passed_over, agent_id})
        trace = [*row.route_trace, f"{agent_id} {why} → back in the queue"]
        moved = await tx.transition(
            row.id,
            sources(Event.REQUEUE),
            target(Event.REQUEUE),
            assignee_id=None,
            assigned_at=None,
            agent=None,
            passed_over=passed_over,
            route_trace=trace,
            updated_at=now,
        )
        if not moved:
            return
        await tx.release_capacity(agent_id)
        left = {**(row.agent or {}), "id": agent_id}
        await announce(tx, row, "agent.left", {"agent": left, "reason": reason}, now, to_bot=True)
        await queue_changed(tx, row.channel, now, self._on_queue_change)
        log.info(
            "routing.requeued", extra={"conversation": row.id, "agent": agent_id, "why": reason}
        )
        row = await tx.get_conversation(row.id, lock=True) or row
        if not any(
            directory.presence_of(a) == "online" and a not in passed_over for a in row.offered_to
        ):
            await self._widen(tx, row, directory, now, f"{agent_id} {why}")
        else:
            await self.arm(tx, row, now)

    async def _widen(
        self, tx: Tx, row: ConversationRow, directory: Directory, now: datetime, why: str
    ) -> None:
        """Offer the chat one ring wider; the timer starts again when someone was added."""
        table = self._routing.table
        steps = table.routers.get(row.router_id, ()) if row.router_id else ()
        chat = Chat(
            offered_to=frozenset(row.offered_to),
            passed_over=frozenset(row.passed_over),
            organization_id=row.organization_id,
            channel_team=table.channel_team.get(row.channel),
            team_id=row.team_id,
            router_steps=steps,
            activated_at=tuple(datetime.fromisoformat(t) for t in row.routing_progress),
        )
        widened = widen(chat, directory, now)
        if widened is None:
            line = f"accept timeout: {why}; nobody else to offer it to"
            await tx.update_conversation(row.id, route_trace=[*row.route_trace, line])
            log.info("routing.accept_timeout", extra={"conversation": row.id, "widened": False})
            return
        row.offered_to = sorted(widened.offered_to)
        row.routing_progress = [t.isoformat() for t in widened.activated_at]
        row.route_trace = [*row.route_trace, f"accept timeout: {why}; {widened.trace}"]
        await tx.update_conversation(
            row.id,
            offered_to=row.offered_to,
            routing_progress=row.routing_progress,
            route_trace=row.route_trace,
            updated_at=now,
        )
        log.info("routing.accept_timeout", extra={"conversation": row.id, "widened": True})
        await self.arm(tx, row, now)
