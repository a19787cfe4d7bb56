"""The hot paths' statements, as steps for units of work (see bridge/db/units.py).

The ORM repositories (bridge/db/repo/) keep everything else; these are the statements a
message, a claim and a finished delivery run, written as plain SQL so they cost what the
database costs. Columns and storage formats are the tables' (bridge/db/tables.py); the
round-trip tests in tests/unit/test_steps.py read what these write through the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bridge.db.notify import OUTBOX_CHANNEL_SQL
from bridge.db.tables import MessageRow, OutboxRow, SubscriptionRow
from bridge.db.units import Sql, Step, run

# --- messages -------------------------------------------------------------------------

# What a new message needs of its conversation (and whether anyone subscribes at all).
# The UPDATE is the row lock a `SELECT ... FOR UPDATE` would take on PostgreSQL (SQLite
# has one writer), so messages of one conversation take their seq and outbox ids, and
# commit, one after the other on every replica.
_LOCK_FOR_MESSAGE = Sql.of(
    """
    UPDATE conversations SET updated_at = :touched_at WHERE id = :conversation_id
    RETURNING id, status, channel, bot_platform, bot_conversation_id, callback_url,
              organization_id, customer, agent,
              EXISTS (SELECT 1 FROM subscriptions) AS has_subscribers
    """,
    "row",
    json=("customer", "agent"),
)

# A repeated (conversation, role, sender's id) is skipped in the same statement, so the
# transaction stays usable and the caller reads the earlier message.
_APPEND_MESSAGE = Sql.of(
    """
    INSERT INTO messages (conversation_id, role, text, author, external_id, sent_at,
                          created_at)
    VALUES (:conversation_id, :role, :text, :author, :external_id, :sent_at, :created_at)
    ON CONFLICT (conversation_id, role, external_id) DO NOTHING
    RETURNING seq
    """,
    "scalar",
)

_FIND_MESSAGE = Sql.of(
    """
    SELECT seq, conversation_id, role, text, author, external_id, sent_at, created_at
    FROM messages
    WHERE conversation_id = :conversation_id AND role = :role AND external_id = :external_id
    """,
    "row",
    times=("sent_at", "created_at"),
)

_SUBSCRIPTIONS = Sql.of(
    "SELECT id, url, events, secret, description, created_at, organization_id "
    "FROM subscriptions ORDER BY created_at",
    "rows",
    json=("events",),
    times=("created_at",),
)


def lock_for_message(conversation_id: str, now: datetime) -> Step:
    """Lock the conversation and mark it updated; answers its row (or None)."""
    return run(_LOCK_FOR_MESSAGE, {"conversation_id": conversation_id, "touched_at": now})


def append_message(message: MessageRow) -> Step:
    """Insert a message; answers its seq, or None when its sender's id is stored already."""
    return run(
        _APPEND_MESSAGE,
        {
            "conversation_id": message.conversation_id,
            "role": message.role,
            "text": message.text,
            "author": message.author,
            "external_id": message.external_id,
            "sent_at": message.sent_at,
            "created_at": message.created_at,
        },
    )


def find_message(conversation_id: str, role: str, external_id: str) -> Step:
    """The message stored under the sender's own id; answers a row or None."""
    return run(
        _FIND_MESSAGE,
        {"conversation_id": conversation_id, "role": role, "external_id": external_id},
    )


def subscriptions() -> Step:
    """Every subscription; answers rows (see `subscription_rows`)."""
    return run(_SUBSCRIPTIONS)


def subscription_rows(rows: Sequence[dict[str, Any]]) -> list[SubscriptionRow]:
    """Subscriptions as the ORM's rows (not attached to any session)."""
    return [SubscriptionRow(**row) for row in rows]


# --- the outbox -----------------------------------------------------------------------

_OUTBOX_COLUMNS = (
    "lane",
    "conversation_id",
    "kind",
    "target",
    "idempotency_key",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "traceparent",
)
_ENQUEUE = Sql.of(
    "INSERT INTO outbox ({}) VALUES ({})".format(
        ", ".join(_OUTBOX_COLUMNS), ", ".join(f":{name}" for name in _OUTBOX_COLUMNS)
    )
)
# Sent at commit, never for a rollback: every replica's worker wakes then.
_NOTIFY_OUTBOX = Sql.of(None, postgresql=f"SELECT pg_notify({OUTBOX_CHANNEL_SQL}, '')")


def enqueue(row: OutboxRow) -> Step:
    """Insert one delivery (an OutboxRow built by a job's `to_row`)."""
    return run(_ENQUEUE, {name: getattr(row, name) for name in _OUTBOX_COLUMNS})


def notify_outbox() -> Step:
    """Wake the workers of every replica at commit (PostgreSQL; nothing on SQLite)."""
    return run(_NOTIFY_OUTBOX)
