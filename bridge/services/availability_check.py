"""`POST /v1/availability`: where a handoff would land now and who is there, storing nothing.

The handoff's own routing runs (explain's decision, then the live probes and fallback
channels a handoff would go through), and the answer adds what the bridge knows about
the landing channel: its agents online and with room, its queue and estimated wait, and
its business hours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bridge.db.repo import Store
from bridge.db.tables import ConversationRow
from bridge.domain.reasons import OUTSIDE_HOURS, Reason
from bridge.routing.staffing import staffing_of
from bridge.services.availability import Probe
from bridge.services.handoff import HandoffService
from bridge.services.queue import estimate, typical_wait
from bridge.services.routing_state import RoutingState

# Sorts after every conversation id (UUIDs), so a would-be chat queues behind ties in age.
_LAST_ID = "~"


class AvailabilityCheck:
    """Answers the availability check from routing, probes, presence and the queue."""

    def __init__(
        self,
        service: HandoffService,
        routing: RoutingState,
        store: Store,
        platform_of: Mapping[str, str],
        count_limit: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._service = service
        self._routing = routing
        self._store = store
        self._platform_of = platform_of
        self._count_limit = count_limit
        self._clock = clock

    async def check(
        self,
        channel: str | None,
        region: str | None,
        customer: Mapping[str, Any],
        metadata: Mapping[str, Any],
        settings: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The answer's JSON (InvalidInput for an unknown channel or bad settings)."""
        decision = self._service.route(channel, region, customer, metadata, settings)
        landing = await self._service.live.land(decision, settings)
        landed = landing.decision
        directory = await self._routing.directory()
        now = self._clock()
        probe = landing.probe or await self._service.prober.probe(
            self._routing.table, landed, directory, now
        )
        staffing, counted = probe.staffing, "offered"
        if not staffing.offered:
            # Offered to nobody in particular: whoever of the channel's organization answers.
            organization = self._routing.channel_organization(landed.channel)
            staffing = staffing_of(directory.organization_users.get(organization, ()), directory)
            counted = "organization"
        waiting, wait = await self._queue(landed.channel, landed.priority, now)
        return {
            "main_channel": landed.main_channel,
            "channel": landed.channel,
            "platform": self._platform_of[landed.channel],
            "moved_from": landing.moved_from,
            "available": False if landed.closed else probe.available,
            "reason": _reason(landed.closed, probe),
            "source": probe.source,
            "platform_error": probe.platform_error,
            "agents": {
                "counted": counted,
                "total": len(staffing.offered),
                "online": len(staffing.online),
                "with_capacity": len(staffing.free),
            },
            "queue": {"waiting": waiting, "estimated_wait_seconds": wait},
            "open_now": not landed.closed,
            "next_opening": landed.next_open.isoformat() if landed.next_open else None,
            "route": {
                "team_id": landed.team_id,
                "router_id": landed.router_id,
                "fallback_channels": list(landed.fallback_channels),
                "trace": list(landed.trace),
            },
        }

    async def _queue(
        self, channel: str, priority: int, now: datetime
    ) -> tuple[int | None, int | None]:
        """Chats a new handoff would queue behind, and its estimated wait; None past the limit."""
        # Never added to the session: it only carries the queue's sort keys for the count.
        would_be = ConversationRow(channel=channel, priority=priority, created_at=now, id=_LAST_ID)
        async with self._store.transaction() as tx:
            ahead = await tx.ahead_in_queue(would_be, self._count_limit)
            typical = await typical_wait(tx, channel)
        if ahead is None:
            return None, None
        return ahead, estimate(typical, ahead + 1)


def _reason(closed: bool, probe: Probe) -> Reason | None:
    """Why nobody is available, in the vocabulary of handoff.waiting and handoff.failed."""
    if closed:
        return OUTSIDE_HOURS
    if probe.available is not False:
        return None
    return probe.staffing.waiting_reason or "no_agents_online"
