"""Messages of a handed-off chat: the customer's relayed to the agent side, the agent's to the bot.

A message is stored once per sender's id (a unique index), so a retried send answers with
the message stored the first time.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bridge.attachments import Attachment, AttachmentCheck, stored
from bridge.db import steps
from bridge.db.repo import Store
from bridge.db.tables import MessageRow, SubscriptionRow
from bridge.db.units import Step, Unit
from bridge.domain.status import Event, Status, transition
from bridge.errors import ConversationNotFound, InvalidTransition
from bridge.events import event_jobs
from bridge.models import AgentMessageRequest, CustomerMessageRequest, HistoryMessage
from bridge.ports.agent_side import AgentSideAdapter
from bridge.relay.jobs import Message, PostMessage
from bridge.views import message_view


def _aware(value: datetime) -> datetime:
    """Times without an offset are taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# The step between undated history messages: the smallest the store keeps.
_TICK = timedelta(microseconds=1)


def history_values(
    conversation_id: str, history: Sequence[HistoryMessage], now: datetime
) -> list[dict[str, Any]]:
    """The column values of a handed-over transcript's messages.

    A message without `sent_at` is dated at the receipt (`now`), or a tick after the
    latest time before it when that is not earlier, so undated messages keep the order
    given, each strictly later than every message before it.
    """
    rows: list[dict[str, Any]] = []
    latest: datetime | None = None
    for m in history:
        if m.sent_at is not None:
            sent_at = _aware(m.sent_at)
        else:
            sent_at = now if latest is None or latest < now else latest + _TICK
        latest = sent_at if latest is None else max(latest, sent_at)
        rows.append(
            {
                "conversation_id": conversation_id,
                "role": m.role,
                "text": m.text,
                "author": m.author,
                "external_id": None,
                "sent_at": sent_at,
                "created_at": now,
                "attachments": stored(m.attachments),
            }
        )
    return rows


class _Repeated(Exception):
    """A message id stored before: its transaction rolls back and the stored one answers."""

    def __init__(self, message: MessageRow) -> None:
        super().__init__(message.seq)
        self.message = message


class Messages:
    """Stores a side's message and queues it for the other side, in one transaction."""

    def __init__(
        self,
        store: Store,
        adapters: Mapping[str, AgentSideAdapter],
        on_commit: Callable[[], None],
        clock: Callable[[], datetime],
        attachments: AttachmentCheck,
    ) -> None:
        self._store = store
        self._adapters = adapters
        self._on_commit = on_commit
        self._clock = clock
        self._attachments = attachments

    async def customer_message(
        self, conversation_id: str, request: CustomerMessageRequest
    ) -> tuple[MessageRow, bool]:
        """Store a customer message and relay it to the agent side; repeats are stored once."""
        return await self._add(
            conversation_id,
            role="customer",
            text=request.text,
            attachments=request.attachments,
            author=None,
            external_id=request.id,
            sent_at=request.sent_at,
        )

    async def agent_message(
        self,
        conversation_id: str,
        request: AgentMessageRequest,
        author: str | None,
        *,
        by_assignee: bool = False,
    ) -> tuple[MessageRow, bool]:
        """Store an agent's reply and relay it to the bot.

        `by_assignee`: the author is the assigned agent's name, read with the conversation
        in the same transaction (the console knows the conversation, not the agent).
        """
        return await self._add(
            conversation_id,
            role="agent",
            text=request.text,
            attachments=request.attachments,
            author=author,
            external_id=request.client_id,
            sent_at=None,
            by_assignee=by_assignee,
        )

    async def _add(
        self,
        conversation_id: str,
        *,
        role: Literal["customer", "agent"],
        text: str,
        attachments: Sequence[Attachment],
        author: str | None,
        external_id: str | None,
        sent_at: datetime | None,
        by_assignee: bool = False,
    ) -> tuple[MessageRow, bool]:
        # Before anything is stored: a refused file is a 422 naming it, and nothing changes.
        await self._attachments.check(attachments)
        now = self._clock()
        # Only read, and written by the unit's own statement: made without the ORM's
        # attribute events (see steps.orm_rows).
        message = steps.orm_row(
            MessageRow,
            conversation_id=conversation_id,
            role=role,
            text=text,
            author=author,
            external_id=external_id,
            sent_at=_aware(sent_at) if sent_at else now,
            created_at=now,
            attachments=stored(attachments),
        )
        unit = self._accept(message, now, by_assignee)
        try:
            message = await self._store.run(unit)
        except _Repeated as repeated:
            # Rolled back: a repeat changes nothing, not even the conversation's updated_at.
            return repeated.message, False
        self._on_commit()
        return message, True

    def _accept(self, message: MessageRow, now: datetime, by_assignee: bool) -> Unit[MessageRow]:
        """Store the message and queue its deliveries, as one unit of work.

        At most three statements when nobody subscribes (the common case): the
        conversation's lock, the message, its delivery.
        """
        conversation_id, role, external_id = (
            message.conversation_id,
            message.role,
            message.external_id,
        )
        event = Event.AGENT_MESSAGE if role == "agent" else Event.CUSTOMER_MESSAGE
        # The conversation row first: concurrent messages of one conversation (on any
        # replica) then take their seq and outbox ids, and commit, in one order, so each
        # lane is delivered in seq order.
        found = yield steps.lock_for_message(conversation_id, now)
        if found is None:
            raise ConversationNotFound(conversation_id)
        has_subscribers = found.pop("has_subscribers")
        row = steps.ConversationHead(**found)
        try:
            transition(conversation_id, Status(row.status), event)
        except InvalidTransition:
            # A retry of a message stored before the conversation moved on still answers
            # with that message.
            yield from self._repeated(conversation_id, role, external_id)
            raise
        if by_assignee:
            message.author = (row.agent or {}).get("name")
        seq = yield steps.append_message(message)
        if seq is None:
            yield from self._repeated(conversation_id, role, external_id)
            raise RuntimeError("a repeated message id with no stored message")
        message.seq = seq
        # No subscriber at all (the common case): nothing to read for them.
        subscribers: list[SubscriptionRow] = []
        if has_subscribers:
            subscribers = steps.subscription_rows((yield steps.subscriptions()))
        view = message_view(message)
        if role == "agent":
            jobs = event_jobs(
                row, "agent.message", {"message": view}, now, to_bot=True, subscriptions=subscribers
            )
        else:
            jobs = event_jobs(
                row,
                "customer.message",
                {"message": view},
                now,
                to_bot=False,
                subscriptions=subscribers,
            )
            if self._relays_messages(row.channel):
                jobs.append(PostMessage(row.id, row.channel, Message.of(message)))
        for job in jobs:
            yield steps.enqueue(job.values(now))
        # The other replicas are woken after the commit (see PostgresWake.outbox_changed).
        return message

    @staticmethod
    def _repeated(
        conversation_id: str, role: str, external_id: str | None
    ) -> Generator[Step, Any, None]:
        """Raise _Repeated with the message stored earlier under this sender's id, if any."""
        if external_id is None:
            return
        earlier = yield steps.find_message(conversation_id, role, external_id)
        if earlier is not None:
            raise _Repeated(MessageRow(**earlier))

    def _relays_messages(self, channel: str) -> bool:
        adapter = self._adapters.get(channel)
        return adapter is None or adapter.capabilities.messages
