"""Table definitions. Alembic migrations in migrations/versions/ must match these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bridge.domain.status import ACTIVE, Status

# A naming convention keeps constraint names stable across SQLite and PostgreSQL,
# which Alembic needs to alter them later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no offset, so store UTC there)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StatusColumn(TypeDecorator[Status]):
    """A conversation's Status, stored as its string value (rows read back as Status)."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: Status | None, dialect: Dialect) -> str | None:
        # Status(...) refuses a string that is no status before it reaches the table.
        return None if value is None else Status(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> Status | None:
        return None if value is None else Status(value)


# In the enum's order, so the index condition reads as it always has (the migrations').
ACTIVE_SQL = "status IN ({})".format(", ".join(f"'{s.value}'" for s in Status if s in ACTIVE))
# Outbox rows not delivered yet: waiting or retrying, or given up (the supervisor's "stuck").
STUCK_SQL = "status IN ('pending', 'dead')"
# Timers: outbox rows that wait for a time in lanes of their own (an accept timeout, a
# fallback move, a router's next step; bridge/relay/jobs). Every waiting chat may hold
# one, so the claim finds due ones by time instead of walking their lanes one by one.
TIMER_KINDS = ("routing.accept_timeout", "routing.evaluate", "routing.fallback")
_TIMER_LIST = ", ".join(f"'{kind}'" for kind in TIMER_KINDS)
PENDING_TIMER_SQL = f"status = 'pending' AND kind IN ({_TIMER_LIST})"
PENDING_LANE_SQL = f"status = 'pending' AND kind NOT IN ({_TIMER_LIST})"


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ConversationRow(Base):
    """A handed-off conversation: who, where it was routed, and its state."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[Status] = mapped_column(StatusColumn())
    main_channel: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(128))
    platform: Mapped[str] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(128))
    route_rule: Mapped[str] = mapped_column(String(32))
    route_trace: Mapped[list[str]] = mapped_column(JSON)
    bot_platform: Mapped[str] = mapped_column(String(64))
    bot_conversation_id: Mapped[str] = mapped_column(String(256))
    callback_url: Mapped[str] = mapped_column(Text)
    customer_id: Mapped[str] = mapped_column(String(256))
    customer: Mapped[dict[str, Any]] = mapped_column(JSON)
    conversation_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    agent: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The platform's own id for the conversation, once the agent side has opened it.
    external_ref: Mapped[str | None] = mapped_column(String(256))
    # The platform's own join link, when it made one while opening the conversation.
    platform_join_url: Mapped[str | None] = mapped_column(Text)
    status_reason: Mapped[str | None] = mapped_column(Text)
    # The organization owning the channel it was routed to: its subscribers get its events.
    # None for conversations stored before organizations owned channels.
    organization_id: Mapped[str | None] = mapped_column(String(128))
    # Routing: what the decision chose, and the router's progress for this chat.
    team_id: Mapped[str | None] = mapped_column(String(128))
    router_id: Mapped[str | None] = mapped_column(String(36))
    priority: Mapped[int] = mapped_column(Integer, server_default="0")
    # Agents the chat is offered to (grows only: assignment is incremental).
    offered_to: Mapped[list[str]] = mapped_column(JSON, server_default="[]")
    # When each router step took effect (ISO times), a prefix of the router's steps.
    routing_progress: Mapped[list[str]] = mapped_column(JSON, server_default="[]")
    assignee_id: Mapped[str | None] = mapped_column(String(128))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The accept timer now armed (bridge/services/timeouts.py): a timer of an older round
    # fires as a no-op, so a chat taken, answered or moved meanwhile is left alone.
    accept_round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Agents who let the chat go unanswered or passed it on: a timeout offers it to others.
    passed_over: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # What the agent said when handing it back to the bot: disposition, tags, note.
    handback: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The position and estimated wait last announced to the bot in queue.updated, written
    # only by the queue announcer (bridge/services/queue.py): a position is derived from
    # the waiting set when it is read, never written to every waiting row at each change.
    queue_position: Mapped[int | None] = mapped_column(Integer)
    queue_eta_seconds: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        # At most one active conversation per bot conversation, and per customer under a
        # main channel: the database, not a read-then-write, is what prevents duplicates.
        Index(
            "uq_conversations_active_bot",
            "bot_platform",
            "bot_conversation_id",
            unique=True,
            sqlite_where=text(ACTIVE_SQL),
            postgresql_where=text(ACTIVE_SQL),
        ),
        Index(
            "uq_conversations_active_customer",
            "main_channel",
            "customer_id",
            unique=True,
            sqlite_where=text(ACTIVE_SQL),
            postgresql_where=text(ACTIVE_SQL),
        ),
        Index("ix_conversations_status_created", "status", "created_at"),
        Index("ix_conversations_channel_external_ref", "channel", "external_ref"),
        Index("ix_conversations_queue", "channel", "status", "priority", "created_at"),
        Index("ix_conversations_assignee_status", "assignee_id", "status"),
        # The channel's latest assignments, for the estimated wait, without reading its
        # history. Partial: only assigned chats, so the planner never mistakes it for the
        # queue's index.
        Index(
            "ix_conversations_channel_assigned",
            "channel",
            "assigned_at",
            sqlite_where=text("assigned_at IS NOT NULL"),
            postgresql_where=text("assigned_at IS NOT NULL"),
        ),
        # The supervisor's list, paged by keyset in (created_at, id) order: every
        # organization's, and one organization's.
        Index("ix_conversations_created", "created_at", "id"),
        Index("ix_conversations_org_created", "organization_id", "created_at", "id"),
    )


class MessageRow(Base):
    """One message of a conversation's transcript, the bot's history included."""

    __tablename__ = "messages"

    seq: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(36))
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(256))
    # The sender's own id for the message, so a retried send is stored once.
    external_id: Mapped[str | None] = mapped_column(String(256))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Files as links, `[{url, name, mime_type, size}]` (bridge/attachments.py); NULL when none.
    attachments: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSON(none_as_null=True), default=None
    )

    __table_args__ = (
        Index("ix_messages_conversation_seq", "conversation_id", "seq"),
        Index(
            "uq_messages_conversation_external",
            "conversation_id",
            "role",
            "external_id",
            unique=True,
        ),
    )


class OutboxRow(Base):
    """A delivery to make: written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    # Deliveries in one lane go out in id order, one at a time: "{conversation}:{side}".
    lane: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text)
    # Sent as webhook-id: the same on every attempt, so receivers can drop repeats.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The W3C traceparent of the request that caused it, so its delivery continues the trace.
    traceparent: Mapped[str | None] = mapped_column(String(55))

    __table_args__ = (
        Index("ix_outbox_status_lane_id", "status", "lane", "id"),
        # The lanes the claim walks (every pending lane but timers'), and due timers by
        # time: a claim's cost follows what is due, not how many chats wait on a timer.
        Index(
            "ix_outbox_pending_lanes",
            "lane",
            "id",
            sqlite_where=text(PENDING_LANE_SQL),
            postgresql_where=text(PENDING_LANE_SQL),
        ),
        Index(
            "ix_outbox_pending_timers",
            "next_attempt_at",
            sqlite_where=text(PENDING_TIMER_SQL),
            postgresql_where=text(PENDING_TIMER_SQL),
        ),
        # A conversation's deliveries not delivered yet, counted for the supervisor's list.
        # Partial: a delivered row leaves it, so it stays as small as the backlog.
        Index(
            "ix_outbox_conversation_stuck",
            "conversation_id",
            sqlite_where=text(STUCK_SQL),
            postgresql_where=text(STUCK_SQL),
        ),
    )


