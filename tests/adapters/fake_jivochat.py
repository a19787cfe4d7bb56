"""A fake Jivo on port 0: the Bot API endpoint and a Chat API channel, plus Jivo's payloads.

It records what it accepts and answers like Jivo: 401 for a wrong provider token (Bot
API), 404 for a wrong channel endpoint (Chat API), 400 for a body not in the documented
shape, `0`/`1` for the channel status, and any statuses queued in `script` first.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.kit.fake_platform import FakePlatform

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "jivochat"

# Test secrets (at least 16 characters, as the adapter demands of URL secrets).
PROVIDER_ID = "prov-4711"
BOT_TOKEN = "bot-token-0123456789abcdef"
ENDPOINT_SECRET = "IF6YK0nYgC56npYB"
PUBLIC_ID = "DCall6BR1M"
WEBHOOK_TOKEN = "chat-webhook-token-0123456789"


def fixture(name: str, **overrides: Any) -> dict[str, Any]:
    """A payload from fixtures/jivochat/<name>.json, top-level fields overridden."""
    payload: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))
    payload = copy.deepcopy(payload)
    payload.update(overrides)
    return payload


def client_message(
    text: str, event_id: str, *, chat_id: str = "2037", client_id: str = "1233"
) -> dict[str, Any]:
    """A CLIENT_MESSAGE as Jivo sends it."""
    payload = fixture("client_message", id=event_id, chat_id=chat_id, client_id=client_id)
    payload["message"]["text"] = text
    return payload


@dataclass
class FakeJivo(FakePlatform):
    """Jivo's Bot API endpoint and one Chat API channel endpoint.

    `script` answers both APIs before accepting, e.g. [503] then the real answer.
    """

    agents_online: bool = True
    bot_api_events: list[dict[str, Any]] = field(default_factory=list)
    chat_api_events: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    attempts: int = 0

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """The Bot API endpoint, and the channel's status and message endpoints.

        The base URL is the adapters' `bot_api_url` and `chat_api_url`.
        """
        router.add_post("/webhooks/{provider_id}/{token}", self._bot_api)
        router.add_get("/{secret}/{public_id}/status", self._status)
        router.add_post("/{secret}/{public_id}", self._chat_api)

    def of_event(self, name: str) -> list[dict[str, Any]]:
        """Accepted Bot API events of one kind (BOT_MESSAGE, INVITE_AGENT)."""
        return [event for event in self.bot_api_events if event.get("event") == name]

    def chat_texts(self) -> list[str]:
        """Texts of the client messages the Chat API channel accepted, in order."""
        return [str(event["message"].get("text")) for event in self.chat_api_events]

    def report(self) -> str:
        """What both APIs accepted, for a wait that timed out."""
        return f"bot API got {self.bot_api_events}, chat API {self.chat_api_events}"

    def _scripted(self) -> web.Response | None:
        self.attempts += 1
        if (status := self.scripted()) is not None:
            return web.Response(status=status)
        return None

    async def _bot_api(self, request: web.Request) -> web.Response:
        if (request.match_info["provider_id"], request.match_info["token"]) != (
            PROVIDER_ID,
            BOT_TOKEN,
        ):
            self.refused += 1
            return web.Response(status=401, text="Unauthorized")
        scripted = self._scripted()
        if scripted is not None:
            return scripted
        event = await request.json()
        # Jivo's 400: the ids must be strings, and the event one the provider may send.
        if (
            event.get("event") not in ("BOT_MESSAGE", "INVITE_AGENT", "CLIENT_INFO")
            or not isinstance(event.get("chat_id"), str)
            or not isinstance(event.get("client_id"), str)
            or not isinstance(event.get("id"), str)
        ):
            return web.Response(status=400, text="Bad Request")
        self.bot_api_events.append(event)
        return web.json_response({})

    def _channel_matches(self, request: web.Request) -> bool:
        matches = (request.match_info["secret"], request.match_info["public_id"]) == (
            ENDPOINT_SECRET,
            PUBLIC_ID,
        )
        if not matches:
            self.refused += 1
        return matches

    async def _status(self, request: web.Request) -> web.Response:
        if not self._channel_matches(request):
            return web.Response(status=404)
        return web.Response(text="1" if self.agents_online else "0")

    async def _chat_api(self, request: web.Request) -> web.Response:
        if not self._channel_matches(request):
            return web.Response(status=404)
        scripted = self._scripted()
        if scripted is not None:
            return scripted
        event = await request.json()
        sender, message = event.get("sender"), event.get("message")
        if (
            not isinstance(sender, dict)
            or not isinstance(sender.get("id"), str)
            or not isinstance(message, dict)
            or not _documented_message(message)
        ):
            return web.Response(status=400, text="Bad Request")
        self.chat_api_events.append(event)
        return web.json_response({})


def _documented_message(message: dict[str, Any]) -> bool:
    """`{type: text, text}` or a file, `{type: photo|document, file, file_name}` (Chat API)."""
    if message.get("type") == "text":
        return isinstance(message.get("text"), str)
    return message.get("type") in ("photo", "document") and isinstance(message.get("file"), str)
