"""A fake Reference Desk: the platform adapters/reference/ speaks to, on port 0.

It is the example fake of docs/adapters.md: a `FakePlatform` (tests/kit) that keeps the
platform's state (conversations, their messages, an event log), checks the API key on
every call, answers `script` statuses after that check, and keeps one message per
`Idempotency-Key`. Tests make agents act on it (`agent_writes`, `agent_joins`,
`agent_closes`), which logs an event, the same one its webhook carries and
`GET /events` lists. Its bots take the bridge's events at `/bot-events` (`events_url`).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tests.kit.fake_platform import FakePlatform

API_KEY = "ref-api-key-5b1e"
WEBHOOK_TOKEN = "ref-webhook-token-c7d2"
TOKEN_HEADER = "X-Reference-Token"
BOT_EVENTS_PATH = "/bot-events"


@dataclass
class Conversation:
    """A conversation as the fake keeps it."""

    id: str
    external_id: str
    customer: dict[str, Any]
    metadata: dict[str, Any]
    # Each: {id, text, role, author, key}; history first, then posted messages.
    messages: list[dict[str, Any]]
    closed_for: str | None = None


@dataclass
class FakeReference(FakePlatform):
    """Reference Desk's API as far as the adapter uses it."""

    api_key: str = API_KEY
    webhook_token: str = WEBHOOK_TOKEN
    online: bool = True
    conversations: dict[str, Conversation] = field(default_factory=dict)
    # Every event, in order: what webhooks carry and `GET /events` pages over.
    events: list[dict[str, Any]] = field(default_factory=list)
    # The bridge's events its bots accepted, a repeated id once.
    bot_events: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """The endpoints the adapter calls."""
        router.add_post("/conversations", self._open)
        router.add_post("/conversations/{id}/messages", self._message)
        router.add_post("/conversations/{id}/close", self._close)
        router.add_get("/agents/availability", self._availability)
        router.add_get("/events", self._events)
        router.add_post(BOT_EVENTS_PATH, self._bot_event)

    def middlewares(self) -> list[Middleware]:
        """The API key first, then the script, as the real platform would refuse."""
        return [self._authenticated]

    def report(self) -> str:
        """The platform's state, for a wait that timed out."""
        return f"conversations={list(self.conversations.values())} events={self.events}"

    # -- what tests read -------------------------------------------------------------------

    def texts(self) -> list[str]:
        """Every message text the platform keeps, history included, in order."""
        return [m["text"] for c in self.conversations.values() for m in c.messages]

    def keys(self) -> list[str | None]:
        """The Idempotency-Key kept with each message (None for history), as `texts`."""
        return [m["key"] for c in self.conversations.values() for m in c.messages]

    def bot_arrivals(self) -> Counter[str]:
        """Bot event deliveries with the right key, by event id (scripted refusals too)."""
        wanted = f"Bearer {self.api_key}"
        return Counter(
            call.body["id"]
            for call in self.calls
            if call.path == BOT_EVENTS_PATH and call.headers.get("Authorization") == wanted
        )

    # -- what agents do on the platform ----------------------------------------------------

    def agent_writes(
        self, conversation_id: str, text: str, *, event_id: str | None = None
    ) -> dict[str, Any]:
        """An agent's reply: kept, logged as `message.created`, returned as its webhook."""
        message = {"id": f"msg-{next(self._ids)}", "text": text, "role": "agent", "key": None}
        self.conversations[conversation_id].messages.append(message)
        author = {"type": "agent", "id": "ag-1", "name": "Ana"}
        return self._log(
            "message.created",
            conversation_id,
            event_id,
            message={"id": message["id"], "text": text, "author": author},
        )

    def agent_joins(self, conversation_id: str) -> dict[str, Any]:
        """An agent took the conversation."""
        return self._log("agent.joined", conversation_id, agent={"id": "ag-1", "name": "Ana"})

    def agent_closes(self, conversation_id: str) -> dict[str, Any]:
        """An agent closed the conversation."""
        self.conversations[conversation_id].closed_for = "closed by the agent"
        return self._log("conversation.closed", conversation_id)

    def echo(self, conversation_id: str, text: str) -> dict[str, Any]:
        """The `message.created` webhook of a message the bridge posted (author type api)."""
        kept = [m for m in self.conversations[conversation_id].messages if m["text"] == text]
        message_id = kept[-1]["id"] if kept else f"msg-{next(self._ids)}"
        author = {"type": "api", "id": "api", "name": "handoff bridge"}
        return self._log(
            "message.created",
            conversation_id,
            message={"id": message_id, "text": text, "author": author},
        )

    def webhook_headers(self, token: str | None = None) -> dict[str, str]:
        """The headers the platform's webhooks carry (with another token when given)."""
        return {TOKEN_HEADER: self.webhook_token if token is None else token}

    def _log(
        self, kind: str, conversation_id: str, event_id: str | None = None, **data: Any
    ) -> dict[str, Any]:
        conversation = self.conversations[conversation_id]
        event = {
            "id": event_id or f"evt-{next(self._ids)}",
            "type": kind,
            "conversation_id": conversation.id,
            "external_id": conversation.external_id,
            **data,
        }
        self.events.append(event)
        return event

    # -- the API ---------------------------------------------------------------------------

    @web.middleware
    async def _authenticated(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": "invalid api key"}, status=401)
        if (status := self.scripted()) is not None:
            return web.json_response({"error": "scripted"}, status=status)
        return await handler(request)

    async def _open(self, request: web.Request) -> web.Response:
        body = await request.json()
        for conversation in self.conversations.values():
            if conversation.external_id == body["external_id"]:
                return web.json_response(self._opened(conversation))
        conversation = Conversation(
            id=f"conv-{next(self._ids)}",
            external_id=body["external_id"],
            customer=body["customer"],
            metadata=body["metadata"],
            messages=[{**m, "id": f"msg-{next(self._ids)}", "key": None} for m in body["messages"]],
        )
        self.conversations[conversation.id] = conversation
        return web.json_response(self._opened(conversation), status=201)

    def _opened(self, conversation: Conversation) -> dict[str, Any]:
        return {"id": conversation.id, "agent_url": self.url_for(f"/desk/{conversation.id}")}

    async def _message(self, request: web.Request) -> web.Response:
        conversation = self.conversations.get(request.match_info["id"])
        if conversation is None:
            return web.json_response({"error": "no such conversation"}, status=404)
        key = request.headers.get("Idempotency-Key")
        for message in conversation.messages:
            if key is not None and message["key"] == key:
                return web.json_response({"id": message["id"]})
        body = await request.json()
        message = {**body, "id": f"msg-{next(self._ids)}", "key": key}
        conversation.messages.append(message)
        return web.json_response({"id": message["id"]}, status=201)

    async def _close(self, request: web.Request) -> web.Response:
        conversation = self.conversations.get(request.match_info["id"])
        if conversation is None:
            return web.json_response({"error": "no such conversation"}, status=404)
        conversation.closed_for = (await request.json())["reason"]
        return web.json_response({"status": "closed"})

    async def _availability(self, request: web.Request) -> web.Response:
        return web.json_response({"online": self.online})

    async def _bot_event(self, request: web.Request) -> web.Response:
        event = await request.json()
        if all(seen["id"] != event["id"] for seen in self.bot_events):
            self.bot_events.append(event)
        return web.Response(status=204)

    async def _events(self, request: web.Request) -> web.Response:
        after = request.query.get("after")
        limit = int(request.query.get("limit", "100"))
        start = next((i + 1 for i, e in enumerate(self.events) if e["id"] == after), 0)
        page = self.events[start : start + limit]
        following = page[-1]["id"] if page else after
        return web.json_response({"events": page, "next": following})
