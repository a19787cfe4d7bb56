"""Turns an outbox row into the call that delivers it: a signed bot event or an adapter call."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from bridge.db.repo import Store
from bridge.db.tables import OutboxRow
from bridge.errors import PlatformRejected
from bridge.ports.agent_side import (
    AgentSideAdapter,
    ConversationRef,
    ConversationSnapshot,
    OutboundMessage,
)
from bridge.ports.bot_side import DEFAULT_BOT, BotSideAdapter
from bridge.ports.http import HttpClient
from bridge.relay import outbox, signing
from bridge.relay.worker import DeliveryResult


def message_from_payload(data: Mapping[str, Any]) -> OutboundMessage:
    """An outbound message from its stored JSON form."""
    return OutboundMessage(
        seq=int(data["seq"]),
        role=str(data["role"]),
        text=str(data["text"]),
        author=data.get("author"),
        sent_at=datetime.fromisoformat(data["sent_at"]),
    )


class Dispatcher:
    """Delivers each kind of outbox row."""

    def __init__(
        self,
        store: Store,
        adapters: Mapping[str, AgentSideAdapter],
        bots: Mapping[str, BotSideAdapter],
        http: HttpClient,
        internal: Mapping[str, Callable[[OutboxRow], Awaitable[None]]] | None = None,
    ) -> None:
        self._store = store
        self._adapters = adapters
        self._bots = bots
        self._http = http
        # Work the bridge does for itself on a schedule (router timers), by kind.
        self._internal = dict(internal or {})

    async def deliver(self, row: OutboxRow) -> DeliveryResult:
        """Deliver one row, raising a PlatformError on failure."""
        if row.kind == outbox.BOT_EVENT:
            bot = self._bots.get(row.payload.get("bot") or DEFAULT_BOT) or self._bots[DEFAULT_BOT]
            await bot.deliver_event(row.target, row.idempotency_key, row.payload["body"])
            return DeliveryResult()
        handler = self._internal.get(row.kind)
        if handler is not None:
            await handler(row)
            return DeliveryResult()
        if row.kind == outbox.SUBSCRIPTION_EVENT:
            await self._to_subscriber(row)
            return DeliveryResult()
        adapter = self._adapters.get(row.target)
        if adapter is None:
            raise PlatformRejected(f"channel {row.target!r} is no longer configured")
        if row.kind == outbox.AGENT_OPEN:
            snapshot = self._snapshot(row.payload)
            opened = await adapter.open_conversation(snapshot)
            return DeliveryResult(external_ref=opened.external_ref, join_url=opened.join_url)
        ref = await self._ref(row)
        if row.kind == outbox.AGENT_MESSAGE:
            await adapter.post_message(ref, message_from_payload(row.payload["message"]))
        elif row.kind == outbox.AGENT_CLOSE:
            await adapter.close_conversation(ref, str(row.payload.get("reason") or "closed"))
        else:
            raise PlatformRejected(f"unknown delivery kind {row.kind!r}")
        return DeliveryResult()

    async def _to_subscriber(self, row: OutboxRow) -> None:
        async with self._store.transaction() as tx:
            subscription = await tx.get_subscription(row.target)
        if subscription is None:
            raise PlatformRejected(f"subscription {row.target} was deleted")
        body = row.payload["body"]
        key = signing.secret_key(subscription.secret)
        headers = signing.headers(key, row.idempotency_key, int(time.time()), body)
        await self._http.request("POST", subscription.url, data=body.encode(), headers=headers)

    async def _ref(self, row: OutboxRow) -> ConversationRef:
        assert row.conversation_id is not None
        async with self._store.transaction() as tx:
            conversation = await tx.get_conversation(row.conversation_id)
        if conversation is None:
            raise PlatformRejected(f"conversation {row.conversation_id} no longer exists")
        return ConversationRef(conversation.id, conversation.channel, conversation.external_ref)

    @staticmethod
    def _snapshot(payload: Mapping[str, Any]) -> ConversationSnapshot:
        conversation = payload["conversation"]
        return ConversationSnapshot(
            id=conversation["id"],
            channel=conversation["channel"],
            main_channel=conversation["main_channel"],
            region=conversation.get("region"),
            customer=conversation["customer"],
            metadata=conversation["metadata"],
            settings=conversation["settings"],
            history=tuple(message_from_payload(m) for m in payload.get("history", ())),
        )
