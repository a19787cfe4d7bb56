"""A fake Tovie DialogStudio: its Operator API webhook, and a client for the bridge's apiUrl.

Tovie calls the bridge's Operator API (`{apiUrl}/setWebhook`, `/selectDestination`, ...)
and receives agent events at the URL it registered, documented as
`/chatadapter/chatapi/webhook/operatorapi/{apiKey}`. `FakeTovie` is that receiver: a
fake platform (tests/kit) that records each event, answers scripted failures first, and
counts repeats of an event `id`. A repeat is kept too: the Operator API gives every event
an `id` but documents no deduplication on it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web

from tests.kit.fake_platform import FakePlatform

WEBHOOK_PATH = "/chatadapter/chatapi/webhook/operatorapi/{api_key}"


@dataclass
class FakeTovie(FakePlatform):
    """Tovie's webhook for Operator API events; `script` answers before accepting."""

    api_key: str = "operatorapi-channel-7"
    events: list[dict[str, Any]] = field(default_factory=list)
    # Attempts per event id, retries included.
    attempts: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    wrong_key: int = 0

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """One endpoint: the webhook Tovie registers for Operator API events."""
        router.add_post(WEBHOOK_PATH.format(api_key="{api_key}"), self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["api_key"] != self.api_key:
            self.wrong_key += 1
            return web.json_response({"error": "unknown channel"}, status=404)
        event = await request.json()
        self.attempts[event["id"]] += 1
        if (status := self.scripted()) is not None:
            return web.Response(status=status)
        if any(seen["id"] == event["id"] for seen in self.events):
            self.duplicates += 1
        self.events.append(event)
        return web.json_response({"status": "ok"})

    @property
    def webhook_url(self) -> str:
        """The URL Tovie hands the bridge with setWebhook."""
        return self.url_for(WEBHOOK_PATH.format(api_key=self.api_key))

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == event_type]

    def report(self) -> str:
        """The events accepted, for a wait that timed out."""
        return f"Tovie received {self.events}"


@dataclass
class OperatorApiClient:
    """Tovie's calls to the bridge's apiUrl (`https://<bridge>/bots/<name>/<token>`)."""

    http: ClientSession
    api_url: str

    async def call(self, method: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """POST `{apiUrl}/<method>` (GET for getDestinations), as Tovie does."""
        verb = "GET" if method == "getDestinations" else "POST"
        async with self.http.request(verb, f"{self.api_url}/{method}", json=body) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None
