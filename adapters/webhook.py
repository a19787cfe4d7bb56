"""The default bot side: events POSTed to the bot's callback URL, signed per Standard Webhooks."""

from __future__ import annotations

import time
from typing import ClassVar

from adapters.kit import BotPlatform
from bridge.ports.bot_side import DEFAULT_BOT
from bridge.ports.context import NoOptions
from bridge.ports.http import HttpClient
from bridge.relay import signing


async def deliver_signed(
    http: HttpClient, secret: str, target: str, event_id: str, body: str
) -> None:
    """POST the event with webhook-* headers; the same `webhook-id` on every attempt."""
    key = signing.secret_key(secret)
    headers = signing.headers(key, event_id, int(time.time()), body)
    await http.request("POST", target, data=body.encode(), headers=headers)


class StandardWebhooksBot(BotPlatform[NoOptions]):
    """Any bot that can take a webhook: `{type, timestamp, data}` with webhook-* headers."""

    platform: ClassVar[str] = DEFAULT_BOT

    async def deliver_event(self, target: str, event_id: str, body: str) -> None:
        """POST the event; the same `webhook-id` on every attempt lets the bot drop repeats."""
        # The target is a caller's URL: it goes through the outbound URL policy.
        await deliver_signed(self.callbacks, self.context.signing_secret, target, event_id, body)
