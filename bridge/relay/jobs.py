"""The outbox's jobs: one typed class per kind of row, stored as its kind string and JSON.

A job is what the bridge must do once a transaction commits: open a chat on a platform,
post a message there, close it, send an event to the bot or a subscriber, evaluate a
conversation's routing again, apply platform events parked for it. The caller writes
it as an outbox row (`to_row`) in its own transaction; the worker reads it back
(`from_row`) and hands it to the job's handler (see handlers.py). Kind strings and
payloads are the ones rows have always had, so rows queued by an earlier version run
after an upgrade.

Adding a kind of job is one class here and one handler registered in handlers.py.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self

from bridge.db.tables import MessageRow, OutboxRow
from bridge.domain.status import Status
from bridge.errors import PlatformRejected
from bridge.ports.agent_side import ConversationSnapshot, OutboundMessage

Side = Literal["agent", "bot"]


class DeliveryStatus(StrEnum):
    """Where an outbox row stands; stored as its value."""

    # Waiting for its time or its turn in the lane, or leased by a worker right now.
    PENDING = "pending"
    DELIVERED = "delivered"
    # Refused, or out of attempts: it stays for an operator to retry.
    DEAD = "dead"
    # Dropped unsent: its conversation failed to open, or its subscriber was deleted.
    CANCELLED = "cancelled"


def lane(conversation_id: str, side: Side) -> str:
    """Deliveries to one side of one conversation go out in order: this names that line."""
    return f"{conversation_id}:{side}"


def event_body(event_type: str, data: dict[str, Any], now: datetime) -> str:
    """An event as sent: `{type, timestamp, data}`, serialised once for every attempt."""
    return json.dumps(
        {"type": event_type, "timestamp": now.isoformat(), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


_TYPES: dict[str, type[Job]] = {}


def _conversation_of(row: OutboxRow) -> str:
    """The conversation of a row whose job is about one."""
    if row.conversation_id is None:
        raise KeyError("conversation_id")
    return row.conversation_id


def job_types() -> tuple[type[Job], ...]:
    """Every kind of job there is."""
    return tuple(_TYPES.values())


@dataclass(frozen=True, slots=True)
class Place:
    """Where a job's row stands: its lane (one in flight at a time), conversation, target."""

    lane: str
    conversation_id: str | None
    target: str


class Job(ABC):
    """One kind of outbox row, typed; `kind` is the string stored in the row."""

    __slots__ = ()
    kind: ClassVar[str]
    # The idempotency key's prefix: deliveries send theirs as webhook-id.
    key_prefix: ClassVar[str] = "msg_"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind is None:
            return
        known = _TYPES.get(kind)
        # A slotted dataclass is made again under the same name: that one replaces it.
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"{cls.__qualname__} and {known.__qualname__} are both {kind!r}")
        _TYPES[kind] = cls

    @abstractmethod
    def place(self) -> Place:
        """The row's lane, conversation and target."""

    @abstractmethod
    def payload(self) -> dict[str, Any]:
        """The row's JSON payload."""

    @classmethod
    @abstractmethod
    def read(cls, row: OutboxRow) -> Self:
        """The job a row of this kind holds (KeyError or ValueError when it holds none)."""

    def to_row(self, now: datetime, *, due: datetime | None = None) -> OutboxRow:
        """The outbox row that keeps this job until it is done (at `due`, else at once)."""
        place = self.place()
        return OutboxRow(
            lane=place.lane,
            conversation_id=place.conversation_id,
            kind=self.kind,
            target=place.target,
            idempotency_key=self.key_prefix + uuid.uuid4().hex,
            payload=self.payload(),
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            next_attempt_at=due or now,
            created_at=now,
        )

    @classmethod
    def from_row(cls, row: OutboxRow) -> Self:
        """The job in a row of this kind; PlatformRejected when its payload is not readable."""
        if row.kind != cls.kind:
            raise PlatformRejected(f"a {row.kind!r} row holds no {cls.kind!r} job")
        try:
            return cls.read(row)
        except KeyError as exc:
            # Retrying cannot add what the stored payload lacks.
            raise PlatformRejected(f"the {row.kind} payload has no {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise PlatformRejected(
                f"the {row.kind} payload cannot be read ({type(exc).__name__})"
            ) from exc


# -- to the agent side ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """A transcript message as an agent-side job carries it."""

    seq: int
    role: str
    text: str
    author: str | None
    external_id: str | None
    sent_at: datetime

    @classmethod
    def of(cls, row: MessageRow) -> Message:
        """A stored message."""
        return cls(row.seq, row.role, row.text, row.author, row.external_id, row.sent_at)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        """A message from its stored JSON form."""
        return cls(
            seq=int(data["seq"]),
            role=str(data["role"]),
            text=str(data["text"]),
            author=data.get("author"),
            external_id=data.get("id"),
            sent_at=datetime.fromisoformat(data["sent_at"]),
        )

    def to_json(self) -> dict[str, Any]:
        """The stored JSON form (the transcript's, as the API shows it)."""
        return {
            "seq": self.seq,
            "role": self.role,
            "text": self.text,
            "author": self.author,
            "id": self.external_id,
            "sent_at": self.sent_at.isoformat(),
        }

    def outbound(self) -> OutboundMessage:
        """The message as the agent side's adapter takes it."""
        return OutboundMessage(self.seq, self.role, self.text, self.author, self.sent_at)


