"""The statements a new handoff runs, as steps for a unit of work (see bridge/db/units.py).

Opening a handoff writes a conversation, its history, its deliveries and timers, maybe a
timeline line and a queue marker, and counts the chat's place in the queue: plain SQL
here, so a burst of handoffs shares one transaction and one fsync on SQLite instead of
each holding the store's one connection for a dozen ORM round trips. Columns and storage
formats are the tables' (bridge/db/tables.py); tests/integration/test_handoff_unit.py
reads what these write through the ORM.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bridge.db.tables import ACTIVE_SQL, ConversationRow, MessageRow, TimelineRow
from bridge.db.units import Sql, Step, insert_many, run, run_many
from bridge.domain.status import Status

# Each half carries the partial unique indexes' own WHERE, word for word (SQLite uses a
# partial index only for a query that repeats it), so each is one index lookup instead
# of a walk over every waiting conversation.
FIND_ACTIVE_SQL = f"""
    SELECT id FROM (
        SELECT id FROM conversations
        WHERE bot_platform = :bot_platform AND bot_conversation_id = :bot_conversation_id
          AND {ACTIVE_SQL}
        UNION ALL
        SELECT id FROM conversations
        WHERE main_channel = :main_channel AND customer_id = :customer_id
          AND {ACTIVE_SQL}
    ) AS found
    LIMIT 1
