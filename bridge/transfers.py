"""`conversation.transferred`: one event shape for every move of a conversation.

A conversation moves to another channel (routing across platforms, when nobody is
available or nobody takes it in time), or to another agent or team (a transfer made by
an agent or through the API). Whatever moved it, the bot and the subscribers hear the
same event: where it was, where it is now, a machine-readable `reason` and an optional
note, so a bot tells its customer one thing whichever path moved the chat.

    {"type": "conversation.transferred",
     "data": {"conversation_id", "bot_conversation_id", "channel",
              "from": {"channel", "platform", "team_id", "agent_id"},
              "to": {"channel", "platform", "team_id", "agent_id"},
              "reason": "no_agents_online", "note": null}}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bridge.db.repo import Tx
from bridge.db.tables import ConversationRow
from bridge.events import announce

TRANSFERRED = "conversation.transferred"

# Why it moved. Routing across platforms: the channel's platform reported nobody
# available, or nobody took the chat within the channel's `fallback_after_seconds`.
# A person moving it: an agent (console, desk) or the bot or an operator (the API).
TransferReason = Literal["no_agents_online", "wait_timeout", "agent", "api"]


@dataclass(frozen=True, slots=True)
class Place:
    """One end of a move: the channel and its platform, and the team or agent there."""

    channel: str
    platform: str
    team_id: str | None = None
    agent_id: str | None = None

    @classmethod
    def of(cls, row: ConversationRow) -> Place:
        """Where a conversation is now."""
        return cls(row.channel, row.platform, row.team_id, row.assignee_id)

    def view(self) -> dict[str, Any]:
        """The end as the event carries it."""
        return {
            "channel": self.channel,
            "platform": self.platform,
            "team_id": self.team_id,
            "agent_id": self.agent_id,
        }


@dataclass(frozen=True, slots=True)
class Transferred:
    """A conversation moved from one place to another, and why."""

    source: Place
    destination: Place
    reason: TransferReason
    note: str | None = None

    def data(self) -> dict[str, Any]:
        """The event's `data`, besides what every event holds."""
        return {
            "from": self.source.view(),
            "to": self.destination.view(),
            "reason": self.reason,
            "note": self.note,
        }


async def announce_transferred(
    tx: Tx, row: ConversationRow, moved: Transferred, now: datetime
) -> None:
    """Queue `conversation.transferred` for the bot and subscribers, in the move's transaction.

    `row` is the conversation as it is after the move: the event's `channel` is the new one.
    """
    await announce(tx, row, TRANSFERRED, moved.data(), now, to_bot=True)
