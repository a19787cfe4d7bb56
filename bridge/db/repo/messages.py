"""Messages: a conversation's transcript, in order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bridge.db.repo.base import TxPart
from bridge.db.tables import ConversationRow, MessageRow, SubscriptionRow, UTCDateTime

# What a new message needs of its conversation: its status, where its events go, and the
# assigned agent (the console's author). Only these columns are read on the hot path.
_FOR_MESSAGE = (
    ConversationRow.id,
    ConversationRow.status,
    ConversationRow.channel,
    ConversationRow.bot_platform,
    ConversationRow.bot_conversation_id,
    ConversationRow.callback_url,
    ConversationRow.organization_id,
    ConversationRow.customer,
    ConversationRow.agent,
)
_MESSAGE_KEY = ("conversation_id", "role", "external_id")

# The hot path's statements are built once: building one and computing its cache key cost
# more CPU than running it. Values are bound at execution.
_LOCK_FOR_MESSAGE = (
    update(ConversationRow)
    .where(ConversationRow.id == bindparam("conversation_id"))
    .values(updated_at=bindparam("touched_at", type_=UTCDateTime()))
    .returning(*_FOR_MESSAGE, select(SubscriptionRow.id).exists())
)
_APPEND_MESSAGE: dict[str, Any] = {
    dialect: insert(MessageRow)
    .on_conflict_do_nothing(index_elements=list(_MESSAGE_KEY))
    .returning(MessageRow.seq)
    for dialect, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


class MessageQueries(TxPart):
    """A conversation's transcript."""

    async def add_messages(self, rows: Sequence[MessageRow]) -> None:
        """Append messages; a repeated (conversation, role, external_id) raises IntegrityError."""
        self.session.add_all(rows)
        await self.session.flush()

    async def lock_for_message(
        self, conversation_id: str, now: datetime
    ) -> tuple[ConversationRow, bool] | None:
        """Lock the conversation a message is added to, and mark it updated at `now`.

        One statement instead of a locking read, an update and a read of the subscribers:
        the UPDATE takes the row lock a `SELECT ... FOR UPDATE` would (PostgreSQL; SQLite
        has one writer), so concurrent messages of one conversation take their seq and
        outbox ids, and commit, one after the other. Returns the conversation (a detached
        row holding only the columns a message needs) and whether any subscriber exists,
        or None when there is no such conversation.
        """
        connection = await self.session.connection()
        parameters = {"conversation_id": conversation_id, "touched_at": now}
        found = (await connection.execute(_LOCK_FOR_MESSAGE, parameters)).one_or_none()
        if found is None:
            return None
        *values, has_subscribers = found
        fields = {column.key: value for column, value in zip(_FOR_MESSAGE, values, strict=True)}
        return ConversationRow(**fields), bool(has_subscribers)

    async def append_message(self, message: MessageRow) -> int | None:
        """Insert a message and return its seq; None when its sender's id is stored already.

        A Core INSERT ... RETURNING (no ORM flush, no re-read), and a repeated
        (conversation, role, external_id) is skipped in the same statement, so the
        transaction stays usable on PostgreSQL and the caller reads the earlier message.
        """
        connection = await self.session.connection()
        statement = _APPEND_MESSAGE[connection.dialect.name]
        values = {
            "conversation_id": message.conversation_id,
            "role": message.role,
            "text": message.text,
            "author": message.author,
            "external_id": message.external_id,
            "sent_at": message.sent_at,
            "created_at": message.created_at,
        }
        seq: int | None = (await connection.execute(statement, values)).scalar_one_or_none()
        return seq

    async def find_message(
        self, conversation_id: str, role: str, external_id: str, *, detached: bool = False
    ) -> MessageRow | None:
        """A message stored earlier under the sender's own id.

        `detached`: it stays readable after this transaction rolls back (a rollback
        expires what the session holds).
        """
        query = select(MessageRow).where(
            MessageRow.conversation_id == conversation_id,
            MessageRow.role == role,
            MessageRow.external_id == external_id,
        )
        found = (await self.session.execute(query)).scalar_one_or_none()
        if found is not None and detached:
            self.session.expunge(found)
        return found

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