@dataclass(frozen=True, slots=True)
class OpenConversation(Job):
    """Open the conversation on its channel's platform, with the history it can import."""

    kind: ClassVar[str] = "agent.open"

    conversation_id: str
    channel: str
    main_channel: str
    region: str | None
    customer: dict[str, Any]
    metadata: dict[str, Any]
    settings: dict[str, Any]
    history: tuple[Message, ...] = ()

    def place(self) -> Place:
        """In the conversation's agent lane, to its channel."""
        return Place(lane(self.conversation_id, "agent"), self.conversation_id, self.channel)

    def payload(self) -> dict[str, Any]:
        """`{conversation, history}`."""
        conversation = {
            "id": self.conversation_id,
            "channel": self.channel,
            "main_channel": self.main_channel,
            "region": self.region,
            "customer": self.customer,
            "metadata": self.metadata,
            "settings": self.settings,
        }
        return {"conversation": conversation, "history": [m.to_json() for m in self.history]}

    @classmethod
    def read(cls, row: OutboxRow) -> Self:
        """The open a row holds."""
        conversation = row.payload["conversation"]
        return cls(
            conversation_id=conversation["id"],
            channel=conversation["channel"],
            main_channel=conversation["main_channel"],
            region=conversation.get("region"),
            customer=conversation["customer"],
            metadata=conversation["metadata"],
            settings=conversation["settings"],
            history=tuple(Message.from_json(m) for m in row.payload.get("history", ())),
        )

    def snapshot(self) -> ConversationSnapshot:
        """What the agent side's adapter opens the conversation with."""
        return ConversationSnapshot(
            id=self.conversation_id,
            channel=self.channel,
            main_channel=self.main_channel,
            region=self.region,
            customer=self.customer,
            metadata=self.metadata,
            settings=self.settings,
            history=tuple(m.outbound() for m in self.history),
        )


@dataclass(frozen=True, slots=True)
class PostMessage(Job):
    """Post a customer's message (or a replayed history message) to the agent side."""

    kind: ClassVar[str] = "agent.message"

    conversation_id: str
    channel: str
    message: Message

    def place(self) -> Place:
        """In the conversation's agent lane, behind its open."""
        return Place(lane(self.conversation_id, "agent"), self.conversation_id, self.channel)

    def payload(self) -> dict[str, Any]:
        """`{message}`."""
        return {"message": self.message.to_json()}

    @classmethod
    def read(cls, row: OutboxRow) -> Self:
        """The message a row holds."""
        message = Message.from_json(row.payload["message"])
        return cls(_conversation_of(row), row.target, message)


@dataclass(frozen=True, slots=True)
class CloseConversation(Job):
    """Close the conversation on the agent side (the bot ended or released it)."""

    kind: ClassVar[str] = "agent.close"

    conversation_id: str
    channel: str
    reason: str | None
    status: Status

    def place(self) -> Place:
        """In the conversation's agent lane, after everything posted before it."""
        return Place(lane(self.conversation_id, "agent"), self.conversation_id, self.channel)

    def payload(self) -> dict[str, Any]:
        """`{reason, status}`: the status the conversation ended in."""
        return {"reason": self.reason, "status": self.status.value}

    @classmethod
    def read(cls, row: OutboxRow) -> Self:
        """The close a row holds."""
        status = Status(row.payload["status"])
        return cls(_conversation_of(row), row.target, row.payload.get("reason"), status)


# -- events to the bot and to subscribers -------------------------------------------------


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
        conversation_id = _conversation_of(row)
        return cls(row.target, conversation_id, row.payload["type"], row.payload["body"])


# -- work the bridge does for itself ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ConversationWork(Job):
    """Work the bridge does for itself about a conversation, kept like a delivery.

    So it survives a restart and runs once, when due, in a lane of its own: it waits for
    no delivery.
    """

    key_prefix: ClassVar[str] = "job_"
    lane_name: ClassVar[str]

    conversation_id: str

    def place(self) -> Place:
        """In the conversation's lane for this work; its target is the conversation."""
        lane_name = f"{self.conversation_id}:{self.lane_name}"
        return Place(lane_name, self.conversation_id, self.conversation_id)

    def payload(self) -> dict[str, Any]:
        """Nothing: the conversation says it all."""
        return {}

    @classmethod
    def read(cls, row: OutboxRow) -> Self:
        """The work a row holds."""
        return cls(row.target)


@dataclass(frozen=True, slots=True)
class EvaluateRouting(_ConversationWork):
    """A router's timer: evaluate the conversation's routing again (queued with `due`)."""

    kind: ClassVar[str] = "routing.evaluate"
    lane_name: ClassVar[str] = "routing"


@dataclass(frozen=True, slots=True)
class ReplayInbound(_ConversationWork):
    """Apply the platform events parked until the conversation's platform id was stored."""

    kind: ClassVar[str] = "inbound.replay"
    lane_name: ClassVar[str] = "inbound"
