"""A fake giosg: a real aiohttp app on port 0 that answers like giosg's HTTP API.

It checks what giosg checks (the org API token, each visitor's bearer token and that the
token belongs to the visitor in the path), keeps visitors, their variables and chats,
paginates listings with absolute `next` URLs, and records every message it receives.
With `webhook_url` set it also does what giosg does with every visitor message: it sends
it back to the app's webhook (the echo the adapter must drop). Webhook payloads are built
from the JSON fixtures under fixtures/giosg, which follow giosg's documented shapes.
"""

from __future__ import annotations

import copy
import json
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tests.kit.fake_platform import FakePlatform

FIXTURES = Path(__file__).parent / "fixtures" / "giosg"
ORG = "e6a08f51-c250-4074-847b-58d444dbbeb1"
ROOM = "f2b1a0c4-3e6d-4c8b-9a57-0d1e2f3a4b5c"
TEAM_ONLINE = "b7d2c1e0-4f3a-4e6b-9c8d-2a1f0e3d5c47"
TEAM_OFFLINE = "0e1d2c3b-4a59-4687-b7c6-d5e4f3a2b1c0"
API_USER = "3f6e2d1c-0b9a-4877-a6d5-c4b3a2910f8e"
AGENT = "7c94ae79-a4b4-4eea-ac23-24c16f910080"


