"""Jobs for the agent side: open the chat on the channel's platform, post to it, close it.

All three go out in the conversation's agent lane, in the order they were written, to the
channel's adapter (the row's target).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

from bridge.attachments import Attachment, read_stored
from bridge.db.tables import MessageRow, OutboxRow
from bridge.domain.status import Status
from bridge.ports.agent_side import ConversationSnapshot, OutboundMessage
from bridge.relay.jobs.base import Job, Place, conversation_of, lane


@dataclass(frozen=True, slots=True)
class Message:
    """A transcript message as an agent-side job carries it."""

    seq: int
    role: str
    text: str
    author: str | None
    external_id: str | None
    sent_at: datetime
    attachments: tuple[Attachment, ...] = ()

    @classmethod
    def of(cls, row: MessageRow) -> Message:
        """A stored message."""
        return cls(
            row.seq,
            row.role,
            row.text,
            row.author,
            row.external_id,
            row.sent_at,
            read_stored(row.attachments),
        )

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
            # Payloads stored before attachments existed have none.
            attachments=read_stored(data.get("attachments")),
        )

    def to_json(self) -> dict[str, Any]:
        """The stored JSON form (the transcript's, as the API shows it)."""
        data: dict[str, Any] = {
            "seq": self.seq,
            "role": self.role,
            "text": self.text,
            "author": self.author,
            "id": self.external_id,
            "sent_at": self.sent_at.isoformat(),
        }
        if self.attachments:
            data["attachments"] = [a.model_dump() for a in self.attachments]
        return data

    def outbound(self) -> OutboundMessage:
        """The message as the agent side's adapter takes it."""
        return OutboundMessage(
            self.seq, self.role, self.text, self.author, self.sent_at, self.attachments
        )


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
        return cls(conversation_of(row), row.target, message)


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
        return cls(conversation_of(row), row.target, row.payload.get("reason"), status)
