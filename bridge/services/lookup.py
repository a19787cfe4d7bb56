"""Loading a conversation a request names, for the services."""

from __future__ import annotations

from bridge.db.repo import Tx
from bridge.db.tables import ConversationRow
from bridge.errors import ConversationNotFound


async def require_conversation(
    tx: Tx, conversation_id: str, *, refresh: bool = False, lock: bool = False
) -> ConversationRow:
    """The conversation, or ConversationNotFound; `refresh` re-reads a row loaded earlier.

    Refreshing matters after a conditional UPDATE in the same transaction: the session
    still holds the row as it was loaded, not as the update left it. `lock` holds the
    row until the commit (taken first, before anything else the transaction locks).
    """
    row = await tx.get_conversation(conversation_id, lock=lock)
    if row is None:
        raise ConversationNotFound(conversation_id)
    if refresh:
        await tx.session.refresh(row)
    return row
