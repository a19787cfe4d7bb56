"""What the agents did with a chat: whether one has answered, and the messages they handled.

Read on the rare paths (a timer that fires, a presence change, a hand-back), never on
the message path: an answer is the first agent message stored since the assignment,
found on the transcript's (conversation, seq) index.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from bridge.db.repo.base import TxPart
from bridge.db.tables import MessageRow


@dataclass(frozen=True, slots=True)
class Handled:
    """The messages stored after the handoff's history: the part the agent side handled."""

    first_seq: int
    last_seq: int
    count: int

    def view(self) -> dict[str, Any]:
        """`{first_seq, last_seq, count}`."""
        return asdict(self)


class HandlingQueries(TxPart):
    """Answers and handled messages of one conversation."""

    async def first_agent_reply(self, conversation_id: str, since: datetime) -> MessageRow | None:
        """The first agent message stored at or after `since`, if any."""
        query = (
            select(MessageRow)
            .where(
                MessageRow.conversation_id == conversation_id,
                MessageRow.role == "agent",
                MessageRow.created_at >= since,
            )
            .order_by(MessageRow.seq)
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def handled_messages(self, conversation_id: str, after: datetime) -> Handled | None:
        """The seq range and count of the messages stored after `after` (the handoff's time:
        its history was stored with it), or None when there are none."""
        query = select(
            func.min(MessageRow.seq), func.max(MessageRow.seq), func.count(MessageRow.seq)
        ).where(MessageRow.conversation_id == conversation_id, MessageRow.created_at > after)
        first, last, count = (await self.session.execute(query)).one()
        if not count:
            return None
        return Handled(int(first), int(last), int(count))
