"""Messages: a conversation's transcript, in order.

A new message is written by a unit of work (bridge/db/steps.py), not here.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from bridge.db.repo.base import TxPart
from bridge.db.tables import MessageRow


class MessageQueries(TxPart):
    """A conversation's transcript."""

    async def add_messages(self, rows: Sequence[MessageRow]) -> None:
        """Append messages; a repeated (conversation, role, external_id) raises IntegrityError."""
        self.session.add_all(rows)
        await self.session.flush()

    async def messages(
        self, conversation_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[MessageRow]:
        """The transcript in order, after a given sequence number."""
        query = (
            select(MessageRow)
            .where(MessageRow.conversation_id == conversation_id, MessageRow.seq > after_seq)
            .order_by(MessageRow.seq)
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars())
