"""The agent-side deliveries that open a conversation on its channel's platform.

The same for a new handoff and for a conversation that moved to another channel: the
open, carrying the history when the platform imports it, else followed by the history
replayed one message per delivery, so a failure part-way resumes where it stopped
instead of starting over.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.db.tables import ConversationRow, MessageRow
from bridge.ports.agent_side import AgentSideAdapter
from bridge.relay.jobs import Job, Message, OpenConversation, PostMessage


def open_jobs(
    row: ConversationRow, adapter: AgentSideAdapter, history: Sequence[MessageRow]
) -> list[Job]:
    """Open `row` on `adapter`'s platform with `history`, as that platform takes history."""
    messages = tuple(Message.of(m) for m in history)
    replay = adapter.capabilities.messages and not adapter.capabilities.history
    jobs: list[Job] = [
        OpenConversation(
            conversation_id=row.id,
            channel=row.channel,
            main_channel=row.main_channel,
            region=row.region,
            customer=row.customer,
            metadata=row.conversation_metadata,
            settings=row.settings,
            history=() if replay else messages,
        )
    ]
    if replay:
        jobs.extend(PostMessage(row.id, row.channel, m) for m in messages)
    return jobs
