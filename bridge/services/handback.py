"""Hand-back with a summary: what `conversation.released` tells the bot so it can go on.

When an agent returns a chat to the bot they may say how it went: a disposition
(`resolved`, `needs_bot_follow_up`, `other`), tags and a note. The event carries them
with the agent, the times (handed off, assigned, first reply, released) and the range of
messages stored after the handoff's history, the part the bot did not write itself, so
it can read exactly those (`GET /v1/conversations/{id}/messages?after=<first_seq - 1>`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bridge.db.repo import Tx
from bridge.db.tables import ConversationRow
from bridge.models import HandbackRequest

# The history is stored at the handoff's own time; everything after it came later.
_AFTER_HISTORY = timedelta(microseconds=1)


def summary_of(request: HandbackRequest | None) -> dict[str, Any]:
    """The agent's own words, as they are stored with the conversation."""
    if request is None:
        return {"disposition": None, "tags": [], "note": None}
    note = (request.note or "").strip() or None
    return {"disposition": request.disposition, "tags": list(request.tags), "note": note}


async def released_data(
    tx: Tx, row: ConversationRow, summary: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """What `conversation.released` adds to `by` and `reason`; `row` as it was before."""
    first_reply = await tx.first_agent_reply(row.id, row.created_at + _AFTER_HISTORY)
    handled = await tx.handled_messages(row.id, row.created_at)
    return {
        **summary,
        "agent": dict(row.agent) if row.agent else None,
        "times": {
            "handed_off": row.created_at.isoformat(),
            "assigned": row.assigned_at.isoformat() if row.assigned_at else None,
            "first_reply": first_reply.created_at.isoformat() if first_reply else None,
            "released": now.isoformat(),
        },
        "messages": handled.view() if handled else None,
    }
