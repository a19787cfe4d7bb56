"""Routing across platforms by live availability: a chat moves to the next fallback channel
when nobody is available where it was routed, or when nobody took it in time.

At the handoff, before anything is stored, the chosen channel is probed (its platform,
else the bridge's presence; see availability.py). When it has nobody, the main channel's
`fallback_channels` are probed in order and the chat opens on the first that does not
report nobody (one outside its hours is passed over); when every one reports nobody, it
stays where it was routed and waits there. Either way the trace says so, and a move is
announced as `conversation.transferred` (reason `no_agents_online`) with the creation.

With `fallback_after_seconds`, a chat waiting on a channel that has a fallback after it
arms a timer (an outbox row: it fires once across replicas, and survives a restart).
If nobody has taken the chat when it fires, the chat moves on the same way (reason
`wait_timeout`): it is withdrawn from the old platform, opened on the new one with its
whole transcript, offered to that channel's agents, and the timer is armed again there.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from bridge.db.repo import Store, Tx
from bridge.db.tables import ConversationRow
from bridge.domain.conversation import waiting_for_agent
from bridge.models import MAX_HISTORY
from bridge.ports.agent_side import AgentSideAdapter
from bridge.relay.jobs import Job, lane
from bridge.relay.jobs.moves import FallbackTimer, WithdrawConversation
from bridge.routing.engine import Decision
from bridge.routing.fallback import chain_after, on_fallback
from bridge.routing.overrides import ConversationSettings
from bridge.routing.regions import RouteRule
from bridge.routing.steps.escalation import Directory
from bridge.services.assignment import Assignment
from bridge.services.availability import Probe, Prober
from bridge.services.open_jobs import open_jobs
from bridge.services.pending import Announcement, Later, Pending
from bridge.services.routing_state import RoutingState
from bridge.transfers import (
    TRANSFERRED,
    Place,
    TransferReason,
    Transferred,
    announce_transferred,
)

log = logging.getLogger(__name__)

# Messages read to open a moved chat elsewhere; the newest MAX_HISTORY of them go along.
_TRANSCRIPT_READ = 5 * MAX_HISTORY


@dataclass(frozen=True, slots=True)
class Landing:
    """Where a handoff lands after its channel was probed, and where it would have gone."""

    decision: Decision
    # The channel the rules chose, when the chat moved away from it.
    moved_from: str | None = None
    # What the landing channel's probe said (None: it was not probed, having no fallbacks).
    probe: Probe | None = None


class LiveRouting:
    """Moves chats to fallback channels when nobody is available or nobody takes them."""

    def __init__(
        self,
        store: Store,
        routing: RoutingState,
        assignment: Assignment,
        adapters: Mapping[str, AgentSideAdapter],
        prober: Prober,
        on_commit: Callable[[], None],
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._routing = routing
        self._assignment = assignment
        self._adapters = adapters
        self._prober = prober
        self._on_commit = on_commit
        self._clock = clock

    # -- at the handoff ------------------------------------------------------------------

    async def land(self, decision: Decision, given_settings: Mapping[str, Any]) -> Landing:
        """Probe the chosen channel; move to a fallback when it has nobody (nothing stored)."""
        if not decision.fallback_channels or decision.closed:
            return Landing(decision)
        directory = await self._routing.directory()
        now = self._clock()
        table = self._routing.table
        probe = await self._prober.probe(table, decision, directory, now)
        if probe.available is not False:
            return Landing(decision, probe=probe)
        why = f"nobody available on {decision.channel!r} ({probe.source})"
        found = await self._first_available(decision, given_settings, directory, why)
        if found is None:
            line = f"{why}; no fallback channel has anybody either: waiting on {decision.channel!r}"
            return Landing(_traced(decision, line), probe=probe)
        moved, landed = found
        return Landing(moved, moved_from=decision.channel, probe=landed)

    async def _first_available(
        self,
        decision: Decision,
        given_settings: Mapping[str, Any],
        directory: Directory,
        why: str,
    ) -> tuple[Decision, Probe] | None:
        """The decision on the first fallback channel that does not report nobody."""
        now = self._clock()
        table = self._routing.table
        for channel in decision.fallback_channels:
            candidate = on_fallback(table, decision, channel, given_settings, now, why)
            if candidate is None:
                why = f"{why}; {channel!r} outside hours"
                continue
            probe = await self._prober.probe(table, candidate, directory, now)
            if probe.available is not False:
                return candidate, probe
            why = f"{why}; nobody on {channel!r} ({probe.source})"
        return None

    def landing(self, row: ConversationRow, landing: Landing, now: datetime) -> list[Pending]:
        """What a new chat queues for where it landed: the move's announcement, if it
        moved, and the timer for the next fallback (when configured)."""
        pending: list[Pending] = []
        if landing.moved_from is not None:
            platform = self._adapters[landing.moved_from].platform
            moved = Transferred(
                Place(landing.moved_from, platform), Place.of(row), "no_agents_online"
            )
            pending.append(Announcement(TRANSFERRED, moved.data(), to_bot=True))
        if (timer := self.fallback_timer(row, now)) is not None:
            pending.append(timer)
        return pending

    async def arm(self, tx: Tx, row: ConversationRow, now: datetime) -> None:
        """Set the timer that moves the chat on if nobody takes it (when configured)."""
        if (timer := self.fallback_timer(row, now)) is not None:
            await tx.enqueue([timer.job.to_row(now, due=timer.due)])

    def fallback_timer(self, row: ConversationRow, now: datetime) -> Later | None:
        """The timer that moves the chat on if nobody takes it; None when not configured."""
        after = self._routing.table.fallback_after.get(row.main_channel)
        if after is None or not chain_after(self._routing.table, row.main_channel, row.channel):
            return None
        return Later(FallbackTimer(row.id, row.channel), now + timedelta(seconds=after))

    # -- when the timer fires ------------------------------------------------------------

    async def move_on(self, conversation_id: str, channel: str) -> None:
        """Nobody took the chat on `channel` in time: move it to the next available fallback."""
        async with self._store.transaction() as tx:
            row = await tx.get_conversation(conversation_id)
        if row is None or not _still_waiting(row, channel):
            return
        table = self._routing.table
        chain = chain_after(table, row.main_channel, channel)
        if not chain:
            return
        after = table.fallback_after.get(row.main_channel, 0.0)
        base = Decision(
            main_channel=row.main_channel,
            channel=channel,
            region_rule=cast(RouteRule, row.route_rule),
            settings=ConversationSettings.model_validate(row.settings),
            priority=row.priority,
            fallback_channels=chain,
        )
        directory = await self._routing.directory()
        why = f"nobody took the chat on {channel!r} within {after:g} s"
        found = await self._first_available(base, row.settings, directory, why)
        if found is None:
            log.info("routing.fallback_none", extra={"conversation": row.id, "channel": channel})
            return
        await self._move(conversation_id, channel, found[0], directory)

    async def _move(
        self, conversation_id: str, channel: str, moved: Decision, directory: Directory
    ) -> None:
        now = self._clock()
        adapter = self._adapters[moved.channel]
        async with self._store.transaction() as tx:
            row = await tx.get_conversation(conversation_id, lock=True)
            # Taken, ended or moved while the fallback was probed: nothing to do.
            if row is None or not _still_waiting(row, channel):
                return
            source = Place.of(row)
            old_ref = row.external_ref
            # What has not reached the old platform yet never will.
            await tx.cancel_lane(lane(row.id, "agent"), f"moved to channel {moved.channel!r}")
            row.channel, row.platform = moved.channel, adapter.platform
            row.organization_id = self._routing.channel_organization(moved.channel)
            row.settings = moved.settings.model_dump(mode="json")
            row.external_ref = row.platform_join_url = None
            row.offered_to, row.routing_progress = [], []
            row.queue_position = row.queue_eta_seconds = None
            row.route_trace = [*row.route_trace, *moved.trace]
            row.updated_at = now
            await self._assignment.place(tx, row, moved, directory)
            jobs: list[Job] = []
            if old_ref is not None:
                reason = f"moved to channel {moved.channel!r}"
                jobs.append(WithdrawConversation(row.id, channel, old_ref, reason))
            transcript = await tx.messages(row.id, limit=_TRANSCRIPT_READ)
            jobs.extend(open_jobs(row, adapter, transcript[-MAX_HISTORY:]))
            await tx.enqueue([job.to_row(now) for job in jobs])
            await self._assignment.queue_changed(tx, channel, now)
            await self._assignment.queue_changed(tx, row.channel, now)
            reason_code: TransferReason = "wait_timeout"
            await announce_transferred(
                tx, row, Transferred(source, Place.of(row), reason_code), now
            )
            await self.arm(tx, row, now)
        self._on_commit()
        log.info(
            "routing.fallback",
            extra={"conversation": conversation_id, "from": channel, "to": moved.channel},
        )


def _still_waiting(row: ConversationRow, channel: str) -> bool:
    """Still on `channel`, and nobody has taken or joined it."""
    return row.channel == channel and waiting_for_agent(row.status, row.assignee_id)


def _traced(decision: Decision, line: str) -> Decision:
    return dataclasses.replace(decision, trace=(*decision.trace, line))
