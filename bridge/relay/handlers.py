"""The handler of every kind of job, registered in one place (`job_registry`).

Deliveries go to the agent side (the channel's platform adapter), to the bot (its
bot-side adapter), or to a subscriber (a signed POST). Work the bridge does for itself
(routing timers, parked platform events) is handed to the services that own it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from bridge.db import steps
from bridge.db.repo import Store
from bridge.db.units import single
from bridge.errors import PlatformRejected
from bridge.ports.agent_side import AgentSideAdapter, ConversationRef
from bridge.ports.bot_side import DEFAULT_BOT, BotSideAdapter
from bridge.ports.http import HttpClient
from bridge.relay import signing
from bridge.relay.delivery import DeliveryResult, claimed_ref
from bridge.relay.jobs import (
    AcceptTimeout,
    BotEvent,
    CloseConversation,
    EvaluateRouting,
    OpenConversation,
    PostMessage,
    ReplayInbound,
    SubscriberEvent,
)
from bridge.relay.jobs.moves import FallbackTimer, WithdrawConversation
from bridge.relay.registry import JobRegistry

# Work about one conversation, by its id.
ConversationWork = Callable[[str], Awaitable[None]]


class Deliveries:
    """Delivers the jobs that reach a receiver: the agent side, the bot, a subscriber."""

    def __init__(
        self,
        store: Store,
        adapters: Mapping[str, AgentSideAdapter],
        bots: Mapping[str, BotSideAdapter],
        http: HttpClient,
    ) -> None:
        self._store = store
        self._adapters = adapters
        self._bots = bots
        self._http = http

    async def open_conversation(self, job: OpenConversation, key: str) -> DeliveryResult:
        """Open the chat on the platform; its id and join link are kept."""
        opened = await self._adapter(job.channel).open_conversation(job.snapshot())
        return DeliveryResult(external_ref=opened.external_ref, join_url=opened.join_url)

    async def post_message(self, job: PostMessage, key: str) -> None:
        """Post a message to the opened chat."""
        adapter = self._adapter(job.channel)
        await adapter.post_message(await self._ref(job.conversation_id), job.message.outbound())

    async def close_conversation(self, job: CloseConversation, key: str) -> None:
        """Close the chat on the platform."""
        adapter = self._adapter(job.channel)
        ref = await self._ref(job.conversation_id)
        await adapter.close_conversation(ref, job.reason or "closed")

    async def withdraw_conversation(self, job: WithdrawConversation, key: str) -> None:
        """Close the chat on the channel it moved away from, by that channel's platform id."""
        ref = ConversationRef(job.conversation_id, job.channel, job.external_ref)
        await self._adapter(job.channel).close_conversation(ref, job.reason)

    async def bot_event(self, job: BotEvent, key: str) -> None:
        """Hand the event to the bot's adapter (the plain webhook bot when it names none)."""
        bot = self._bots.get(job.bot or DEFAULT_BOT) or self._bots[DEFAULT_BOT]
        await bot.deliver_event(job.callback_url, key, job.body)

    async def subscriber_event(self, job: SubscriberEvent, key: str) -> None:
        """POST the event to the subscriber's URL, signed with its own secret."""
        async with self._store.transaction() as tx:
            subscription = await tx.get_subscription(job.subscription_id)
        if subscription is None:
            raise PlatformRejected(f"subscription {job.subscription_id} was deleted")
        secret = signing.secret_key(subscription.secret)
        headers = signing.headers(secret, key, int(time.time()), job.body)
        await self._http.request("POST", subscription.url, data=job.body.encode(), headers=headers)

    def _adapter(self, channel: str) -> AgentSideAdapter:
        adapter = self._adapters.get(channel)
        if adapter is None:
            raise PlatformRejected(f"channel {channel!r} is no longer configured")
        return adapter

    async def _ref(self, conversation_id: str) -> ConversationRef:
        # The worker's claim read it with the row (see relay/delivery.py); else one
        # statement, run with whatever else waits for the database.
        known = claimed_ref.get()
        if known is not None and known.id == conversation_id:
            return known
        found = await self._store.run(single(steps.platform_ref(conversation_id)))
        if found is None:
            raise PlatformRejected(f"conversation {conversation_id} no longer exists")
        return ConversationRef(found["id"], found["channel"], found["external_ref"])


def job_registry(
    deliveries: Deliveries,
    *,
    evaluate_routing: ConversationWork,
    replay_inbound: ConversationWork,
    move_on: Callable[[str, str], Awaitable[None]],
    accept_timeout: Callable[[AcceptTimeout], Awaitable[None]],
) -> JobRegistry:
    """Every job type with its handler: the one place a kind of job is wired."""
    registry = JobRegistry()
    registry.register(OpenConversation, deliveries.open_conversation)
    registry.register(PostMessage, deliveries.post_message)
    registry.register(CloseConversation, deliveries.close_conversation)
    registry.register(WithdrawConversation, deliveries.withdraw_conversation)
    registry.register(BotEvent, deliveries.bot_event)
    registry.register(SubscriberEvent, deliveries.subscriber_event)
    registry.register(EvaluateRouting, lambda job, _key: evaluate_routing(job.conversation_id))
    registry.register(ReplayInbound, lambda job, _key: replay_inbound(job.conversation_id))
    registry.register(FallbackTimer, lambda job, _key: move_on(job.conversation_id, job.channel))
    registry.register(AcceptTimeout, lambda job, _key: accept_timeout(job))
    registry.require_every_job()
    return registry
