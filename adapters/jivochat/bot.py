"""JivoChat as the bot side: the bridge is the Jivo Bot API provider, the real bot behind it.

Jivo (the business channel: every dialog passes through it) POSTs its Bot API events to
the provider URL registered with Jivo, `{public_url}/bots/{name}/{token}`. It waits 3
seconds (then retries twice, then hands the chat to an agent by itself), so nothing slow
happens while it waits: each event becomes a few quick database writes and the answer.

- `CLIENT_MESSAGE` → a signed `customer.message` for the real bot, queued in the outbox
  (`gateway.notify_bot`) and delivered to `bot_url` per Standard Webhooks, retried while
  the bot is down. The event carries `chat_id`/`client_id` for the reply, `agents_online`,
  and a ready-made `handoff` block for `POST /v1/handoffs`.
- The bot answers with `POST /bots/{name}/{token}/reply` `{chat_id, client_id, text, ...}`;
  that queues a `BOT_MESSAGE`, which the outbox POSTs to Jivo's endpoint
  (`{bot_api_url}{bot_api_path}`), in order with the chat's other replies. A reply with
  an `id` is sent once however often the bot retries it (`202`, then `200 duplicate`).
- For a human the bot calls the bridge's `POST /v1/handoffs` with `bot.platform` = this
  bot's name and `bot.conversation_id` = the chat id, routed to a channel of platform
  `jivochat` in mode `bot_api`, whose adapter sends `INVITE_AGENT` (see agent.py).
- `AGENT_JOINED`, `AGENT_MESSAGE`, `CHAT_CLOSED` become the handoff's agent.joined,
  agent.message and conversation.closed (found by bot conversation id = chat id), which
  reach the bot signed; nothing goes back to Jivo, where the customer sees the agent.
  Without an active handoff (Jivo moved the chat to an agent by itself) they are
  forwarded to `bot_url` as the same event types with `conversation_id: null`.
- `AGENT_UNAVAILABLE` releases the handoff (the chat is back with the bot) and tells the
  bot `handoff.failed` with the reason `no_agents_online` (detail "no agent online").
- Anything else (`INVITE_AGENT_ACCEPTED`, `CLIENT_INFO`, ...) is acknowledged and dropped.

Assumptions where the public docs are thin:

- Jivo signs nothing: the provider URL's token is the credential (constant-time compare),
  and the bot's `/reply` calls carry the same token.
- A redelivered event repeats its `id` (a digest of the body stands in when it has none).
  The last 64 event ids of each chat are kept in adapter state, so a redelivery is
  answered 200 and not applied twice; the handoff calls are idempotent besides.
- `AGENT_JOINED` and `AGENT_MESSAGE` (Russian docs only) are shaped like
  `CLIENT_MESSAGE`, with the agent in `agent{id,name}` (or `sender`). Only TEXT messages
  are documented; another type is passed on as it came (an agent's becomes
  "[TYPE message]" in the transcript).

Not done: `/reply` sends TEXT, MARKDOWN and BUTTONS only (no CLIENT_INFO, no files), and
nothing here ends a Jivo chat: the Bot API has no event for that.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from adapters.jivochat.options import JivoBotOptions
from adapters.jivochat.recent import RecentEvents
from adapters.jivochat.reply import bot_message, parse_reply
from adapters.jivochat.wire import (
    AGENT_JOINED,
    AGENT_MESSAGE,
    AGENT_UNAVAILABLE,
    CHAT_CLOSED,
    CLIENT_MESSAGE,
    as_id,
    compact,
    event_key,
    optional_object,
    optional_text,
    secret_url,
    short_id,
    stable_uuid,
)
from adapters.kit import BotPlatform, UrlToken, webhook_object
from adapters.webhook import deliver_signed
from bridge.domain.conversation import reply_joins_first
from bridge.domain.reasons import NO_AGENTS_ONLINE
from bridge.domain.status import ACTIVE, Status
from bridge.errors import (
    FieldProblem,
    InvalidTransition,
    MalformedPayload,
    NotFound,
    PlatformRejected,
)
from bridge.models import MAX_TEXT, AgentMessageRequest
from bridge.ports.agent_side import InboundReply, InboundRequest
from bridge.ports.bot_side import BotGateway, HandedOff

log = logging.getLogger(__name__)

# The outbox event type of a queued BOT_MESSAGE; `deliver_event` sends it to Jivo.
JIVO_BOT_MESSAGE = "jivo.bot_message"
# The outbox target of events for Jivo: the real URL holds a token and is built at
# delivery, so the token never sits in the outbox (which the admin API shows).
JIVO_TARGET = "jivochat:bot-api"
NO_AGENT_ONLINE = "no agent online"
CLOSED_REASON = "closed on jivochat"
_TO_JIVO = " -> jivo"
_HANDLED = (CLIENT_MESSAGE, AGENT_UNAVAILABLE, AGENT_JOINED, AGENT_MESSAGE, CHAT_CLOSED)


class JivoBotProvider(BotPlatform[JivoBotOptions]):
    """The Jivo Bot API provider in front of a Standard Webhooks bot."""

    platform: ClassVar[str] = "jivochat"
    # Jivo signs nothing: the provider URL's token is the credential, and the bot's
    # `/reply` calls carry it too.
    api_auth: ClassVar[UrlToken] = UrlToken(
        "token", refusal="the Jivo provider URL token does not match"
    )

    # -- outbound ----------------------------------------------------------------------

    async def deliver_event(self, target: str, event_id: str, body: str) -> None:
        """A queued BOT_MESSAGE goes to Jivo; every other event to the bot, signed."""
        event = json.loads(body)
        if event.get("type") != JIVO_BOT_MESSAGE:
            secret = self.context.signing_secret
            await deliver_signed(self.callbacks, secret, target, event_id, body)
            return
        payload = event.get("data", {}).get("jivo")
        if not isinstance(payload, dict):
            raise PlatformRejected(f"outbox event {event_id} holds no Jivo payload")
        options = self.options
        token = options.outbound_token()
        url = secret_url(
            options.bot_api_url, options.bot_api_path, token, provider_id=options.provider_id
        )
        # The URL holds the token; the client's errors never show it.
        await self.http.request("POST", url, json_body=payload)

    # -- inbound -----------------------------------------------------------------------

    async def serve(self, path: str, request: InboundRequest, gateway: BotGateway) -> InboundReply:
        """`{token}`: a Jivo Bot API event; `{token}/reply`: the bot's reply to a chat."""
        if request.method != "POST":
            raise NotFound(
                "the Jivo provider URL takes POST only", [FieldProblem("method", "use POST")]
            )
        if path == "":
            return await self._jivo_event(request, gateway)
        if path == "reply":
            return await self._bot_reply(request, gateway)
        raise NotFound(f"no {path!r} on the Jivo provider URL", [FieldProblem("path", path)])

    async def _jivo_event(self, request: InboundRequest, gateway: BotGateway) -> InboundReply:
        body = webhook_object(request, "a Jivo event")
        kind = optional_text(body, "event")
        if not kind:
            raise MalformedPayload("a Jivo Bot API event needs its 'event' name")
        if kind not in _HANDLED:
            # INVITE_AGENT_ACCEPTED, CLIENT_INFO and the like: nothing for the bridge.
            log.info("jivochat.event_ignored", extra={"bot": self.name, "event": kind})
            return InboundReply()
        # Everything is read and checked before anything is written.
        event = _JivoEvent.parse(kind, body, request.body)
        recent = RecentEvents(gateway, f"bot:{self.name}", event.chat_id)
        if await recent.seen(event.key):
            log.info("jivochat.redelivery", extra={"bot": self.name, "event": kind})
            return InboundReply()
        row = await gateway.find_by_bot_conversation(self.name, event.chat_id)
        handoff = row if row is not None and Status(row.status) in ACTIVE else None
        if kind == CLIENT_MESSAGE:
            await self._notify(
                gateway, event, "customer.message", self._customer_message(event, handoff)
            )
        elif kind == AGENT_UNAVAILABLE:
            await self._agent_unavailable(gateway, event, handoff)
        elif handoff is not None:
            await self._apply_to_handoff(gateway, event, handoff)
        else:
            await self._forward(gateway, event)
        await recent.remember(event.key)
        return InboundReply()

    async def _notify(
        self,
        gateway: BotGateway,
        event: _JivoEvent,
        event_type: str,
        data: dict[str, Any],
        target: str | None = None,
    ) -> None:
        target = target or str(self.options.bot_url)
        await gateway.notify_bot(self.name, event.chat_id, target, event_type, data)

    def _customer_message(self, event: _JivoEvent, handoff: HandedOff | None) -> dict[str, Any]:
        body = event.body
        agents_online = body.get("agents_online")
        return {
            # The active handoff of this chat, if any: the bot may relay to it.
            "conversation_id": handoff.id if handoff is not None else None,
            "chat_id": event.chat_id,
            "client_id": event.client_id,
            "site_id": optional_text(body, "site_id"),
            "agents_online": agents_online if isinstance(agents_online, bool) else None,
            "message": {"id": event.key, **event.message},
            "sender": optional_object(body, "sender"),
            "channel": optional_object(body, "channel"),
            # What the bot sends to POST /v1/handoffs (plus its callback_url, history, ...).
            "handoff": {
                "bot": {"platform": self.name, "conversation_id": event.chat_id},
                "customer": {"id": event.client_id},
                "metadata": {"jivo_chat_id": event.chat_id, "jivo_client_id": event.client_id},
            },
        }

    async def _agent_unavailable(
        self, gateway: BotGateway, event: _JivoEvent, handoff: HandedOff | None
    ) -> None:
        data: dict[str, Any] = {
            "conversation_id": None,
            "channel": None,
            "client_id": event.client_id,
            # The bridge's own reason for the same case (Jivo's AGENT_UNAVAILABLE).
            "reason": NO_AGENTS_ONLINE,
            "detail": NO_AGENT_ONLINE,
        }
        if handoff is None:
            await self._notify(gateway, event, "handoff.failed", data)
            return
        try:
            # Jivo leaves the chat with the bot: the handoff is handed back.
            await gateway.release(handoff.id, "bot", NO_AGENT_ONLINE)
        except InvalidTransition:
            return
        data.update(conversation_id=handoff.id, channel=handoff.channel)
        await self._notify(gateway, event, "handoff.failed", data, handoff.callback_url)

    async def _apply_to_handoff(
        self, gateway: BotGateway, event: _JivoEvent, handoff: HandedOff
    ) -> None:
        """The handoff's lifecycle calls; each is idempotent and tells the bot once."""
        try:
            if event.kind == AGENT_JOINED or (
                event.kind == AGENT_MESSAGE and reply_joins_first(Status(handoff.status))
            ):
                await gateway.agent_joined(handoff.id, event.agent_name)
            if event.kind == AGENT_MESSAGE:
                request = AgentMessageRequest(
                    text=event.text[:MAX_TEXT], client_id=short_id(event.key)
                )
                await gateway.agent_message(handoff.id, request, event.agent_name)
            elif event.kind == CHAT_CLOSED:
                await gateway.close(handoff.id, "agent", CLOSED_REASON)
        except InvalidTransition as exc:
            log.info("jivochat.ignored", extra={"conversation": handoff.id, "why": exc.message})

    async def _forward(self, gateway: BotGateway, event: _JivoEvent) -> None:
        """An agent event of a chat with no active handoff: the bot hears of it all the same."""
        data: dict[str, Any] = {
            "conversation_id": None,
            "channel": None,
            "client_id": event.client_id,
        }
        if event.kind == AGENT_JOINED:
            event_type = "agent.joined"
            data["agent"] = compact({"name": event.agent_name, "id": event.agent_id})
        elif event.kind == AGENT_MESSAGE:
            event_type = "agent.message"
            data["message"] = {
                "id": event.key,
                "role": "agent",
                "author": event.agent_name,
                **event.message,
            }
        else:
            event_type = "conversation.closed"
            data.update(by="agent", reason=CLOSED_REASON)
        await self._notify(gateway, event, event_type, data)

    async def _bot_reply(self, request: InboundRequest, gateway: BotGateway) -> InboundReply:
        reply = parse_reply(request)
        recent = RecentEvents(gateway, f"bot:{self.name}", reply.chat_id)
        reply_key = f"reply:{reply.id}" if reply.id else None
        jivo_id = stable_uuid("reply", reply.chat_id, reply.id) if reply.id else str(uuid.uuid4())
        if reply_key is not None and await recent.seen(reply_key):
            return InboundReply(200, {"result": "duplicate", "id": jivo_id})
        await gateway.notify_bot(
            self.name,
            # Its own lane: a reply to Jivo never waits behind an event the bot is not
            # taking yet, and replies of one chat still go out in order.
            f"{reply.chat_id}{_TO_JIVO}",
            JIVO_TARGET,
            JIVO_BOT_MESSAGE,
            {"jivo": bot_message(reply, jivo_id)},
        )
        if reply_key is not None:
            await recent.remember(reply_key)
        return InboundReply(202, {"result": "queued", "id": jivo_id})


