"""Jobs of a conversation that moves between channels: leave the old platform, and the
timer that moves a chat nobody took on to its next fallback channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from bridge.db.tables import OutboxRow
from bridge.relay.jobs.base import Job, Place, conversation_of, lane


@dataclass(frozen=True, slots=True)
class WithdrawConversation(Job):
    """Close the conversation on the channel it left (it moved to another channel).

    It carries the old channel's platform id: by the time it runs, the conversation
    names its new channel, and later its new platform id.
    """

    kind: ClassVar[str] = "agent.withdraw"

    conversation_id: str
    channel: str
    external_ref: str
    reason: str

    def place(self) -> Place:
        """In the conversation's agent lane, ahead of the open on the new channel."""
        return Place(lane(self.conversation_id, "agent"), self.conversation_id, self.channel)

    def payload(self) -> dict[str, Any]:
        """`{external_ref, reason}`."""
        return {"external_ref": self.external_ref, "reason": self.reason}

    @classmethod
    def read(cls, row: OutboxRow) -> Self:
        """The withdrawal a row holds."""
        payload = row.payload
        return cls(conversation_of(row), row.target, payload["external_ref"], payload["reason"])


@dataclass(frozen=True, slots=True)
class FallbackTimer(Job):
    """Due when a chat waiting on `channel` has waited its main channel's
    `fallback_after_seconds`: if nobody took it there, it moves to the next fallback.

    A row in the store, so it fires once across replicas and survives a restart; the
    channel it was set for makes a timer of a chat that has moved since a no-op.
    """

    kind: ClassVar[str] = "routing.fallback"
    key_prefix: ClassVar[str] = "job_"

    conversation_id: str
    channel: str

    def place(self) -> Place:
        """In a lane of its own: it waits for no delivery."""
        return Place(f"{self.conversation_id}:fallback", self.conversation_id, self.channel)

    def payload(self) -> dict[str, Any]:
        """Nothing: the conversation and the channel say it all."""
        return {}

    @classmethod
    def read(cls, row: OutboxRow) -> Self:
        """The timer a row holds."""
        return cls(conversation_of(row), row.target)
