"""A fake Tovie DialogStudio: its Operator API webhook, and a client for the bridge's apiUrl.

Tovie calls the bridge's Operator API (`{apiUrl}/setWebhook`, `/selectDestination`, ...)
and receives agent events at the URL it registered, documented as
`/chatadapter/chatapi/webhook/operatorapi/{apiKey}`. `FakeTovie` is that receiver: a
real aiohttp app on port 0 that records each event, answers scripted failures first, and
counts repeats of an event `id`. A repeat is kept too: the Operator API gives every event
an `id` but documents no deduplication on it.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

WEBHOOK_PATH = "/chatadapter/chatapi/webhook/operatorapi/{api_key}"


@dataclass
class FakeTovie:
    """Tovie's webhook for Operator API events."""

    api_key: str = "operatorapi-channel-7"
    # Statuses to answer before accepting (e.g. [500] then 200).
    script: deque[int] = field(default_factory=deque)
    events: list[dict[str, Any]] = field(default_factory=list)
    # Attempts per event id, retries included.
    attempts: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    wrong_key: int = 0
    server: TestServer | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["api_key"] != self.api_key:
            self.wrong_key += 1
            return web.json_response({"error": "unknown channel"}, status=404)
        event = await request.json()
        self.attempts[event["id"]] += 1
        if self.script:
            return web.Response(status=self.script.popleft())
        if any(seen["id"] == event["id"] for seen in self.events):
            self.duplicates += 1
        self.events.append(event)
        self._changed.set()
        return web.json_response({"status": "ok"})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post(WEBHOOK_PATH.format(api_key="{api_key}"), self.handle)
        self.server = TestServer(app, port=0)
        await self.server.start_server()
        return self.webhook_url

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    @property
    def webhook_url(self) -> str:
        """The URL Tovie hands the bridge with setWebhook."""
        assert self.server is not None
        return str(self.server.make_url(WEBHOOK_PATH.format(api_key=self.api_key)))

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == event_type]

    async def wait_for(self, predicate: Callable[[FakeTovie], bool], within: float = 15.0) -> None:
        """Wait until `predicate(self)` holds; fail with what arrived if it never does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate(self):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out; Tovie received {self.events}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))
            except TimeoutError:
                pass


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
