"""Jobs that tell others what happened: signed events to the bot and to subscribers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

from bridge.db.tables import OutboxRow
from bridge.relay.jobs.base import Job, Place, conversation_of, lane


def event_body(event_type: str, data: dict[str, Any], now: datetime) -> str:
    """An event as sent: `{type, timestamp, data}`, serialised once for every attempt."""
    return json.dumps(
        {"type": event_type, "timestamp": now.isoformat(), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


@dataclass(frozen=True, slots=True)
class BotEvent(Job):
    """A signed event to the bot's callback URL, delivered by the bot's bot-side adapter.

    The body is serialised once, when the event is made, so every retry sends the same
    bytes under the same webhook-id.
    """

    kind: ClassVar[str] = "bot.event"

    conversation_id: str | None
    lane: str
    callback_url: str
    event_type: str
    body: str
    # The bot-side adapter that delivers it (None: the plain webhook bot).
    bot: str | None

    @classmethod
    def about(
        cls,
        conversation_id: str,
        callback_url: str,
        event_type: str,
        data: dict[str, Any],
        now: datetime,
        bot: str | None = None,
    ) -> BotEvent:
        """An event about a handed-off conversation, in order with its others."""
        body = event_body(event_type, data, now)
        return cls(
            conversation_id, lane(conversation_id, "bot"), callback_url, event_type, body, bot
        )

    @classmethod
    def for_bot_conversation(
        cls,
        bot: str,
        bot_conversation_id: str,
        target: str,
        event_type: str,
        data: dict[str, Any],
        now: datetime,
    ) -> BotEvent:
        """An event a bot-side adapter relays for a bot conversation, handed off or not."""
        # Hashed: the lane column is short and bot conversation ids are not.
        digest = hashlib.sha256(f"{bot}\0{bot_conversation_id}".encode()).hexdigest()
        body = event_body(event_type, data, now)
        return cls(None, f"bot:{digest[:48]}", target, event_type, body, bot)

    def place(self) -> Place:
        """In its lane, to the callback URL."""
        return Place(self.lane, self.conversation_id, self.callback_url)

    def payload(self) -> dict[str, Any]:
        """`{type, body, bot}`."""
        return {"type": self.event_type, "body": self.body, "bot": self.bot}

    @classmethod
    def read(cls, row: OutboxRow) -> Self:
        """The event a row holds (rows from before bot-side adapters name no bot)."""
        payload = row.payload
        return cls(
            row.conversation_id,
            row.lane,
            row.target,
            payload["type"],
            payload["body"],
            payload.get("bot"),
        )


@dataclass(frozen=True, slots=True)
class SubscriberEvent(Job):
    """A lifecycle event for one subscriber, in order per conversation and subscriber."""

    kind: ClassVar[str] = "subscription.event"

    subscription_id: str
    conversation_id: str
    event_type: str
    # Serialised once (see event_body) and shared by every subscriber of the event.
    body: str

    def place(self) -> Place:
        """In the lane of this conversation and subscriber, to the subscription."""
        lane_name = f"{self.conversation_id}:s:{self.subscription_id[:24]}"
        return Place(lane_name, self.conversation_id, self.subscription_id)

    def payload(self) -> dict[str, Any]:
        """`{type, body}`."""
        return {"type": self.event_type, "body": self.body}

    @classmethod
    def read(cls, row: OutboxRow) -> Self:
        """The event a row holds."""
        conversation_id = conversation_of(row)
        return cls(row.target, conversation_id, row.payload["type"], row.payload["body"])
