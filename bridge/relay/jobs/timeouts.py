"""Accept timers: the chat's offer or assignment is checked again when its time is up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from bridge.db.tables import OutboxRow
from bridge.relay.jobs.base import Job, Place


@dataclass(frozen=True, slots=True)
class AcceptTimeout(Job):
    """An offered or assigned chat's accept timer, queued with `due` (see services/timeouts.py).

    It fires once (the outbox leases it to one replica) and acts only while the
    conversation still holds the same `round`: a chat taken, answered, transferred or
    ended since then has armed another round or none, and this one changes nothing.
    """

    kind: ClassVar[str] = "routing.accept_timeout"
    key_prefix: ClassVar[str] = "job_"

    conversation_id: str
    round: int
    # A check made at once because the assigned agent went offline or absent.
    away: bool = False

    def place(self) -> Place:
        """A lane per round and kind: an earlier timer due later never holds one back."""
        lane_name = f"{self.conversation_id}:{'away' if self.away else 'accept'}:{self.round}"
        return Place(lane_name, self.conversation_id, self.conversation_id)

    def payload(self) -> dict[str, Any]:
        """`{round, away}`."""
        return {"round": self.round, "away": self.away}

    @classmethod
    def read(cls, row: OutboxRow) -> Self:
        """The timer a row holds."""
        if row.conversation_id is None:
            raise KeyError("conversation_id")
        return cls(
            row.conversation_id, int(row.payload["round"]), bool(row.payload.get("away", False))
        )
