"""Repositories: the only place that writes SQL. One `Tx` is one database transaction."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bridge.db.tables import (
    ACTIVE_STATUSES,
    AdapterStateRow,
    AgentRow,
    ChannelRouteRow,
    ConversationRow,
    InboundDeliveryRow,
    MessageRow,
    OutboxRow,
    ParkedEventRow,
    RouterRow,
    SecretRow,
    SubscriptionRow,
    TeamMemberRow,
    TeamRow,
)

# The first key of the advisory locks taken on platform ids (ASCII "park").
_PARKED_LOCK_SPACE = 0x7061726B


class Tx:
    """Queries and writes inside one transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- conversations -------------------------------------------------------------

    async def insert_conversation(self, row: ConversationRow) -> None:
        """Insert; the active-uniqueness indexes raise IntegrityError on a duplicate."""
        self.session.add(row)
        await self.session.flush()

    async def get_conversation(self, conversation_id: str) -> ConversationRow | None:
        """The conversation with this id, if any."""
        return await self.session.get(ConversationRow, conversation_id)

    async def find_active(
        self, bot_platform: str, bot_conversation_id: str, main_channel: str, customer_id: str
    ) -> ConversationRow | None:
        """The active conversation of this bot conversation, or of this customer on this channel."""
        query = (
            select(ConversationRow)
            .where(ConversationRow.status.in_(ACTIVE_STATUSES))
            .where(
                or_(
                    and_(
                        ConversationRow.bot_platform == bot_platform,
                        ConversationRow.bot_conversation_id == bot_conversation_id,
                    ),
                    and_(
                        ConversationRow.main_channel == main_channel,
                        ConversationRow.customer_id == customer_id,
                    ),
                )
            )
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def find_for_platform(
        self,
        channel: str,
        *,
        external_ref: str | None = None,
        customer_id: str | None = None,
        main_channel: str | None = None,
    ) -> ConversationRow | None:
        """The newest conversation on a channel with this platform id, else the active one
        of this customer (searched across the main channel's channels when given)."""
        if external_ref is not None:
            query = (
                select(ConversationRow)
                .where(
                    ConversationRow.channel == channel,
                    ConversationRow.external_ref == external_ref,
                )
                .order_by(ConversationRow.created_at.desc())
                .limit(1)
            )
            row = (await self.session.execute(query)).scalar_one_or_none()
            if row is not None or customer_id is None:
                return row
        if customer_id is None:
            return None
        scope = (
            ConversationRow.main_channel == main_channel
            if main_channel is not None
            else ConversationRow.channel == channel
        )
        query = (
            select(ConversationRow)
            .where(
                scope,
                ConversationRow.customer_id == customer_id,
                ConversationRow.status.in_(ACTIVE_STATUSES),
            )
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def find_by_bot_conversation(
        self, bot_platform: str, bot_conversation_id: str
    ) -> ConversationRow | None:
        """The newest conversation handed over from this bot conversation."""
        query = (
            select(ConversationRow)
            .where(
                ConversationRow.bot_platform == bot_platform,
                ConversationRow.bot_conversation_id == bot_conversation_id,
            )
            .order_by(ConversationRow.created_at.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    # -- agents, teams, routers ---------------------------------------------------------

    async def set_presence(
        self,
        channel: str,
        agent_id: str,
        name: str | None,
        presence: str,
        now: datetime,
        organization_id: str,
    ) -> bool:
        """Record an agent's presence; an unknown agent is created in `organization_id`.

        Returns whether the presence changed (routing re-evaluates only then).
        """
        row = await self.session.get(AgentRow, agent_id)
        if row is None:
            self.session.add(
                AgentRow(
                    id=agent_id,
                    name=name or agent_id,
                    email=None,
                    organization_id=organization_id,
                    presence=presence,
                    capacity=3,
                    active_count=0,
                    source=channel,
                    updated_at=now,
                )
            )
            await self.session.flush()
            return True
        changed = row.presence != presence
        row.presence, row.updated_at = presence, now
        if name and row.source != "config":
            row.name = name
        await self.session.flush()
        return changed

    async def agents(self) -> list[AgentRow]:
        """Every agent, by id."""
        return list((await self.session.execute(select(AgentRow).order_by(AgentRow.id))).scalars())

    async def get_agent(self, agent_id: str) -> AgentRow | None:
        """One agent."""
        return await self.session.get(AgentRow, agent_id)

    async def upsert_agent(self, row: AgentRow, team_ids: Sequence[str] | None) -> AgentRow:
        """Create or update an agent (keeping presence and load), and its teams if given."""
        existing = await self.session.get(AgentRow, row.id)
        if existing is None:
            self.session.add(row)
            existing = row
        else:
            existing.name, existing.email = row.name, row.email
            existing.organization_id, existing.capacity = row.organization_id, row.capacity
            existing.source, existing.updated_at = row.source, row.updated_at
        if team_ids is not None:
            await self.session.execute(
                delete(TeamMemberRow).where(TeamMemberRow.agent_id == row.id)
            )
            self.session.add_all(TeamMemberRow(team_id=t, agent_id=row.id) for t in team_ids)
        await self.session.flush()
        return existing

    async def upsert_team(self, row: TeamRow) -> None:
        """Create or update a team."""
        existing = await self.session.get(TeamRow, row.id)
        if existing is None:
            self.session.add(row)
        else:
            existing.name, existing.hours = row.name, row.hours
            existing.organization_id, existing.source = row.organization_id, row.source
        await self.session.flush()

    async def teams(self) -> list[TeamRow]:
        """Every team, by id."""
        return list((await self.session.execute(select(TeamRow).order_by(TeamRow.id))).scalars())

    async def team_members(self) -> list[TeamMemberRow]:
        """Every membership."""
        return list((await self.session.execute(select(TeamMemberRow))).scalars())

    async def get_team(self, team_id: str) -> TeamRow | None:
        """One team."""
        return await self.session.get(TeamRow, team_id)

    async def agent_organizations(self, agent_ids: Collection[str]) -> dict[str, str]:
        """The organization of each of these agents that exists."""
        query = select(AgentRow.id, AgentRow.organization_id).where(AgentRow.id.in_(agent_ids))
        return {id_: org for id_, org in (await self.session.execute(query)).all()}

    async def team_organizations(self, team_ids: Collection[str]) -> dict[str, str]:
        """The organization of each of these teams that exists."""
        query = select(TeamRow.id, TeamRow.organization_id).where(TeamRow.id.in_(team_ids))
        return {id_: org for id_, org in (await self.session.execute(query)).all()}

    async def try_take_capacity(self, agent_id: str) -> bool:
        """Count one more active chat for the agent, only if under capacity (atomic)."""
        result = await self.session.execute(
            update(AgentRow)
            .where(AgentRow.id == agent_id, AgentRow.active_count < AgentRow.capacity)
            .values(active_count=AgentRow.active_count + 1)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release_capacity(self, agent_id: str) -> None:
        """One of the agent's chats ended."""
        await self.session.execute(
            update(AgentRow)
            .where(AgentRow.id == agent_id, AgentRow.active_count > 0)
            .values(active_count=AgentRow.active_count - 1)
            .execution_options(synchronize_session=False)
        )

    async def add_router(self, row: RouterRow) -> None:
        """Store a new router."""
        self.session.add(row)
        await self.session.flush()

    async def routers(
        self, organization_id: str, *, newest_first: bool, offset: int, limit: int
    ) -> tuple[list[RouterRow], int]:
        """A page of an organization's routers and the total count."""
        order = RouterRow.created_at.desc() if newest_first else RouterRow.created_at
        base = select(RouterRow).where(RouterRow.organization_id == organization_id)
        rows = await self.session.execute(
            base.order_by(order, RouterRow.id).offset(offset).limit(limit)
        )
        total = await self.session.execute(
            select(func.count())
            .select_from(RouterRow)
            .where(RouterRow.organization_id == organization_id)
        )
        return list(rows.scalars()), int(total.scalar_one())

    async def all_routers(self) -> list[RouterRow]:
        """Every router (for building the routing table)."""
        return list((await self.session.execute(select(RouterRow))).scalars())

    async def get_router(self, organization_id: str, router_id: str) -> RouterRow | None:
        """One router of an organization."""
        row = await self.session.get(RouterRow, router_id)
        return row if row is not None and row.organization_id == organization_id else None

    async def delete_router(self, row: RouterRow) -> None:
        """Remove a router and unlink it from channels."""
        await self.session.delete(row)
        await self.session.execute(
            update(ChannelRouteRow)
            .where(ChannelRouteRow.router_id == row.id)
            .values(router_id=None)
        )

    async def channel_routes(self) -> dict[str, str | None]:
        """Router links set through the API, by channel."""
        rows = (await self.session.execute(select(ChannelRouteRow))).scalars()
        return {row.channel: row.router_id for row in rows}

    async def set_channel_route(self, channel: str, router_id: str | None, now: datetime) -> None:
        """Link a channel to a router (or unlink with None)."""
        row = await self.session.get(ChannelRouteRow, channel)
        if row is None:
            self.session.add(ChannelRouteRow(channel=channel, router_id=router_id, updated_at=now))
        else:
            row.router_id, row.updated_at = router_id, now
        await self.session.flush()

    async def pending_conversations(self, channel: str | None = None) -> list[ConversationRow]:
        """Conversations waiting for an agent, in queue order (priority, then age)."""
        query = select(ConversationRow).where(
            ConversationRow.status == "pending", ConversationRow.assignee_id.is_(None)
        )
        if channel is not None:
            query = query.where(ConversationRow.channel == channel)
        query = query.order_by(
            ConversationRow.channel, ConversationRow.priority.desc(), ConversationRow.created_at
        )
        return list((await self.session.execute(query)).scalars())

    async def assigned_to(self, agent_id: str) -> list[ConversationRow]:
        """The agent's conversations that are still active, oldest first."""
        query = (
            select(ConversationRow)
            .where(
                ConversationRow.assignee_id == agent_id,
                ConversationRow.status.in_(ACTIVE_STATUSES),
            )
            .order_by(ConversationRow.assigned_at, ConversationRow.id)
        )
        return list((await self.session.execute(query)).scalars())

    async def recent_waits(self, channel: str, limit: int) -> list[float]:
        """Seconds the last `limit` assigned conversations of a channel waited."""
        query = (
            select(ConversationRow.created_at, ConversationRow.assigned_at)
            .where(ConversationRow.channel == channel, ConversationRow.assigned_at.is_not(None))
            .order_by(ConversationRow.assigned_at.desc())
            .limit(limit)
        )
        rows = (await self.session.execute(query)).all()
        return [(assigned - created).total_seconds() for created, assigned in rows if assigned]

    async def transition(
        self,
        conversation_id: str,
        from_statuses: Sequence[str],
        to_status: str,
        **fields: Any,
    ) -> bool:
        """Move to `to_status` only if the status is still one of `from_statuses`.

        A conditional UPDATE, so two replicas racing on the same conversation cannot
        both win; the loser sees False.
        """
        result = await self.session.execute(
            update(ConversationRow)
            .where(ConversationRow.id == conversation_id)
            .where(ConversationRow.status.in_(from_statuses))
            .values(status=to_status, **fields)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def assign(
        self, conversation_id: str, agent_id: str, agent: dict[str, Any], now: datetime
    ) -> bool:
        """Give a pending, unassigned chat to an agent; False when someone was faster."""
        result = await self.session.execute(
            update(ConversationRow)
            .where(
                ConversationRow.id == conversation_id,
                ConversationRow.status == "pending",
                ConversationRow.assignee_id.is_(None),
            )
            .values(
                status="active", assignee_id=agent_id, assigned_at=now, agent=agent, updated_at=now
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def update_conversation(self, conversation_id: str, **fields: Any) -> None:
        """Set fields on a conversation."""
        await self.session.execute(
            update(ConversationRow)
            .where(ConversationRow.id == conversation_id)
            .values(**fields)
            .execution_options(synchronize_session=False)
        )

    # -- messages --------------------------------------------------------------------

    async def add_messages(self, rows: Sequence[MessageRow]) -> None:
        """Append messages; a repeated (conversation, role, external_id) raises IntegrityError."""
        self.session.add_all(rows)
        await self.session.flush()

    async def find_message(
        self, conversation_id: str, role: str, external_id: str
    ) -> MessageRow | None:
        """A message stored earlier under the sender's own id."""
        query = select(MessageRow).where(
            MessageRow.conversation_id == conversation_id,
            MessageRow.role == role,
            MessageRow.external_id == external_id,
        )
        return (await self.session.execute(query)).scalar_one_or_none()

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

    # -- outbox ----------------------------------------------------------------------

    async def enqueue(self, rows: Sequence[OutboxRow]) -> None:
        """Add deliveries; they commit (or roll back) with the change that caused them."""
        self.session.add_all(rows)
        await self.session.flush()

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxRow]:
        """Lease up to `limit` deliveries that are due and at the head of their lane.

        Only the oldest pending row of a lane is eligible, and not while it is leased,
        so one lane is delivered by one worker at a time, in order, across replicas.
        """
        earlier = aliased(OutboxRow)
        candidates = (
            select(OutboxRow.id)
            .where(
                OutboxRow.status == "pending",
                OutboxRow.next_attempt_at <= now,
                or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now),
                ~exists().where(
                    earlier.lane == OutboxRow.lane,
                    earlier.status == "pending",
                    earlier.id < OutboxRow.id,
                ),
            )
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        ids = list((await self.session.execute(candidates)).scalars())
        claimed: list[int] = []
        for row_id in ids:
            result = await self.session.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id == row_id,
                    OutboxRow.status == "pending",
                    or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now),
                )
                .values(lease_until=now + lease)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                claimed.append(row_id)
        if not claimed:
            return []
        rows = await self.session.execute(
            select(OutboxRow).where(OutboxRow.id.in_(claimed)).order_by(OutboxRow.id)
        )
        return list(rows.scalars())

    async def mark_delivered(self, row_id: int, now: datetime) -> None:
        """The receiver accepted the delivery."""
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row_id)
            .values(
                status="delivered",
                attempts=OutboxRow.attempts + 1,
                delivered_at=now,
                lease_until=None,
                last_error=None,
            )
        )

    async def mark_retry(self, row_id: int, next_attempt_at: datetime, error: str) -> None:
        """The attempt failed for a passing reason; try again later."""
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row_id)
            .values(
                attempts=OutboxRow.attempts + 1,
                next_attempt_at=next_attempt_at,
                lease_until=None,
                last_error=error[:2000],
            )
        )

    async def mark_dead(self, row_id: int, error: str, *, count_attempt: bool = True) -> None:
        """Give up on the delivery; it stays visible and can be retried by hand."""
        values: dict[str, Any] = {"status": "dead", "lease_until": None, "last_error": error[:2000]}
        if count_attempt:
            values["attempts"] = OutboxRow.attempts + 1
        await self.session.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(**values))

    async def release_leases(self, row_ids: Sequence[int]) -> None:
        """Give back leases of deliveries this process will not finish."""
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(row_ids), OutboxRow.status == "pending")
            .values(lease_until=None)
        )

    async def cancel_lane(self, lane: str, reason: str) -> None:
        """Drop the lane's pending deliveries (their conversation failed to open)."""
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.lane == lane, OutboxRow.status == "pending")
            .values(status="cancelled", lease_until=None, last_error=reason)
        )

    async def prune_outbox(self, before: datetime) -> int:
        """Forget delivered and cancelled deliveries older than `before` (dead ones stay)."""
        result = await self.session.execute(
            delete(OutboxRow).where(
                OutboxRow.status.in_(("delivered", "cancelled")), OutboxRow.created_at < before
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def list_outbox(
        self, *, status: str | None, conversation_id: str | None, after_id: int, limit: int
    ) -> list[OutboxRow]:
        """Deliveries for the operator, oldest first."""
        query = select(OutboxRow).where(OutboxRow.id > after_id)
        if status is not None:
            query = query.where(OutboxRow.status == status)
        if conversation_id is not None:
            query = query.where(OutboxRow.conversation_id == conversation_id)
        rows = await self.session.execute(query.order_by(OutboxRow.id).limit(limit))
        return list(rows.scalars())

    async def get_outbox(self, row_id: int) -> OutboxRow | None:
        """One delivery."""
        return await self.session.get(OutboxRow, row_id)

    async def requeue(self, row_id: int, now: datetime) -> bool:
        """Put a dead delivery back in line, with a fresh attempt count."""
        result = await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row_id, OutboxRow.status == "dead")
            .values(status="pending", attempts=0, next_attempt_at=now, lease_until=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def pending_count(self) -> int:
        """How many deliveries are waiting."""
        query = select(func.count()).select_from(OutboxRow).where(OutboxRow.status == "pending")
        return int((await self.session.execute(query)).scalar_one())

    # -- subscriptions and signed integrations -----------------------------------------

    async def add_subscription(self, row: SubscriptionRow) -> None:
        """Register a subscriber."""
        self.session.add(row)
        await self.session.flush()

    async def subscriptions(self) -> list[SubscriptionRow]:
        """Every subscriber, oldest first."""
        query = select(SubscriptionRow).order_by(SubscriptionRow.created_at)
        return list((await self.session.execute(query)).scalars())

    async def get_subscription(self, subscription_id: str) -> SubscriptionRow | None:
        """One subscriber."""
        return await self.session.get(SubscriptionRow, subscription_id)

    async def delete_subscription(self, subscription_id: str) -> bool:
        """Remove a subscriber; its queued events are cancelled."""
        row = await self.session.get(SubscriptionRow, subscription_id)
        if row is None:
            return False
        await self.session.delete(row)
        await self.session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.kind == "subscription.event",
                OutboxRow.target == subscription_id,
                OutboxRow.status == "pending",
            )
            .values(status="cancelled", last_error="subscription deleted")
        )
        return True

    async def record_delivery(self, webhook_id: str, now: datetime) -> bool:
        """Remember an applied inbound webhook id; False when it was applied before."""
        if await self.session.get(InboundDeliveryRow, webhook_id) is not None:
            return False
        self.session.add(InboundDeliveryRow(webhook_id=webhook_id, received_at=now))
        await self.session.flush()
        return True

    async def prune_deliveries(self, before: datetime) -> int:
        """Forget inbound webhook ids older than the retention window."""
        result = await self.session.execute(
            delete(InboundDeliveryRow).where(InboundDeliveryRow.received_at < before)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    # -- platform events parked until their conversation is known ---------------------

    async def lock_platform_ref(self, channel: str, external_ref: str) -> None:
        """Make transactions that park an event for, or store, this platform id take turns.

        Each must see the other's commit, whichever commits first, or an event parked
        while the open stores the id would wait for nothing. PostgreSQL (read committed)
        needs a lock, held until commit; SQLite already runs one transaction at a time.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return
        digest = hashlib.sha256(f"{channel}\0{external_ref}".encode()).digest()
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :key)"),
            {"space": _PARKED_LOCK_SPACE, "key": int.from_bytes(digest[:4], "big", signed=True)},
        )

    async def park_event(self, row: ParkedEventRow) -> bool:
        """Keep an early event; False when a copy of it (same channel and id) already waits."""
        dialect = self.session.get_bind().dialect.name
        insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
        values = {
            "channel": row.channel,
            "external_ref": row.external_ref,
            "event_id": row.event_id,
            "event": row.event,
            "received_at": row.received_at,
        }
        result = await self.session.execute(
            insert_fn(ParkedEventRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["channel", "event_id"])
        )
        return int(result.rowcount) == 1  # type: ignore[attr-defined]

    async def has_parked_events(self, channel: str, external_ref: str) -> bool:
        """Whether any event waits for this platform id."""
        query = select(
            exists().where(
                ParkedEventRow.channel == channel, ParkedEventRow.external_ref == external_ref
            )
        )
        return bool((await self.session.execute(query)).scalar())

    async def parked_events(self, channel: str, external_ref: str) -> list[ParkedEventRow]:
        """The events waiting for this platform id, in the order they arrived."""
        query = (
            select(ParkedEventRow)
            .where(ParkedEventRow.channel == channel, ParkedEventRow.external_ref == external_ref)
            .order_by(ParkedEventRow.id)
        )
        return list((await self.session.execute(query)).scalars())

    async def drop_parked_event(self, row_id: int) -> None:
        """Forget a parked event (applied, or too old to apply)."""
        await self.session.execute(delete(ParkedEventRow).where(ParkedEventRow.id == row_id))

    async def prune_parked_events(self, before: datetime) -> int:
        """Drop parked events that arrived before `before`: their conversation never came."""
        result = await self.session.execute(
            delete(ParkedEventRow).where(ParkedEventRow.received_at < before)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def active_of_customer(self, customer_id: str) -> list[ConversationRow]:
        """The customer's active conversations on every main channel."""
        query = select(ConversationRow).where(
            ConversationRow.customer_id == customer_id,
            ConversationRow.status.in_(ACTIVE_STATUSES),
        )
        return list((await self.session.execute(query)).scalars())

    # -- adapter state ---------------------------------------------------------------

    async def put_state(self, adapter: str, key: str, value: str, now: datetime) -> None:
        """Keep a value for an adapter (last write wins)."""
        row = await self.session.get(AdapterStateRow, (adapter, key))
        if row is None:
            self.session.add(AdapterStateRow(adapter=adapter, key=key, value=value, updated_at=now))
        else:
            row.value, row.updated_at = value, now
        await self.session.flush()

    async def get_state(self, adapter: str, key: str) -> str | None:
        """A value an adapter kept, if any."""
        row = await self.session.get(AdapterStateRow, (adapter, key))
        return row.value if row is not None else None

    # -- secrets ---------------------------------------------------------------------

    async def secret(self, name: str, make: Callable[[], str], now: datetime) -> str:
        """The stored secret `name`, created once; replicas racing agree on one value."""
        dialect = self.session.get_bind().dialect.name
        insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
        await self.session.execute(
            insert_fn(SecretRow)
            .values(name=name, value=make(), created_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        row = await self.session.get(SecretRow, name, populate_existing=True)
        assert row is not None
        return row.value


def new_token(prefix: str = "") -> str:
    """A random URL-safe id."""
    return prefix + secrets.token_urlsafe(18)


class Store:
    """Opens transactions on the configured database."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A transaction that commits on success and rolls back on any error."""
        async with self._sessionmaker() as session, session.begin():
            yield Tx(session)