@dataclass(frozen=True, slots=True)
class _JivoEvent:
    """One Jivo Bot API event, read and checked."""

    kind: str
    chat_id: str
    client_id: str | None
    # The event's id (or a digest of its bytes): stable across Jivo's redeliveries.
    key: str
    message: dict[str, Any]
    body: dict[str, Any]

    @classmethod
    def parse(cls, kind: str, body: dict[str, Any], raw: bytes) -> _JivoEvent:
        """Read the fields every handled event needs; MalformedPayload when one is wrong."""
        client_id = body.get("client_id")
        return cls(
            kind=kind,
            chat_id=as_id(body.get("chat_id"), "chat_id"),
            client_id=(
                as_id(client_id, "client_id")
                if kind == CLIENT_MESSAGE or client_id is not None
                else None
            ),
            key=event_key(body, raw),
            message=_message(body, required=kind in (CLIENT_MESSAGE, AGENT_MESSAGE)),
            body=body,
        )

    @property
    def text(self) -> str:
        """The message's text; a placeholder naming the type for a message without one."""
        text = self.message.get("text")
        return text if text and text.strip() else f"[{self.message.get('type', 'TEXT')} message]"

    @property
    def _agent(self) -> dict[str, Any]:
        return optional_object(self.body, "agent") or optional_object(self.body, "sender")

    @property
    def agent_id(self) -> str | None:
        """The Jivo agent's id, when the event names one."""
        return optional_text(self._agent, "id")

    @property
    def agent_name(self) -> str:
        """The Jivo agent's name, else its id."""
        return optional_text(self._agent, "name") or self.agent_id or "Jivo agent"


def _message(body: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """`message{type, text, timestamp}` as `{type, text, sent_at}`; TEXT needs a text."""
    message = optional_object(body, "message")
    text = optional_text(message, "text")
    kind = optional_text(message, "type") or "TEXT"
    # Only TEXT is documented; another type is passed on for the bot to judge.
    if required and kind == "TEXT" and not (text and text.strip()):
        raise MalformedPayload("the Jivo event needs message.text")
    stamp = message.get("timestamp")
    sent_at = None
    if isinstance(stamp, int | float | str) and not isinstance(stamp, bool):
        try:
            sent_at = datetime.fromtimestamp(float(stamp), UTC).isoformat()
        except (ValueError, OverflowError, OSError):
            sent_at = None
    return compact({"type": kind, "text": text, "sent_at": sent_at})
