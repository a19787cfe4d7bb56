"""Building outbox rows. Each row is one delivery, written in the caller's transaction."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from bridge.db.tables import OutboxRow

Side = Literal["agent", "bot"]

BOT_EVENT = "bot.event"
SUBSCRIPTION_EVENT = "subscription.event"
AGENT_OPEN = "agent.open"
AGENT_MESSAGE = "agent.message"
AGENT_CLOSE = "agent.close"


def lane(conversation_id: str, side: Side) -> str:
    """Deliveries to one side of one conversation go out in order: this names that line."""
    return f"{conversation_id}:{side}"


def agent_delivery(
    conversation_id: str, channel: str, kind: str, payload: dict[str, Any], now: datetime
) -> OutboxRow:
    """A delivery to the agent side (the channel's platform adapter)."""
    return OutboxRow(
        lane=lane(conversation_id, "agent"),
        conversation_id=conversation_id,
        kind=kind,
        target=channel,
        idempotency_key="msg_" + uuid.uuid4().hex,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def event_body(event_type: str, data: dict[str, Any], now: datetime) -> str:
    """An event as sent: `{type, timestamp, data}`, serialised once for every attempt."""
    return json.dumps(
        {"type": event_type, "timestamp": now.isoformat(), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def subscription_event(
    subscription_id: str, conversation_id: str, event_type: str, body: str, now: datetime
) -> OutboxRow:
    """A lifecycle event for one subscriber, in order per conversation and subscriber."""
    return OutboxRow(
        lane=f"{conversation_id}:s:{subscription_id[:24]}",
        conversation_id=conversation_id,
        kind=SUBSCRIPTION_EVENT,
        target=subscription_id,
        idempotency_key="msg_" + uuid.uuid4().hex,
        payload={"type": event_type, "body": body},
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def bot_event(
    conversation_id: str | None,
    callback_url: str,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    bot: str | None = None,
) -> OutboxRow:
    """A signed event to the bot's callback URL: body `{type, timestamp, data}`.

    The body is serialised once, here, so every retry sends the same bytes under the
    same webhook-id.
    """
    body = event_body(event_type, data, now)
    return OutboxRow(
        lane=lane(conversation_id, "bot") if conversation_id else "bot",
        conversation_id=conversation_id,
        kind=BOT_EVENT,
        target=callback_url,
        idempotency_key="msg_" + uuid.uuid4().hex,
        # `bot` names the bot-side adapter that delivers it (None: the plain webhook bot).
        payload={"type": event_type, "body": body, "bot": bot},
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def internal_job(
    conversation_id: str, kind: str, lane_name: str, due: datetime, now: datetime
) -> OutboxRow:
    """Work the bridge does for itself about a conversation (a router timer, a replay).

    Kept like a delivery, so it survives a restart and runs once, at `due`.
    """
    return OutboxRow(
        lane=f"{conversation_id}:{lane_name}",
        conversation_id=conversation_id,
        kind=kind,
        target=conversation_id,
        idempotency_key="job_" + uuid.uuid4().hex,
        payload={},
        status="pending",
        attempts=0,
        next_attempt_at=due,
        created_at=now,
    )
