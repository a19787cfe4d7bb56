"""Real fakes: in-process HTTP servers on port 0 that stand in for a bot and a platform."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.kit.fake_platform import FakePlatform

# A fixed Standard Webhooks secret for tests (32 zero-ish bytes, base64).
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class ReceivedEvent:
    """One event a fake bot accepted, after its signature was verified."""

    webhook_id: str
    type: str
    data: dict[str, Any]
    body: dict[str, Any]


@dataclass
class FakeBot(FakePlatform):
    """The bot's callback endpoint. Verifies every signature with the standardwebhooks package.

    `script` holds statuses to answer before accepting (e.g. [500, 500] then 204);
    accepted events are kept once per webhook-id, as a real receiver would.
    """

    secret: str = WEBHOOK_SECRET
    events: list[ReceivedEvent] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    bad_signatures: int = 0
    duplicates: int = 0
    # When set, the script answers only events of this type (others are accepted).
    script_type: str | None = None
    # Sent as Retry-After with every scripted 429.
    retry_after: str | None = None
    # Event types kept apart from `events` (queue updates come and go with every change;
    # tests about the queue clear this set).
    ignored: set[str] = field(default_factory=lambda: {"queue.updated"})
    other_events: list[ReceivedEvent] = field(default_factory=list)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """One endpoint: the callback URL the bot hands the bridge."""
        router.add_post("/callback", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.bad_signatures += 1
            return web.Response(status=401)
        webhook_id = request.headers["webhook-id"]
        self.attempts[webhook_id] += 1
        scripted = self.script_type is None or json.loads(body)["type"] == self.script_type
        if scripted and (status := self.scripted()) is not None:
            headers = (
                {"Retry-After": self.retry_after} if status == 429 and self.retry_after else {}
            )
            return web.Response(status=status, headers=headers)
        if any(e.webhook_id == webhook_id for e in (*self.events, *self.other_events)):
            self.duplicates += 1
        else:
            payload = json.loads(body)
            event = ReceivedEvent(webhook_id, payload["type"], payload["data"], payload)
            kept = self.other_events if event.type in self.ignored else self.events
            kept.append(event)
        return web.Response(status=204)

    @property
    def url(self) -> str:
        """The callback URL to hand the bridge."""
        return self.url_for("/callback")

    def of_type(self, event_type: str) -> list[ReceivedEvent]:
        return [event for event in self.events if event.type == event_type]

    def report(self) -> str:
        """The events accepted, for a wait that timed out."""
        return f"received {[(e.type, e.webhook_id) for e in self.events]}"


def handoff_body(
    callback_url: str,
    *,
    conversation_id: str = "bot-conv-1",
    customer_id: str = "cust-1",
    region: str | None = "es",
    **extra: Any,
) -> dict[str, Any]:
    """A valid transfer-to-agent request, shaped as a bot would send it."""
    body: dict[str, Any] = {
        "bot": {"platform": "webhook", "conversation_id": conversation_id},
        "customer": {
            "id": customer_id,
            "email": "john@example.com",
            "firstname": "John",
            "lastname": "Doe",
            "labels": ["foo", "bar"],
        },
        "metadata": {"plan": "vip", "order": 42},
        "history": [
            {"role": "customer", "text": "Where is my order?", "sent_at": "2026-11-21T10:00:00Z"},
            {"role": "bot", "text": "Let me get a person.", "sent_at": "2026-11-21T10:00:02Z"},
        ],
        "callback_url": callback_url,
    }
    if region is not None:
        body["region"] = region
    body.update(extra)
    return body