"""
# With whether anyone subscribes at all, so a handoff reads the subscriptions only then.
_FIND_ACTIVE = Sql.of(
    f"SELECT ({FIND_ACTIVE_SQL}) AS existing, "
    "EXISTS (SELECT 1 FROM subscriptions) AS has_subscribers",
    "row",
)


def find_active(
    bot_platform: str, bot_conversation_id: str, main_channel: str, customer_id: str
) -> Step:
    """The id of the active conversation of this bot conversation, or of this customer on
    this main channel (`existing`, None when there is none), and `has_subscribers`."""
    return run(
        _FIND_ACTIVE,
        {
            "bot_platform": bot_platform,
            "bot_conversation_id": bot_conversation_id,
            "main_channel": main_channel,
            "customer_id": customer_id,
        },
    )


# --- the conversation -----------------------------------------------------------------

_CONVERSATION_COLUMNS = tuple(column.name for column in ConversationRow.__table__.columns)
_JSON_COLUMNS = frozenset(
    column.name
    for column in ConversationRow.__table__.columns
    if column.type.__class__.__name__ == "JSON"
)
# The ORM writes a JSON attribute set to None as JSON `null`, and one never set (these)
# as SQL NULL; a row written here reads and matches queries exactly as one it wrote.
_UNSET_JSON = frozenset({"handback"})
_INSERT_CONVERSATION = Sql.of(
    "INSERT INTO conversations ({}) VALUES ({})".format(
        ", ".join(_CONVERSATION_COLUMNS), ", ".join(f":{name}" for name in _CONVERSATION_COLUMNS)
    )
)
_ATTRIBUTE_OF = {
    column.name: attribute.key
    for attribute in ConversationRow.__mapper__.column_attrs
    for column in attribute.columns
}


def conversation_values(row: ConversationRow) -> dict[str, Any]:
    """The columns of a new conversation, as the ORM would store them."""
    values: dict[str, Any] = {}
    for name in _CONVERSATION_COLUMNS:
        value = getattr(row, _ATTRIBUTE_OF[name], None)
        if name in _JSON_COLUMNS:
            if value is None and name in _UNSET_JSON:
                values[name] = None
            else:
                # Text already: the runners pass it to the driver as it is.
                values[name] = json.dumps(value)
        elif isinstance(value, Status):
            values[name] = value.value
        else:
            values[name] = value
    return values


def insert_conversation(row: ConversationRow) -> Step:
    """Insert a new conversation; the active-uniqueness indexes refuse a duplicate."""
    return run(_INSERT_CONVERSATION, conversation_values(row))


def insert_messages(messages: Sequence[MessageRow]) -> Step:
    """Insert a transcript's messages in one statement; answers rows of their `seq`
    (increasing in the order given: sort them)."""
    return insert_many(
        "messages",
        [
            {
                "conversation_id": m.conversation_id,
                "role": m.role,
                "text": m.text,
                "author": m.author,
                "external_id": m.external_id,
                "sent_at": m.sent_at,
                "created_at": m.created_at,
                # A JSON list, or NULL for a message without files (as the ORM stores it).
                "attachments": m.attachments or None,
            }
            for m in messages
        ],
        returning="seq",
    )


def enqueue_all(rows: Sequence[Mapping[str, Any]]) -> Step:
    """Insert deliveries (jobs' `values`) in one statement."""
    return insert_many("outbox", rows)


_INSERT_TIMELINE = Sql.of(
    "INSERT INTO timeline (conversation_id, kind, data, at) "
    "VALUES (:conversation_id, :kind, :data, :at)"
)


def insert_timeline(rows: Sequence[TimelineRow]) -> Step:
    """Keep timeline moments (bridge/timeline.py)."""
    return run_many(
        _INSERT_TIMELINE,
        [
            {"conversation_id": r.conversation_id, "kind": r.kind, "data": r.data, "at": r.at}
            for r in rows
        ],
    )


_MARK_QUEUE_CHANGED = Sql.of(
    "INSERT INTO queue_changes (channel, changed_at) VALUES (:channel, :changed_at)"
)


def mark_queue_changed(channel: str, now: datetime) -> Step:
    """Record that the channel's queue changed (bridge/services/queue.py announces it)."""
    return run(_MARK_QUEUE_CHANGED, {"channel": channel, "changed_at": now})


# --- once the platform has opened the chat -------------------------------------------

# The first key of the advisory locks taken on platform ids (ASCII "park").
_PARKED_LOCK_SPACE = 0x7061726B


def parked_lock_key(channel: str, external_ref: str) -> tuple[int, int]:
    """The advisory lock (space, key) of one platform id on PostgreSQL."""
    digest = hashlib.sha256(f"{channel}\0{external_ref}".encode()).digest()
    return _PARKED_LOCK_SPACE, int.from_bytes(digest[:4], "big", signed=True)


_SET_PLATFORM_REF = Sql.of(
    "UPDATE conversations SET external_ref = :external_ref, platform_join_url = :join_url "
    "WHERE id = :id"
)
# PostgreSQL only (SQLite runs one transaction at a time): see TxInbound.lock_platform_ref.
_LOCK_PLATFORM_REF = Sql.of(None, postgresql="SELECT pg_advisory_xact_lock(:space, :key)")
_HAS_PARKED = Sql.of(
    "SELECT EXISTS (SELECT 1 FROM parked_events "
    "WHERE channel = :channel AND external_ref = :external_ref)",
    "scalar",
)


def set_platform_ref(conversation_id: str, external_ref: str, join_url: str | None) -> Step:
    """Keep where the platform opened the conversation, and its join link."""
    return run(
        _SET_PLATFORM_REF,
        {"id": conversation_id, "external_ref": external_ref, "join_url": join_url},
    )


def lock_platform_ref(channel: str, external_ref: str) -> Step:
    """Take turns with transactions parking an event for this platform id (PostgreSQL)."""
    space, key = parked_lock_key(channel, external_ref)
    return run(_LOCK_PLATFORM_REF, {"space": space, "key": key})


def has_parked_events(channel: str, external_ref: str) -> Step:
    """Whether any event waits for this platform id; answers a truth value."""
    return run(_HAS_PARKED, {"channel": channel, "external_ref": external_ref})


# --- the queue ------------------------------------------------------------------------


def _bounded(condition: str) -> str:
    return (
        "(SELECT count(*) FROM (SELECT 1 FROM conversations "
        "WHERE channel = :channel AND status = 'pending' AND "
        f"{condition} LIMIT :limit) AS part)"
    )


# Queue order is priority (higher first), then age, then id: the chats ahead are three
# ranges of the queue's index, each read no further than `:limit` entries
# (the same count as bridge/db/repo/queue.py's, for a caller outside the ORM).
_AHEAD = Sql.of(
    "SELECT {} + {} + {} AS ahead".format(
        _bounded("priority > :priority"),
        _bounded("priority = :priority AND created_at < :created_at"),
        _bounded("priority = :priority AND created_at = :created_at AND id < :id"),
    ),
    "scalar",
)


def ahead_in_queue(row: ConversationRow, limit: int) -> Step:
    """How many waiting chats of the row's channel are ahead of it, counting to `limit + 1`
    at most per part (answers the sum: over `limit` means past the count's bound)."""
    return run(
        _AHEAD,
        {
            "channel": row.channel,
            "priority": row.priority,
            "created_at": row.created_at,
            "id": row.id,
            "limit": limit + 1,
        },
    )


_RECENT_WAITS = Sql.of(
    """
    SELECT created_at, assigned_at FROM conversations
    WHERE channel = :channel AND assigned_at IS NOT NULL
    ORDER BY assigned_at DESC LIMIT :limit
    """,
    "rows",
    times=("created_at", "assigned_at"),
)


def recent_waits(channel: str, limit: int) -> Step:
    """The latest assigned chats of a channel: rows of created_at, assigned_at."""
    return run(_RECENT_WAITS, {"channel": channel, "limit": limit})


def waits(rows: Sequence[Mapping[str, Any]]) -> list[float]:
    """Seconds each of `recent_waits`' chats waited."""
    return [(row["assigned_at"] - row["created_at"]).total_seconds() for row in rows]


# --- the directory (who can be offered a chat) ----------------------------------------

_AGENTS = Sql.of("SELECT id, organization_id, presence, capacity, active_count FROM agents", "rows")
_TEAM_MEMBERS = Sql.of("SELECT team_id, agent_id FROM team_members", "rows")


def agents() -> Step:
    """Every agent's id, organization, presence, capacity and active count."""
    return run(_AGENTS)


def team_members() -> Step:
    """Every team membership: rows of team_id, agent_id."""
    return run(_TEAM_MEMBERS)


__all__ = [
    "agents",
    "ahead_in_queue",
    "conversation_values",
    "enqueue_all",
    "find_active",
    "has_parked_events",
    "insert_conversation",
    "insert_messages",
    "insert_timeline",
    "lock_platform_ref",
    "mark_queue_changed",
    "recent_waits",
    "set_platform_ref",
    "team_members",
    "waits",
]
