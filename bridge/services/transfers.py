"""Transfers: an agent or an operator moves a chat to another agent, team or channel.

The chat keeps its transcript, metadata and customer: the move changes only who may
take it and where. A transfer to an agent assigns it to them at once, within their
capacity (an agent at capacity is refused with 409: transfer to their team to queue it
instead); one to a team or a channel puts it back in the queue, offered to the team, or
to the channel's team or router. The agent who had it is passed over (a timeout will not
offer it back to them), gets their capacity back, and the bot hears `agent.left`, then
`conversation.transferred` (from, to, note) and, for an agent, `agent.joined`. The note
is kept in the transcript as a system message, so the next agent reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.db.repo import Store, Tx
from bridge.db.retry import run_again_on_conflict
from bridge.db.tables import ConversationRow, MessageRow, OutboxRow
from bridge.domain.status import Event, Status, sources, target, transition
from bridge.errors import Conflict, ConversationNotFound, FieldProblem, NotFound
from bridge.events import announce
from bridge.models import MAX_HISTORY, TransferRequest
from bridge.ports.agent_side import AgentSideAdapter
from bridge.relay.jobs import Job, lane
from bridge.relay.jobs.moves import WithdrawConversation
from bridge.routing.steps.escalation import Directory, advance
from bridge.routing.widening import describe
from bridge.services.open_jobs import open_jobs
from bridge.services.queue import queue_changed
from bridge.services.routing_state import RoutingState
from bridge.services.timeouts import AcceptTimeouts
from bridge.transfers import Place, TransferReason, Transferred, announce_transferred

log = logging.getLogger(__name__)

# A transcript longer than a handoff's history limit opens on the new platform with its
# newest part, as a handoff would.
_TRANSCRIPT_READ = 100_000


@dataclass(frozen=True, slots=True)
class Options:
    """Where the chat may go: its organization's online agents, its teams and channels."""

    agents: list[dict[str, Any]]
    teams: list[dict[str, Any]]
    channels: list[dict[str, Any]]


