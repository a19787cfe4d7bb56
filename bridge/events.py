"""Lifecycle events: queued for the bot (when it concerns it) and for its subscribers, and
kept in the conversation's timeline when the console shows them (bridge/timeline.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from bridge.db.repo import Tx
from bridge.db.tables import ConversationRow, OutboxRow, SubscriptionRow
from bridge.relay.jobs import BotEvent, Job, SubscriberEvent, event_body
from bridge.timeline import timeline_entry

# What subscribers can ask for (POST /v1/subscriptions), besides "*".
EVENT_TYPES = (
    "handoff.requested",
    "handoff.routed",
    "handoff.failed",
    "handoff.waiting",
    "handoff.cancelled",
    "queue.updated",
    "agent.joined",
    "agent.message",
    "agent.left",
    "customer.message",
    "conversation.metadata_updated",
    "conversation.closed",
    "conversation.released",
    "conversation.transferred",
)


class About(Protocol):
    """What an event needs of its conversation (a stored row, or the few columns read)."""

    @property
    def id(self) -> str: ...
    @property
    def bot_conversation_id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def callback_url(self) -> str: ...
    @property
    def bot_platform(self) -> str: ...
    @property
    def organization_id(self) -> str | None: ...
    @property
    def customer(self) -> dict[str, Any]: ...


def event_rows(
    row: About,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    *,
    to_bot: bool,
    subscriptions: Sequence[SubscriptionRow],
) -> list[OutboxRow]:
    """The deliveries announcing `event_type`: to the bot if `to_bot`, and to subscribers."""
    jobs = event_jobs(row, event_type, data, now, to_bot=to_bot, subscriptions=subscriptions)
    return [job.to_row(now) for job in jobs]


def event_jobs(
    row: About,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    *,
    to_bot: bool,
    subscriptions: Sequence[SubscriptionRow],
) -> list[Job]:
    """The jobs announcing `event_type`: to the bot if `to_bot`, and to subscribers."""
    body = {
        "conversation_id": row.id,
        "bot_conversation_id": row.bot_conversation_id,
        "channel": row.channel,
        **data,
    }
    jobs: list[Job] = []
    if to_bot:
        jobs.append(
            BotEvent.about(row.id, row.callback_url, event_type, body, now, row.bot_platform)
        )
    subscribers = [
        sub
        for sub in subscriptions
        if ("*" in sub.events or event_type in sub.events)
        # An organization's subscriber hears only of its own channels' conversations.
        and sub.organization_id in (None, row.organization_id)
    ]
    if subscribers:
        text = event_body(event_type, {**body, "customer": row.customer}, now)
        jobs.extend(SubscriberEvent(sub.id, row.id, event_type, text) for sub in subscribers)
    return jobs


async def announce(
    tx: Tx,
    row: ConversationRow,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    *,
    to_bot: bool,
    subscriptions: Sequence[SubscriptionRow] | None = None,
) -> None:
    """Queue `event_type` in this transaction, for the bot if `to_bot`, and for subscribers.

    A caller announcing to many conversations at once passes `subscriptions`, read once.
    """
    moment = timeline_entry(row, event_type, data, now)
    if moment is not None:
        # Kept for the console's transcript ("Ana joined", who closed it and why).
        await tx.add_timeline(moment)
    if subscriptions is None:
        subscriptions = await tx.subscriptions()
    rows = event_rows(row, event_type, data, now, to_bot=to_bot, subscriptions=subscriptions)
    if rows:
        await tx.enqueue(rows)
