"""Work the bridge does for itself about a conversation: routing timers, parked events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from bridge.db.tables import OutboxRow
from bridge.relay.jobs.base import Job, Place


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
