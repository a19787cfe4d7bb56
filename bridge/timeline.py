"""The console's timeline: the moments of a conversation shown beside its messages.

An agent joined or left, and how the chat ended (closed, handed back, cancelled, failed),
by whom and why. `announce` (bridge/events.py) keeps one row for each lifecycle event
named in KINDS, in the transaction of the change, holding only what the line needs; the
words are made when the row is read, so they may change without rewriting stored rows.
A chat that ended before the timeline existed has no row for its end: `console_timeline`
tells it from the conversation's own status, reason and hand-back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from bridge.db.tables import ConversationRow, TimelineRow
from bridge.domain.status import ACTIVE

# The kinds of line (stored in the timeline table and read by the console's script). Some
# share a word with a conversation's status, but they name lines, not statuses.
JOINED: Final = "joined"
LEFT: Final = "left"
CLOSED: Final = "closed"
RELEASED: Final = "released"
CANCELLED: Final = "cancelled"
FAILED: Final = "failed"

# The bot-facing events the timeline keeps, and the kind of line each becomes.
KINDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "agent.joined": JOINED,
        "agent.left": LEFT,
        "conversation.closed": CLOSED,
        "conversation.released": RELEASED,
        "handoff.cancelled": CANCELLED,
        "handoff.failed": FAILED,
    }
)
ENDINGS: Final = frozenset({CLOSED, RELEASED, CANCELLED, FAILED})

# The reasons the bridge writes itself when none was given, and who they name: the line
# says who, so repeating such a reason after it adds nothing.
_DEFAULT_REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "closed by the bot": "bot",
        "closed by the agent": "agent",
        "released by the bot": "bot",
        "released by the agent": "agent",
        "cancelled by the bot": "bot",
    }
)
# Why an agent left, as `agent.left` says it, in the words of the line.
_LEFT_BECAUSE: Final[Mapping[str, str]] = MappingProxyType(
    {
        "transferred": "transferred",
        "accept_timeout": "did not answer in time",
        "agent_offline": "went offline",
        "agent_absent": "signed out",
    }
)
_OUTCOMES: Final[Mapping[str, str]] = MappingProxyType(
    {"resolved": "resolved", "needs_bot_follow_up": "needs bot follow-up", "other": "other"}
)
_FIELDS: Final = ("agent", "by", "reason", "disposition")


def _name(agent: Any) -> str | None:
    """An agent's display name (their id when they have none), from an agent object."""
    if isinstance(agent, Mapping):
        name = agent.get("name") or agent.get("id")
        return str(name) if name else None
    return None


def timeline_entry(
    row: ConversationRow, event_type: str, data: Mapping[str, Any], at: datetime
) -> TimelineRow | None:
    """What the timeline keeps of `event_type`, or None when it keeps nothing of it.

    `row` is the conversation as it was before the change: an agent who closes the chat
    is named from it (`conversation.closed` says only that an agent did).
    """
    kind = KINDS.get(event_type)
    if kind is None:
        return None
    by = data.get("by")
    agent = _name(data.get("agent"))
    if agent is None and by == "agent":
        agent = _name(row.agent)
    kept = {
        "agent": agent,
        "by": by,
        # handoff.failed's `reason` is a code for the bot; its words are in `detail`.
        "reason": data.get("detail") if kind == FAILED else data.get("reason"),
        "disposition": data.get("disposition"),
    }
    return TimelineRow(
        conversation_id=row.id,
        kind=kind,
        data={key: value for key, value in kept.items() if value is not None},
        at=at,
    )


def describe(kind: str, data: Mapping[str, Any]) -> str:
    """The line the console shows: "Ana joined", "Closed by the bot: customer left", ..."""
    agent, by, reason = data.get("agent"), data.get("by"), data.get("reason")
    said = f": {reason}" if reason and str(reason).lower() not in _DEFAULT_REASONS else ""
    if kind == JOINED:
        return f"{agent or 'An agent'} joined"
    if kind == LEFT:
        because = _LEFT_BECAUSE.get(str(reason))
        return f"{agent or 'The agent'} left" + (f" ({because})" if because else "")
    if kind == CLOSED:
        who = "the bot" if by == "bot" else (agent or "the agent") if by == "agent" else None
        return (f"Closed by {who}" if who else "Closed") + said
    if kind == RELEASED:
        if by == "bot":
            return "Taken back by the bot" + said
        line = "Handed back to the bot"
        if by == "agent":
            line += f" by {agent or 'the agent'}"
        outcome = _OUTCOMES.get(str(data.get("disposition")))
        return line + (f" ({outcome})" if outcome else "") + said
    if kind == CANCELLED:
        return "Cancelled by the bot" + said
    return "Failed" + said


def timeline_view(row: TimelineRow) -> dict[str, Any]:
    """One moment as the console shows it: its words, and what they were made of."""
    return _view(row.id, row.kind, row.at, row.data)


def _view(entry_id: int, kind: str, at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": entry_id,
        "kind": kind,
        "at": at.isoformat(),
        "text": describe(kind, data),
        **{field: data.get(field) for field in _FIELDS},
    }


def _ending_of(row: ConversationRow) -> dict[str, Any]:
    """How a chat ended, from its own fields (for one that ended before the timeline)."""
    handback = row.handback or {}
    reason = row.status_reason
    by = handback.get("by") or _DEFAULT_REASONS.get((reason or "").lower())
    data = {
        "agent": _name(row.agent),
        "by": by,
        "reason": reason,
        "disposition": handback.get("disposition"),
    }
    # Id 0: no stored row has it, so the page never takes it for one it already shows.
    return _view(0, row.status.value, row.closed_at or row.updated_at, data)


def console_timeline(row: ConversationRow, entries: list[TimelineRow]) -> list[dict[str, Any]]:
    """The conversation's moments for the console, its end always among them once ended."""
    views = [timeline_view(entry) for entry in entries]
    if row.status not in ACTIVE and not any(entry.kind in ENDINGS for entry in entries):
        views.append(_ending_of(row))
    return views
