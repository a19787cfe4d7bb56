"""The timeline: the moments of a conversation the console shows beside its messages."""

from __future__ import annotations

from sqlalchemy import select

from bridge.db.repo.base import TxPart
from bridge.db.tables import TimelineRow


class TimelineQueries(TxPart):
    """A conversation's joins, leaves and ending, in the order they happened."""

    async def add_timeline(self, row: TimelineRow) -> None:
        """Keep one moment; written when the transaction commits, with the change itself."""
        self.session.add(row)

    async def timeline(self, conversation_id: str, *, after_id: int = 0) -> list[TimelineRow]:
        """The conversation's moments after `after_id`, oldest first."""
        query = (
            select(TimelineRow)
            .where(TimelineRow.conversation_id == conversation_id, TimelineRow.id > after_id)
            .order_by(TimelineRow.id)
        )
        return list((await self.session.execute(query)).scalars())