class AgentRow(Base):
    """A human agent: presence (as giosg's console has it), capacity, and current load."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(320))
    organization_id: Mapped[str] = mapped_column(String(128))
    # online; offline = signed in but not started; absent = not signed in.
    presence: Mapped[str] = mapped_column(String(16), server_default="absent")
    capacity: Mapped[int] = mapped_column(Integer, server_default="3")
    # Conversations assigned to the agent and still active; changed only by conditional
    # updates, so concurrent assignments never push it past capacity.
    active_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # Where the agent came from: "config", "api", or a channel whose platform reported it.
    source: Mapped[str] = mapped_column(String(128), server_default="api")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TeamRow(Base):
    """A team of agents, optionally with business hours."""

    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    organization_id: Mapped[str] = mapped_column(String(128))
    hours: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(128), server_default="api")


class TeamMemberRow(Base):
    """Membership of an agent in a team."""

    __tablename__ = "team_members"

    team_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(128), primary_key=True)


class RouterRow(Base):
    """A giosg-style router: ordered steps of users and teams with preconditions."""

    __tablename__ = "routers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(256))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_user_id: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by_user_id: Mapped[str | None] = mapped_column(String(128))


class ChannelRouteRow(Base):
    """A channel's (giosg "room") link to a router, set through the API over the config."""

    __tablename__ = "channel_routes"

    channel: Mapped[str] = mapped_column(String(128), primary_key=True)
    router_id: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AdapterStateRow(Base):
    """Small values a platform hands the bridge to keep (Tovie's webhook URL, say)."""

    __tablename__ = "adapter_state"

    adapter: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SubscriptionRow(Base):
    """A CRM or helpdesk endpoint that receives lifecycle events, signed with its own secret."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    # Event types to send; ["*"] means all of them.
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The organization whose conversations it receives; None (the admin's) receives all.
    organization_id: Mapped[str | None] = mapped_column(String(128))


class InboundDeliveryRow(Base):
    """Webhook ids already applied from signed integrations, so redeliveries are no-ops."""

    __tablename__ = "inbound_deliveries"

    webhook_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ParkedEventRow(Base):
    """A platform event that arrived before its conversation's platform id was stored.

    It waits (bounded by `relay.keep_early_events_seconds`) for the open to store that id,
    then it is applied; `id` keeps the order of arrival.
    """

    __tablename__ = "parked_events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(128))
    external_ref: Mapped[str] = mapped_column(String(256))
    event_id: Mapped[str] = mapped_column(String(256))
    # The event as the adapter parsed it (bridge.ports.agent_side.InboundEvent's fields).
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    __table_args__ = (
        Index("ix_parked_events_channel_ref", "channel", "external_ref", "id"),
        # A redelivery while the first copy waits is parked once.
        Index("uq_parked_events_channel_event", "channel", "event_id", unique=True),
    )


class QueueChangeRow(Base):
    """A channel's queue changed (a chat joined or left it): its positions are due again.

    Written in the transaction of the change and removed by the announcer that announced
    the channel. Insert-only on the request path, so concurrent handoffs and takes of one
    channel never wait for each other on a shared counter row.
    """

    __tablename__ = "queue_changes"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(128))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_queue_changes_channel_id", "channel", "id"),)


class QueueChannelRow(Base):
    """When a channel's positions were last announced: replicas announce a channel in turn,
    at most once per `queue.update_seconds`."""

    __tablename__ = "queue_channels"

    channel: Mapped[str] = mapped_column(String(128), primary_key=True)
    announced_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SecretRow(Base):
    """Secrets the bridge generated for itself when the environment set none."""

    __tablename__ = "bridge_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TimelineRow(Base):
    """A moment of a conversation's life the console's transcript shows beside the messages:
    an agent joined or left, or the chat ended (how, by whom, why). Written by `announce`
    in the transaction of the change (bridge/timeline.py says which events and what of them).
    """

    __tablename__ = "timeline"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_timeline_conversation_id", "conversation_id", "id"),)
