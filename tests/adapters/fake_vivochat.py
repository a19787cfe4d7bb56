"""A fake VivoChat cloud: widget routing by region code, and the two hooks it calls.

VivoChat takes no calls from the bridge, so the fake is driven from the other side, as
the real one is: a page runs the widget (`POST /widget/{widget_id}/run`, what
`setUserToken` + `setRegion` + `run()` do), and an operator accepts a dialog
(`POST /operator/chats/{chat_id}/accept`). The fake then POSTs `client_check_token` to the
customer-verification address and `chat_accepted` to the accepting channel's webhook URL,
shaped like the JSON fixtures, and records every answer it got. Any other request is
recorded in `unexpected` and answered 404: VivoChat has no server API for the bridge.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.kit.fake_platform import FakePlatform

FIXTURES = Path(__file__).parent / "fixtures" / "vivochat"


def fixture(name: str) -> dict[str, Any]:
    """A documented VivoChat payload from the fixtures directory (a fresh copy)."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def chat_accepted(user_token: str | None, chat_id: str, channel_id: str) -> dict[str, Any]:
    """A `chat_accepted` webhook body as VivoChat sends it."""
    body = fixture("chat_accepted")
    body.update(userToken=user_token, chatId=chat_id)
    body["channel"]["id"] = channel_id
    return body


def client_check_token(user_token: str) -> dict[str, Any]:
    """A `client_check_token` request body as VivoChat sends it."""
    body = fixture("client_check_token")
    body["userToken"] = user_token
    return body


@dataclass
class Delivery:
    """One POST the fake made to an integration URL, and what it got back."""

    url: str
    payload: dict[str, Any]
    status: int
    reply: Any


@dataclass
class Chat:
    """A widget dialog: which channel it landed on and who it belongs to."""

    id: str
    channel_id: str
    user_token: str | None
    client_id: str | None = None
    accepted: bool = False


@dataclass
class FakeVivoChat(FakePlatform):
    """VivoChat as the bridge meets it. Configure `webhooks` and `verification_url`."""

    widget_id: str
    main_channel_id: str
    # Management → Communication channels → [main] → Regions: code → channel id.
    regions: dict[str, str] = field(default_factory=dict)
    # Per channel: Management → Communication channels → [channel] → Webhooks integration.
    webhooks: dict[str, str] = field(default_factory=dict)
    # Settings → Dialogs → Customer verification address.
    verification_url: str | None = None
    chats: dict[str, Chat] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """What a page and an operator do; anything else is unexpected."""
        router.add_post("/widget/{widget_id}/run", self._run_widget)
        router.add_post("/operator/chats/{chat_id}/accept", self._accept)
        router.add_route("*", "/{tail:.*}", self._unexpected)

    # -- what a page and an operator do, over HTTP -------------------------------------

    async def run_widget(self, user_token: str | None, region: str | None) -> dict[str, Any]:
        """A page starts the widget with this token and routing code; returns the dialog."""
        return await self._call(
            f"/widget/{self.widget_id}/run", {"userToken": user_token, "region": region}
        )

    async def accept(self, chat_id: str) -> Delivery:
        """An operator accepts the dialog; returns the `chat_accepted` delivery."""
        answer = await self._call(f"/operator/chats/{chat_id}/accept", {})
        return self.deliveries[int(answer["delivery"])]

    async def redeliver(self, delivery: Delivery) -> Delivery:
        """Send the same webhook again, as a platform retry would."""
        return await self._deliver(delivery.url, delivery.payload)

    async def check_token(self, user_token: str) -> Delivery:
        """Ask the verification address about a token, as the widget's first open does."""
        assert self.verification_url is not None
        return await self._deliver(self.verification_url, client_check_token(user_token))

    def replies_of(self, kind: str) -> list[Any]:
        """The answers to every delivered webhook of this type, in order."""
        return [d.reply for d in self.deliveries if d.payload.get("type") == kind]

    # -- the fake's own endpoints --------------------------------------------------------

    async def _run_widget(self, request: web.Request) -> web.Response:
        if request.match_info["widget_id"] != self.widget_id:
            return web.json_response({"error": "unknown widget"}, status=404)
        body = await request.json()
        token, region = body.get("userToken"), body.get("region")
        # The active chat is searched across all routing channels: no duplicate chats.
        chat = next((c for c in self.chats.values() if token and c.user_token == token), None)
        if chat is None:
            # An unknown or missing code goes to the main channel.
            channel_id = self.regions.get(region or "", self.main_channel_id)
            chat = Chat(str(uuid.uuid4()), channel_id, token)
            self.chats[chat.id] = chat
            if token and self.verification_url:
                check = await self._deliver(self.verification_url, client_check_token(token))
                if isinstance(check.reply, dict) and check.reply.get("result") == "ok":
                    chat.client_id = check.reply.get("clientId")
        return web.json_response(
            {"chatId": chat.id, "channelId": chat.channel_id, "clientId": chat.client_id}
        )

    async def _accept(self, request: web.Request) -> web.Response:
        chat = self.chats.get(request.match_info["chat_id"])
        if chat is None:
            return web.json_response({"error": "unknown chat"}, status=404)
        url = self.webhooks.get(chat.channel_id)
        if url is None:
            return web.json_response({"error": "no webhook on this channel"}, status=409)
        chat.accepted = True
        await self._deliver(url, chat_accepted(chat.user_token, chat.id, chat.channel_id))
        return web.json_response({"delivery": len(self.deliveries) - 1})

    async def _unexpected(self, request: web.Request) -> web.Response:
        self.unexpected.append(f"{request.method} {request.path}")
        return web.json_response({"error": "VivoChat has no such API"}, status=404)

    # -- helpers -------------------------------------------------------------------------

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.url_for(path), json=body) as response:
            answer: dict[str, Any] = await response.json()
            assert response.status == 200, answer
            return answer

    async def _deliver(self, url: str, payload: dict[str, Any]) -> Delivery:
        async with self.http.post(url, json=payload) as response:
            try:
                reply: Any = await response.json(content_type=None)
            except ValueError:
                reply = await response.text()
            delivery = Delivery(url, payload, response.status, reply)
        self.deliveries.append(delivery)
        return delivery
