"""The hot paths' statements, as steps for units of work (see bridge/db/units.py).

The ORM repositories (bridge/db/repo/) keep everything else; these are the statements a
message, a claim and a finished delivery run, written as plain SQL so they cost what the
database costs. Columns and storage formats are the tables' (bridge/db/tables.py); the
round-trip tests in tests/integration/test_units.py read what these write through the ORM.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import inspect
from sqlalchemy.orm import Mapper, configure_mappers

from bridge.db.repo.delivery import claim_sql, claim_timers_sql
from bridge.db.tables import MessageRow, OutboxRow, SubscriptionRow
from bridge.db.units import Fetch, Sql, Step, run, run_many

M = TypeVar("M")


_MAPPERS: dict[type[Any], Mapper[Any]] = {}


def _mapper(model: type[Any]) -> Mapper[Any]:
    mapper = _MAPPERS.get(model)
    if mapper is None:
        mapper = _MAPPERS[model] = inspect(model)
    return mapper


def orm_rows(model: type[M], rows: Sequence[Mapping[str, Any]]) -> list[M]:
    """ORM rows of `model` with these column values, attached to no session.

    Made the way the ORM makes the rows it loads: the values go straight into a new
    instance's state, with none of the constructor's attribute events (a tenth of its
    cost). For rows the hot paths only read, or change and never add to a session.
    """
    mapper = _mapper(model)
    if not mapper.configured:
        configure_mappers()  # the attributes need it
    new = mapper.class_manager.new_instance
    made = []
    for values in rows:
        row = new()
        row.__dict__.update(values)
        made.append(row)
    return made


def orm_row(model: type[M], **values: Any) -> M:
    """One row as `orm_rows` makes them."""
    return orm_rows(model, [values])[0]


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
                          created_at, attachments)
    VALUES (:conversation_id, :role, :text, :author, :external_id, :sent_at, :created_at,
            :attachments)
    ON CONFLICT (conversation_id, role, external_id) DO NOTHING
    RETURNING seq
    """,
    "scalar",
)

_FIND_MESSAGE = Sql.of(
    """
    SELECT seq, conversation_id, role, text, author, external_id, sent_at, created_at,
           attachments
    FROM messages
    WHERE conversation_id = :conversation_id AND role = :role AND external_id = :external_id
    """,
    "row",
    json=("attachments",),
    times=("sent_at", "created_at"),
)

_SUBSCRIPTIONS = Sql.of(
    "SELECT id, url, events, secret, description, created_at, organization_id "
    "FROM subscriptions ORDER BY created_at",
    "rows",
    json=("events",),
    times=("created_at",),
)


@dataclass(frozen=True, slots=True)
class ConversationHead:
    """The columns of a conversation a message needs (what `lock_for_message` answers)."""

    id: str
    status: str
    channel: str
    bot_platform: str
    bot_conversation_id: str
    callback_url: str
    organization_id: str | None
    customer: dict[str, Any]
    agent: dict[str, Any] | None


def lock_for_message(conversation_id: str, now: datetime) -> Step:
    """Lock the conversation and mark it updated; answers its columns (see ConversationHead)
    and `has_subscribers`, or None."""
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
            # A JSON list, or NULL for a message without files (as the ORM stores it).
            "attachments": message.attachments or None,
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


def enqueue(values: Mapping[str, Any]) -> Step:
    """Insert one delivery: a job's `values`, the columns of its outbox row."""
    return run(_ENQUEUE, values)


# --- the delivery worker --------------------------------------------------------------

_OUTBOX_TIMES = ("next_attempt_at", "lease_until", "created_at", "delivered_at")
# A list of row ids travels as one JSON parameter, so a statement's text does not depend on
# how many rows it touches (one prepared statement, one cached plan).
_IDS_SQLITE = "(SELECT value FROM json_each(:ids))"
_IDS_POSTGRESQL = "(SELECT value::{kind} FROM json_array_elements_text(CAST(:ids AS json)))"


def _by_ids(sql: str, fetch: Fetch = "none", kind: str = "bigint") -> Sql:
    """`sql` whose `{ids}` is the JSON list in `:ids` (of ids of PostgreSQL type `kind`), and
    whose `{status}` is the status column, kept out of SQLite's choice of index."""
    return Sql.of(
        sql.format(ids=_IDS_SQLITE, status="+status"),
        fetch,
        postgresql=sql.format(ids=_IDS_POSTGRESQL.format(kind=kind), status="status"),
    )


@functools.lru_cache(maxsize=64)
def _claim(avoid: int, bounded: bool) -> Sql:
    return Sql.of(
        claim_sql("sqlite", avoid, bounded),
        "rows",
        postgresql=claim_sql("postgresql", avoid, bounded),
        json=("payload",),
        times=_OUTBOX_TIMES,
    )


