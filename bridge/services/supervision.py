"""The supervisor's views: conversations by filter, page by page, and the queue per channel.

Read-only, and scoped: every call names the organization whose conversations it may
show (None: every organization's, for the admin). Queue positions are derived when read,
as everywhere (bridge/services/queue.py): a listed chat's position is counted on the
queue's index, and a channel's head is numbered in queue order.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from bridge.db.repo import Store, Tx
from bridge.db.repo.supervision import ChangeMarker, ChannelQueue, ConversationFilter
from bridge.db.tables import ConversationRow
from bridge.domain.status import Status
from bridge.services.queue import spot_of, spots_in_order
from bridge.services.supervision_query import (
    ConversationQuery,
    QueueQuery,
    cursor_of,
    read_cursor,
)
from bridge.settings import Settings


def customer_summary(row: ConversationRow) -> dict[str, Any]:
    """Who the customer is, as a supervisor needs it: the id and a name, nothing more."""
    customer = row.customer or {}
    parts = [customer.get("firstname"), customer.get("lastname")]
    name = " ".join(str(part) for part in parts if part) or None
    return {"id": row.customer_id, "name": name}


def wait_seconds(row: ConversationRow, now: datetime) -> int:
    """How long the chat waited for an agent: so far while waiting, else until one came
    (or until it ended without one)."""
    if row.status == Status.PENDING:
        until = now
    else:
        until = row.assigned_at or row.closed_at or row.updated_at
    return max(0, int((until - row.created_at).total_seconds()))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _agent(row: ConversationRow) -> dict[str, Any] | None:
    """The agent who took or joined the chat: an id when taken, the name they gave."""
    if row.agent is None and row.assignee_id is None:
        return None
    agent = row.agent or {}
    return {"id": agent.get("id") or row.assignee_id, "name": agent.get("name")}


class Supervision:
    """Reads the supervisor's views from the store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        # Each configured channel's organization and platform: a channel with nobody
        # waiting is still shown, to its own organization only.
        self._owners = {name: settings.channel_organization(name) for name in settings.channels}
        self._platforms = {name: channel.platform for name, channel in settings.channels.items()}
        self._count_limit = settings.queue.count_limit

    async def conversations(
        self, query: ConversationQuery, organization_id: str | None, now: datetime
    ) -> dict[str, Any]:
        """One page of conversations matching `query`, and the cursor of the next."""
        start = read_cursor(query.cursor, query.order)
        waiting_since = None
        if query.waiting_longer_than is not None:
            waiting_since = now - timedelta(seconds=query.waiting_longer_than)
        chosen = ConversationFilter(
            organization_id=organization_id,
            statuses=frozenset(query.status),
            channel=query.channel,
            team_id=query.team,
            agent_id=query.agent,
            created_from=query.created_from,
            created_to=query.created_to,
            waiting_since=waiting_since,
        )
        async with self._store.transaction() as tx:
            # One more than asked: whether there is a next page, without counting.
            rows = await tx.list_conversations(
                chosen, start, newest_first=query.order == "-created_at", limit=query.limit + 1
            )
            page = rows[: query.limit]
            stuck = await tx.stuck_deliveries([row.id for row in page])
            items = [await self._item(tx, row, stuck.get(row.id, {}), now) for row in page]
        more = len(rows) > query.limit
        return {"items": items, "next_cursor": cursor_of(page[-1], query.order) if more else None}

    async def _item(
        self, tx: Tx, row: ConversationRow, stuck: Mapping[str, int], now: datetime
    ) -> dict[str, Any]:
        spot = await spot_of(tx, row, self._count_limit)
        return {
            "id": row.id,
            "status": row.status.value,
            "status_reason": row.status_reason,
            "organization_id": row.organization_id,
            "main_channel": row.main_channel,
            "channel": row.channel,
            "platform": row.platform,
            "customer": customer_summary(row),
            "team_id": row.team_id,
            "agent": _agent(row),
            "offered_to": list(row.offered_to),
            "priority": row.priority,
            "created_at": row.created_at.isoformat(),
            "assigned_at": _iso(row.assigned_at),
            "closed_at": _iso(row.closed_at),
            # From the server's clock, so a browser with a wrong clock still shows the truth.
            "wait_seconds": wait_seconds(row, now),
            "queue_position": spot.position,
            "estimated_wait_seconds": spot.estimated_wait_seconds,
            "deliveries": {"pending": stuck.get("pending", 0), "dead": stuck.get("dead", 0)},
        }

    async def queue(
        self, query: QueueQuery, organization_id: str | None, now: datetime
    ) -> dict[str, Any]:
        """Per channel: its length, its oldest wait and its first waiting chats in order."""
        async with self._store.transaction() as tx:
            found = {q.channel: q for q in await tx.waiting_channels(organization_id)}
            names = set(found) | {
                name for name, owner in self._owners.items() if organization_id in (None, owner)
            }
            if query.channel is not None:
                names &= {query.channel}
            channels = [
                await self._channel(tx, name, found.get(name), organization_id, query.limit, now)
                for name in sorted(names)
            ]
        return {"channels": channels}

    async def _channel(
        self,
        tx: Tx,
        name: str,
        waiting: ChannelQueue | None,
        organization_id: str | None,
        limit: int,
        now: datetime,
    ) -> dict[str, Any]:
        head = await tx.queue_head(name, organization_id, limit) if waiting else []
        spots = await spots_in_order(tx, head, head)
        oldest = None
        if waiting is not None:
            oldest = max(0, int((now - waiting.oldest_created_at).total_seconds()))
        return {
            "channel": name,
            "organization_id": self._owners.get(name),
            "platform": self._platforms.get(name),
            "length": waiting.length if waiting else 0,
            "oldest_wait_seconds": oldest,
            "waiting": [
                {
                    "id": row.id,
                    "customer": customer_summary(row),
                    "position": spots[row.id].position,
                    "estimated_wait_seconds": spots[row.id].estimated_wait_seconds,
                    "wait_seconds": wait_seconds(row, now),
                    "created_at": row.created_at.isoformat(),
                    "priority": row.priority,
                    "team_id": row.team_id,
                    "offered_to": list(row.offered_to),
                }
                for row in head
            ],
        }

    async def change_marker(self, organization_id: str | None) -> ChangeMarker:
        """A value that differs after any change the views would show (for live pages)."""
        async with self._store.transaction() as tx:
            return await tx.change_marker(organization_id)
