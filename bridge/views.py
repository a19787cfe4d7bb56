"""JSON views of stored rows, as the API and the console show them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bridge.db.tables import AgentRow, ConversationRow, MessageRow, OutboxRow
from bridge.relay.jobs import BotEvent
from bridge.services.queue import QueueSpot


def message_view(row: MessageRow) -> dict[str, Any]:
    """One transcript message; `attachments` only when it carries files."""
    view: dict[str, Any] = {
        "seq": row.seq,
        "role": row.role,
        "text": row.text,
        "author": row.author,
        "id": row.external_id,
        "sent_at": row.sent_at.isoformat(),
    }
    # Left out when there are none, so answers about plain messages stay as they were.
    if row.attachments:
        view["attachments"] = list(row.attachments)
    return view


def conversation_view(
    row: ConversationRow, join_url: str | None, queue: QueueSpot
) -> dict[str, Any]:
    """A conversation's state, with why it went where it went and its place in the queue."""
    return {
        "id": row.id,
        "status": row.status,
        "status_reason": row.status_reason,
        "main_channel": row.main_channel,
        "channel": row.channel,
        "platform": row.platform,
        "region": row.region,
        "route": {
            "rule": row.route_rule,
            "reason": "; ".join(row.route_trace),
            "trace": list(row.route_trace),
        },
        "join_url": join_url,
        "bot": {"platform": row.bot_platform, "conversation_id": row.bot_conversation_id},
        "callback_url": row.callback_url,
        "customer": row.customer,
        "metadata": row.conversation_metadata,
        "settings": row.settings,
        "agent": row.agent,
        "routing": {
            "team_id": row.team_id,
            "router_id": row.router_id,
            "priority": row.priority,
            "offered_to": row.offered_to,
            "steps_in_effect": len(row.routing_progress),
            "assignee_id": row.assignee_id,
            "queue_position": queue.position,
            "estimated_wait_seconds": queue.estimated_wait_seconds,
        },
        "external_ref": row.external_ref,
        "platform_join_url": row.platform_join_url,
        # What the agent said when handing it back: disposition, tags, note, by whom.
        "handback": row.handback,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "closed_at": row.closed_at.isoformat() if row.closed_at else None,
    }


def outbox_view(row: OutboxRow) -> dict[str, Any]:
    """A delivery, for the operator."""
    return {
        "id": row.id,
        "conversation_id": row.conversation_id,
        "kind": row.kind,
        "event_type": row.payload.get("type") if row.kind == BotEvent.kind else None,
        "target": row.target,
        "webhook_id": row.idempotency_key,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at.isoformat(),
        "last_error": row.last_error,
        "created_at": row.created_at.isoformat(),
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
    }


def console_view(row: ConversationRow) -> dict[str, Any]:
    """A conversation as the console's agent page shows it."""
    return {
        "id": row.id,
        "status": row.status,
        "status_reason": row.status_reason,
        "channel": row.channel,
        "main_channel": row.main_channel,
        "region": row.region,
        "customer": row.customer,
        "metadata": row.conversation_metadata,
        "agent": row.agent,
        "created_at": row.created_at.isoformat(),
        "route": {"rule": row.route_rule, "trace": list(row.route_trace)},
    }


def desk_agent_view(row: AgentRow) -> dict[str, Any]:
    """The agent as their desk shows them: presence and load."""
    return {
        "id": row.id,
        "name": row.name,
        "presence": row.presence,
        "capacity": row.capacity,
        "active_chats": row.active_count,
    }


def offer_view(row: ConversationRow, queue: QueueSpot, now: datetime) -> dict[str, Any]:
    """A pending chat offered to an agent on their desk, with what they need to choose it."""
    return {
        "id": row.id,
        "channel": row.channel,
        "customer": row.customer,
        "metadata": row.conversation_metadata,
        "created_at": row.created_at.isoformat(),
        # From the server's clock, so a browser with a wrong clock still shows the truth.
        "waiting_seconds": max(0, int((now - row.created_at).total_seconds())),
        "queue_position": queue.position,
        "estimated_wait_seconds": queue.estimated_wait_seconds,
        "route": {"rule": row.route_rule, "trace": list(row.route_trace)},
    }