class Transfers:
    """Moves chats between agents, teams and channels of one organization."""

    def __init__(
        self,
        store: Store,
        routing: RoutingState,
        timeouts: AcceptTimeouts,
        adapters: Mapping[str, AgentSideAdapter],
        channels: Mapping[str, str],
        on_commit: Callable[[], None],
        clock: Callable[[], datetime],
        *,
        on_queue_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._routing = routing
        self._timeouts = timeouts
        self._adapters = adapters
        # Each configured channel's organization.
        self._channels = channels
        self._on_commit = on_commit
        self._clock = clock
        self._on_queue_change = on_queue_change

    async def options(self, conversation_id: str) -> Options:
        """Who and where the chat may be transferred to now."""
        async with self._store.transaction() as tx:
            row = await tx.get_conversation(conversation_id)
            if row is None:
                raise ConversationNotFound(conversation_id)
            agents, teams = await tx.agents(), await tx.teams()
        org = self._organization(row)
        return Options(
            agents=[
                {"id": a.id, "name": a.name, "presence": a.presence}
                for a in agents
                if a.organization_id == org and a.presence == "online" and a.id != row.assignee_id
            ],
            teams=[{"id": t.id, "name": t.name} for t in teams if t.organization_id == org],
            channels=[
                {"name": name, "platform": self._adapters[name].platform}
                for name, owner in sorted(self._channels.items())
                if owner == org and name != row.channel and name in self._adapters
            ],
        )

    async def transfer(
        self,
        conversation_id: str,
        request: TransferRequest,
        *,
        reason: TransferReason,
        by: str | None,
        organization_id: str | None = None,
    ) -> ConversationRow:
        """Move the chat; `organization_id`: the caller's, when it may see only its own."""
        return await run_again_on_conflict(
            lambda: self._transfer_once(conversation_id, request, reason, by, organization_id)
        )

    async def _transfer_once(
        self,
        conversation_id: str,
        request: TransferRequest,
        reason: TransferReason,
        by: str | None,
        organization_id: str | None,
    ) -> ConversationRow:
        now = self._clock()
        directory = await self._routing.directory()
        async with self._store.transaction() as tx:
            row = await tx.get_conversation(conversation_id, lock=True)
            org = self._organization(row) if row is not None else None
            if row is None or organization_id not in (None, org):
                raise ConversationNotFound(conversation_id)
            transition(conversation_id, row.status, Event.TRANSFER)
            source = Place.of(row)
            # Read now: the row is refreshed in place once it has moved.
            previous, old_channel, old_ref = row.assignee_id, row.channel, row.external_ref
            fields, destination, line = await self._destination(tx, row, request, directory, now)
            passed_over = sorted({*row.passed_over, previous}) if previous else row.passed_over
            who = f" by {by}" if by else ""
            moved = await tx.transition(
                row.id,
                sources(Event.TRANSFER),
                target(Event.TRANSFER),
                assignee_id=None,
                assigned_at=None,
                agent=None,
                passed_over=passed_over,
                route_trace=[*row.route_trace, f"transferred{who}: {line}"],
                updated_at=now,
                **fields,
            )
            if not moved:
                current = await tx.get_conversation(conversation_id, lock=True)
                status = current.status if current else Status.CLOSED
                raise Conflict(
                    f"cannot transfer conversation {conversation_id!r}: it is {status}",
                    [FieldProblem("status", f"is {status}")],
                )
            note = (request.note or "").strip() or None
            await self._record_note(tx, row, by, line, note, now)
            if previous is not None:
                await tx.release_capacity(previous)
            if row.agent is not None:
                # Also an agent who joined through the link, with no assignment.
                left = {**row.agent, "id": previous} if previous else dict(row.agent)
                data = {"agent": left, "reason": "transferred"}
                await announce(tx, row, "agent.left", data, now, to_bot=True)
            if row.status == Status.PENDING or fields.get("channel"):
                await queue_changed(tx, row.channel, now, self._on_queue_change)
            after = await tx.get_conversation(conversation_id, lock=True)
            assert after is not None  # locked above: nothing removed it
            moved_to = Place(after.channel, after.platform, destination.team_id, request.agent_id)
            event = Transferred(source, moved_to, reason, note)
            await announce_transferred(tx, after, event, now)
            if request.agent_id is not None:
                after = await self._assign(tx, after, request.agent_id, now)
            else:
                await queue_changed(tx, after.channel, now, self._on_queue_change)
            if request.channel is not None:
                await tx.enqueue(await self._reopen(tx, old_channel, old_ref, after, now))
            await self._timeouts.arm(tx, after, now)
        self._on_commit()
        log.info(
            "handoff.transferred",
            extra={"conversation": conversation_id, "to": line, "by_agent": by is not None},
        )
        return after

    def _organization(self, row: ConversationRow) -> str:
        return row.organization_id or self._routing.channel_organization(row.channel)

    async def _destination(
        self,
        tx: Tx,
        row: ConversationRow,
        request: TransferRequest,
        directory: Directory,
        now: datetime,
    ) -> tuple[dict[str, Any], Place, str]:
        """The fields that point the chat at its new place, that place, and a trace line."""
        org = self._organization(row)
        if request.agent_id is not None:
            agent = await tx.get_agent(request.agent_id)
            if agent is None or agent.organization_id != org:
                raise NotFound(
                    f"no agent {request.agent_id!r}", [FieldProblem("agent_id", "unknown agent")]
                )
            if agent.id == row.assignee_id:
                raise Conflict(
                    "the chat is already theirs", [FieldProblem("agent_id", "has it already")]
                )
            if agent.presence != "online":
                raise Conflict(
                    f"{agent.name} is not online",
                    [FieldProblem("agent_id", f"is {agent.presence}, not online")],
                )
            fields: dict[str, Any] = {
                "offered_to": [agent.id],
                "router_id": None,
                "routing_progress": [],
            }
            return (
                fields,
                Place(row.channel, row.platform, row.team_id, agent.id),
                (f"to agent {agent.id}"),
            )
        if request.team_id is not None:
            team = await tx.get_team(request.team_id)
            if team is None or team.organization_id != org:
                raise NotFound(
                    f"no team {request.team_id!r}", [FieldProblem("team_id", "unknown team")]
                )
            members = directory.team_members.get(team.id, frozenset())
            # The agent passing it on is left out, unless nobody else is in the team.
            offered = (members - {row.assignee_id or ""}) or members
            fields = {
                "team_id": team.id,
                "router_id": None,
                "routing_progress": [],
                "offered_to": sorted(offered),
            }
            line = f"to team {team.id!r} → offered to {describe(offered) or 'nobody'}"
            return fields, Place(row.channel, row.platform, team.id, None), line
        channel = request.channel or ""
        if self._channels.get(channel) != org or channel not in self._adapters:
            raise NotFound(f"no channel {channel!r}", [FieldProblem("channel", "unknown channel")])
        if channel == row.channel:
            raise Conflict(
                "the chat is on this channel already", [FieldProblem("channel", "is its channel")]
            )
        table = self._routing.table
        team_id, router_id = table.channel_team.get(channel), table.channel_router.get(channel)
        reached: frozenset[str] = frozenset()
        progress: list[str] = []
        steps = table.routers.get(router_id, ()) if router_id else ()
        if steps:
            evaluation = advance(steps, None, directory, now, now)
            reached, progress = evaluation.offered_to, [now.isoformat()]
        elif team_id is not None:
            reached = directory.team_members.get(team_id, frozenset())
        platform = self._adapters[channel].platform
        fields = {
            "channel": channel,
            "platform": platform,
            "team_id": team_id,
            "router_id": router_id if steps else None,
            "routing_progress": progress,
            "offered_to": sorted(reached),
            "external_ref": None,
            "platform_join_url": None,
        }
        line = f"to channel {channel!r} → offered to {describe(reached) or 'anyone there'}"
        return fields, Place(channel, platform, team_id, None), line

    async def _assign(
        self, tx: Tx, row: ConversationRow, agent_id: str, now: datetime
    ) -> ConversationRow:
        """Give the transferred chat to the agent it was sent to, within their capacity."""
        agent = await tx.get_agent(agent_id)
        assert agent is not None  # checked by _destination in this transaction
        joined = {"id": agent.id, "name": agent.name, "joined_at": now.isoformat()}
        if not await tx.assign(row.id, agent.id, joined, now):
            raise Conflict("the chat was taken meanwhile", [FieldProblem("conversation", "taken")])
        if not await tx.try_take_capacity(agent.id):
            # The whole transfer rolls back: the chat stays where it was.
            raise Conflict(
                f"{agent.name} is at capacity ({agent.capacity} active chats)",
                [FieldProblem("agent_id", f"at capacity ({agent.capacity})")],
            )
        await announce(tx, row, "agent.joined", {"agent": joined}, now, to_bot=True)
        after = await tx.get_conversation(row.id, lock=True)
        assert after is not None
        return after

    async def _record_note(
        self,
        tx: Tx,
        row: ConversationRow,
        by: str | None,
        line: str,
        note: str | None,
        now: datetime,
    ) -> None:
        """Keep the transfer in the transcript, with its note, for whoever takes it next."""
        text = f"Transferred {line.split(' → ')[0]}" + (f": {note}" if note else "")
        message = MessageRow(
            conversation_id=row.id,
            role="system",
            text=text,
            author=by,
            external_id=None,
            sent_at=now,
            created_at=now,
        )
        await tx.add_messages([message])

    async def _reopen(
        self,
        tx: Tx,
        old_channel: str,
        old_ref: str | None,
        after: ConversationRow,
        now: datetime,
    ) -> list[OutboxRow]:
        """Withdraw the chat from its old channel's platform and open it, transcript and
        all, on the new one (in the agent lane, so in that order). Deliveries still queued
        for the old channel are dropped: the new open carries what they held."""
        why = f"transferred to channel {after.channel!r}"
        await tx.cancel_lane(lane(after.id, "agent"), why)
        jobs: list[Job] = []
        if old_ref is not None:
            jobs.append(WithdrawConversation(after.id, old_channel, old_ref, why))
        transcript = await tx.messages(after.id, limit=_TRANSCRIPT_READ)
        jobs.extend(open_jobs(after, self._adapters[after.channel], transcript[-MAX_HISTORY:]))
        return [job.to_row(now) for job in jobs]
