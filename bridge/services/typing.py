"""`agent.typing`: the bot hears that an agent is typing, where the platform reports it.

Typing is a moment, not a record: a typing signal delivered a minute late (after a retry,
say, or after the reply it announced) would tell the customer something false. So unlike
every other event it does not go through the outbox: it is sent once, at once, with a
webhook-id of its own, and a failed delivery is dropped (logged at INFO), never retried;
nothing about it is stored. It is throttled per conversation: at most one every
`MIN_INTERVAL_SECONDS` from each replica, however often the platform reports typing,
and only while the conversation is under way.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from bridge.db.tables import ConversationRow
from bridge.domain.status import ACTIVE
from bridge.errors import PlatformError
from bridge.ports.bot_side import DEFAULT_BOT, BotSideAdapter
from bridge.relay.jobs import event_body

log = logging.getLogger(__name__)

TYPING = "agent.typing"
MIN_INTERVAL_SECONDS = 3.0
# Conversations remembered for the throttle; the oldest are forgotten past this.
_REMEMBERED = 10_000


class TypingRelay:
    """Sends throttled, fire-and-forget `agent.typing` events to the bot."""

    def __init__(
        self,
        bots: Mapping[str, BotSideAdapter],
        *,
        min_interval: float = MIN_INTERVAL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._bots = bots
        self._min_interval = min_interval
        self._monotonic = monotonic
        self._clock = clock
        self._last: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def typing(self, row: ConversationRow, agent_name: str | None) -> bool:
        """Tell the bot an agent is typing, unless it was told within the interval.

        Returns whether an event was sent off (the send itself runs in the background, so
        the platform's webhook is answered without waiting for the bot).
        """
        if row.status not in ACTIVE:
            return False
        now = self._monotonic()
        last = self._last.get(row.id)
        if last is not None and now - last < self._min_interval:
            return False
        self._last.pop(row.id, None)
        self._last[row.id] = now
        if len(self._last) > _REMEMBERED:
            del self._last[next(iter(self._last))]
        data = {
            "conversation_id": row.id,
            "bot_conversation_id": row.bot_conversation_id,
            "channel": row.channel,
            "agent": {"name": agent_name},
        }
        body = event_body(TYPING, data, self._clock())
        bot = self._bots.get(row.bot_platform) or self._bots.get(DEFAULT_BOT)
        if bot is None:
            return False
        task = asyncio.create_task(self._send(bot, row, body), name="agent-typing")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _send(self, bot: BotSideAdapter, row: ConversationRow, body: str) -> None:
        try:
            await bot.deliver_event(row.callback_url, f"msg_{uuid.uuid4().hex}", body)
        except (PlatformError, OSError) as exc:
            log.info(
                "typing.dropped",
                extra={"conversation": row.id, "error": type(exc).__name__},
            )

    async def stop(self) -> None:
        """Let sends under way finish (they are short: one attempt each)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