def claim_heads(
    now: datetime,
    limit: int,
    until: datetime,
    *,
    after_lane: str = "",
    upto_lane: str | None = None,
    avoid_patterns: Sequence[str] = (),
) -> Step:
    """Lease the heads of up to `limit` due lanes (see bridge/db/repo/delivery.py)."""
    values: dict[str, Any] = {"now": now, "until": until, "limit": limit, "after": after_lane}
    if upto_lane is not None:
        values["upto"] = upto_lane
    for i, pattern in enumerate(avoid_patterns):
        values[f"avoid_{i}"] = pattern
    return run(_claim(len(avoid_patterns), upto_lane is not None), values)


@functools.lru_cache(maxsize=64)
def _claim_timers(avoid: int) -> Sql:
    return Sql.of(
        claim_timers_sql("sqlite", avoid),
        "rows",
        postgresql=claim_timers_sql("postgresql", avoid),
        json=("payload",),
        times=_OUTBOX_TIMES,
    )


def claim_timers(
    now: datetime, limit: int, until: datetime, *, avoid_patterns: Sequence[str] = ()
) -> Step:
    """Lease up to `limit` due timers, oldest due first (see bridge/db/repo/delivery.py)."""
    values: dict[str, Any] = {"now": now, "until": until, "limit": limit}
    for i, pattern in enumerate(avoid_patterns):
        values[f"avoid_{i}"] = pattern
    return run(_claim_timers(len(avoid_patterns)), values)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed row, and where its conversation was on its platform when it was claimed."""

    row: OutboxRow
    channel: str | None
    external_ref: str | None


def outbox_rows(rows: Sequence[dict[str, Any]]) -> list[OutboxRow]:
    """Claimed rows as the ORM's rows (attached to no session, see `orm_rows`), in id order."""
    return orm_rows(OutboxRow, sorted(rows, key=lambda values: values["id"]))


_PLATFORM_REFS = _by_ids(
    "SELECT id, channel, external_ref FROM conversations WHERE id IN {ids}", "rows", "text"
)


def platform_refs(conversation_ids: Sequence[str]) -> Step:
    """Where these conversations are on their platforms: rows of id, channel, external_ref."""
    return run(_PLATFORM_REFS, {"ids": sorted(set(conversation_ids))})


def claimed(rows: Sequence[OutboxRow], refs: Sequence[dict[str, Any]]) -> list[Claimed]:
    """Each row with its conversation's place on its platform (None when it has none)."""
    by_id = {ref["id"]: ref for ref in refs}
    found = []
    for row in rows:
        ref = by_id.get(row.conversation_id) if row.conversation_id else None
        found.append(
            Claimed(row, ref["channel"] if ref else None, ref["external_ref"] if ref else None)
        )
    return found


# SQLite's planner would pick the (status, lane, id) index for `status = 'pending'` and
# look at every pending row for a few ids; `+status` leaves it the primary key's lookups.
_RENEW = _by_ids(
    "UPDATE outbox SET lease_until = :until "
    "WHERE id IN {ids} AND {status} = 'pending' AND lease_until > :now RETURNING id",
    "rows",
)
_RELEASE = _by_ids(
    "UPDATE outbox SET lease_until = NULL WHERE id IN {ids} AND {status} = 'pending'"
)
_DELIVERED = _by_ids(
    "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = :now, "
    "lease_until = NULL, last_error = NULL WHERE id IN {ids}"
)
_RETRY = Sql.of(
    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = :due, lease_until = NULL, "
    "last_error = :error WHERE id = :row_id"
)


def renew_leases(row_ids: Sequence[int], now: datetime, until: datetime) -> Step:
    """Extend leases still held (answers rows with the ids extended)."""
    return run(_RENEW, {"ids": list(row_ids), "now": now, "until": until})


def release_leases(row_ids: Sequence[int]) -> Step:
    """Give back leases this worker will not use."""
    return run(_RELEASE, {"ids": list(row_ids)})


def finish_delivered(row_ids: Sequence[int], now: datetime) -> Step:
    """The receivers accepted these deliveries."""
    return run(_DELIVERED, {"ids": list(row_ids), "now": now})


def finish_retries(retries: Sequence[tuple[int, datetime, str]]) -> Step:
    """These attempts failed for a passing reason: `(id, next attempt at, error)`."""
    return run_many(
        _RETRY,
        [{"row_id": row_id, "due": due, "error": error[:2000]} for row_id, due, error in retries],
    )


# --- conversations --------------------------------------------------------------------

_PLATFORM_REF = Sql.of("SELECT id, channel, external_ref FROM conversations WHERE id = :id", "row")


def platform_ref(conversation_id: str) -> Step:
    """Where a conversation is on its platform: answers id, channel, external_ref (or None)."""
    return run(_PLATFORM_REF, {"id": conversation_id})
