"""The default bot side: events POSTed to the bot's callback URL, signed per Standard Webhooks."""

from __future__ import annotations

import time
from typing import ClassVar

from bridge.ports.bot_side import DEFAULT_BOT, BotSideAdapter
from bridge.relay import signing


class StandardWebhooksBot(BotSideAdapter):
    """Any bot that can take a webhook: `{type, timestamp, data}` with webhook-* headers."""

    platform: ClassVar[str] = DEFAULT_BOT

    async def deliver_event(self, target: str, event_id: str, body: str) -> None:
        """POST the event; the same `webhook-id` on every attempt lets the bot drop repeats."""
        key = signing.secret_key(self.context.signing_secret)
        headers = signing.headers(key, event_id, int(time.time()), body)
        # The target is a caller's URL: it goes through the outbound URL policy.
        await self.context.callback_http.request(
            "POST", target, data=body.encode(), headers=headers
        )