def fixture(name: str) -> dict[str, Any]:
    """One JSON fixture, freshly parsed (callers may change it)."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def message_webhook(
    chat_id: str,
    text: str,
    message_id: str | None = None,
    *,
    sender_type: str = "user",
    sender_id: str = AGENT,
    org: str = ORG,
) -> dict[str, Any]:
    """A message `added` webhook for one chat, as giosg sends it."""
    payload = fixture(
        "webhook_user_message" if sender_type == "user" else "webhook_visitor_message"
    )
    message_id = message_id or str(uuid.uuid4())
    payload["resource_id"] = message_id
    payload["resource"].update(
        id=message_id, chat_id=chat_id, message=text, sender_id=sender_id, sender_type=sender_type
    )
    payload["channel"] = f"/api/v5/orgs/{org}/owned_chats/{chat_id}/messages"
    return payload


def chat_webhook(name: str, chat_id: str, org: str = ORG) -> dict[str, Any]:
    """A chat webhook (`webhook_chat_ended`, `webhook_chat_user_present`...) for one chat."""
    payload = fixture(name)
    payload["resource_id"] = chat_id
    if "id" in payload["resource"]:
        payload["resource"]["id"] = chat_id
    payload["channel"] = f"/api/v5/orgs/{org}/owned_chats"
    return payload


@dataclass
class Visitor:
    """A giosg visitor the fake made."""

    id: str
    secret: str
    in_room: bool = False
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class Chat:
    """A chat of one visitor."""

    id: str
    visitor_id: str
    is_ended: bool = False
    invited_teams: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)


@dataclass
class Received:
    """A message the fake accepted from a visitor."""

    chat_id: str
    visitor_id: str
    body: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.body.get("message"))


@dataclass
class FakeGiosg(FakePlatform):
    """The platform's state and what it received; `script` answers before anything else."""

    api_token: str
    org: str = ORG
    room: str = ROOM
    teams: list[dict[str, Any]] = field(
        default_factory=lambda: copy.deepcopy(fixture("teams_page")["results"])
    )
    page_size: int = 2
    # Answer 400 to messages with attachments, as a platform that refuses rich content.
    reject_attachments: bool = False
    webhook_url: str | None = None
    visitors: dict[str, Visitor] = field(default_factory=dict)
    chats: dict[str, Chat] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    room_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    echo_statuses: list[int] = field(default_factory=list)
    _tokens: dict[str, str] = field(default_factory=dict)

    # -- running -------------------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """giosg's public (visitor) and organization APIs, as far as the adapter uses them."""
        org = "/api/v5/orgs/{org}"
        public = "/api/v5/public"
        router.add_post(public + "/orgs/{org}/auth", self._auth)
        router.add_post(public + "/orgs/{org}/rooms/{room}/visitors", self._room_visitor)
        router.add_post(public + "/orgs/{org}/rooms/{room}/visitors/{vid}/chats", self._create_chat)
        router.add_post(public + "/visitors/{vid}/chats/{chat}/messages", self._message)
        router.add_post(org + "/rooms/{room}/visitors/{vid}/variables", self._set_variable)
        router.add_patch(org + "/owned_chats/{chat}", self._update_chat)
        router.add_get(org + "/teams", self._teams)
        router.add_patch(org + "/rooms/{room}/settings", self._room_settings)
        router.add_post("/api/v5/users/{uid}/chats/{chat}/outgoing_chat_invitations", self._invite)

    def middlewares(self) -> list[Middleware]:
        """The script answers before any check."""
        return [self._scripted]

    def report(self) -> str:
        """The requests seen, for a wait that timed out."""
        return f"giosg saw {self.called()}"

    # -- what tests look at --------------------------------------------------------------

    def sent_texts(self) -> list[str]:
        """Every message text received, in order."""
        return [r.text for r in self.received]

    def only_chat(self) -> Chat:
        """The one chat opened so far."""
        assert len(self.chats) == 1, self.chats
        return next(iter(self.chats.values()))

    def join_agent(self, chat_id: str, agent: str = AGENT) -> None:
        """An agent takes the chat in the giosg console (a user membership)."""
        self.chats[chat_id].agents.append(agent)

    def expire_tokens(self) -> None:
        """Every visitor access token runs out (they last 30 minutes on giosg)."""
        self._tokens.clear()

    # -- handlers ------------------------------------------------------------------------

    @web.middleware
    async def _scripted(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if (status := self.scripted()) is not None:
            return web.json_response({"detail": "scripted"}, status=status)
        return await handler(request)

    def _org_auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Token {self.api_token}":
            raise web.HTTPUnauthorized(text='{"detail": "Invalid token."}')
        if request.match_info.get("org", self.org) != self.org:
            raise web.HTTPForbidden(text='{"detail": "No access to the organization."}')

    def _visitor_auth(self, request: web.Request) -> Visitor:
        header = request.headers.get("Authorization", "")
        visitor_id = self._tokens.get(header.removeprefix("Bearer "))
        if not header.startswith("Bearer ") or visitor_id is None:
            raise web.HTTPUnauthorized(text='{"detail": "Invalid or expired token."}')
        if visitor_id != request.match_info["vid"]:
            raise web.HTTPForbidden(text='{"detail": "Not this visitor."}')
        return self.visitors[visitor_id]

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        page = int(request.query.get("page", "1"))
        start = (page - 1) * self.page_size
        more = start + self.page_size < len(items)
        following = str(request.url.with_query(page=page + 1)) if more else None
        return web.json_response(
            {"next": following, "previous": None, "results": items[start : start + self.page_size]}
        )

    async def _auth(self, request: web.Request) -> web.Response:
        body = await request.json()
        secret = body.get("visitor_secret_id")
        if secret is None:
            visitor = Visitor(uuid.uuid4().hex, secrets.token_hex(25))
            self.visitors[visitor.id] = visitor
        else:
            found = [v for v in self.visitors.values() if v.secret == secret]
            if not found:
                raise web.HTTPBadRequest(text='{"visitor_secret_id": ["Unknown visitor."]}')
            visitor = found[0]
        token = secrets.token_urlsafe(24)
        self._tokens[token] = visitor.id
        answer = fixture("auth_new_visitor")
        answer.update(
            visitor_id=visitor.id,
            visitor_secret_id=visitor.secret,
            organization_id=self.org,
            access_token=token,
        )
        return web.json_response(answer)

    async def _room_visitor(self, request: web.Request) -> web.Response:
        body = await request.json()
        header = request.headers.get("Authorization", "")
        visitor_id = self._tokens.get(header.removeprefix("Bearer "))
        if visitor_id is None or body.get("id") != visitor_id:
            raise web.HTTPForbidden(text='{"detail": "Not this visitor."}')
        self.visitors[visitor_id].in_room = True
        return web.json_response({"id": visitor_id, "room_id": self.room}, status=201)

    async def _create_chat(self, request: web.Request) -> web.Response:
        visitor = self._visitor_auth(request)
        if not visitor.in_room or request.match_info["room"] != self.room:
            raise web.HTTPBadRequest(text='{"detail": "The visitor is not in this room."}')
        chat = Chat(str(uuid.uuid4()), visitor.id)
        self.chats[chat.id] = chat
        answer = fixture("chat_created")
        answer.update(id=chat.id, room_id=self.room)
        return web.json_response(answer, status=201)

    async def _message(self, request: web.Request) -> web.Response:
        visitor = self._visitor_auth(request)
        chat = self.chats.get(request.match_info["chat"])
        if chat is None or chat.visitor_id != visitor.id:
            raise web.HTTPNotFound(text='{"detail": "Not found."}')
        if chat.is_ended:
            raise web.HTTPBadRequest(text='{"detail": "The chat has ended."}')
        body = await request.json()
        if body.get("type") != "msg" or not isinstance(body.get("message"), str):
            raise web.HTTPBadRequest(text='{"message": ["This field is required."]}')
        if body.get("attachments") and self.reject_attachments:
            raise web.HTTPBadRequest(text='{"attachments": ["Not allowed for visitors."]}')
        self.received.append(Received(chat.id, visitor.id, body))
        message_id = str(uuid.uuid4())
        if self.webhook_url is not None:
            echo = message_webhook(
                chat.id, body["message"], message_id, sender_type="visitor", sender_id=visitor.id
            )
            self.spawn(self._echo(echo))
        return web.json_response({"id": message_id, "chat_id": chat.id, **body}, status=201)

    async def _echo(self, payload: dict[str, Any]) -> None:
        assert self.webhook_url is not None
        try:
            async with self.http.post(self.webhook_url, json=payload) as response:
                self.echo_statuses.append(response.status)
        except aiohttp.ClientError:
            self.echo_statuses.append(0)

    async def _set_variable(self, request: web.Request) -> web.Response:
        self._org_auth(request)
        visitor = self.visitors.get(request.match_info["vid"])
        if visitor is None:
            raise web.HTTPNotFound(text='{"detail": "Not found."}')
        body = await request.json()
        if not isinstance(body.get("key"), str) or not isinstance(body.get("value"), str):
            raise web.HTTPBadRequest(text='{"key": ["This field is required."]}')
        visitor.variables[body["key"]] = body["value"]
        return web.json_response(body, status=201)

    async def _update_chat(self, request: web.Request) -> web.Response:
        self._org_auth(request)
        chat = self.chats.get(request.match_info["chat"])
        if chat is None:
            raise web.HTTPNotFound(text='{"detail": "Not found."}')
        body = await request.json()
        if body.get("is_ended") is True:
            chat.is_ended = True
        return web.json_response({"id": chat.id, "is_ended": chat.is_ended})

    async def _teams(self, request: web.Request) -> web.Response:
        self._org_auth(request)
        return self._page(request, self.teams)

    async def _room_settings(self, request: web.Request) -> web.Response:
        self._org_auth(request)
        body = await request.json()
        settings = self.room_settings.setdefault(request.match_info["room"], {})
        settings.update(body)
        return web.json_response(settings)

    async def _invite(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Token {self.api_token}":
            raise web.HTTPUnauthorized(text='{"detail": "Invalid token."}')
        chat = self.chats.get(request.match_info["chat"])
        body = await request.json()
        if chat is None or not any(t["id"] == body.get("invited_team_id") for t in self.teams):
            raise web.HTTPBadRequest(text='{"invited_team_id": ["Invalid team."]}')
        chat.invited_teams.append(body["invited_team_id"])
        return web.json_response({"invited_team_id": body["invited_team_id"]}, status=201)
