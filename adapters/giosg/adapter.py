"""giosg (agent side): each handoff becomes a chat of an external visitor in a giosg room.

What it does, with giosg's HTTP API (base `https://service.giosg.com`; org calls send
`Authorization: Token <api_token>`, visitor calls `Authorization: Bearer <visitor token>`):

- open: `POST /api/v5/public/orgs/{org}/auth {"visitor_secret_id": null}` makes a new
  visitor (id, secret, 30-minute access token); `POST …/rooms/{room}/visitors {id}` puts
  it in the room; `POST /api/v5/orgs/{org}/rooms/{room}/visitors/{vid}/variables
  {key, value}` sets the customer (`username`, `email`, `customer_id`, `labels`,
  `region`), each metadata key and `bridge_conversation_id`; `POST …/visitors/{vid}/chats`
  opens the chat, and the visitor is kept in the bridge's adapter state (see below). With
  a `team_id`, the team is looked up in `GET /api/v5/orgs/{org}/teams` (paginated
  `{results, next}`) and, when `is_online`, invited: `POST /api/v5/users/{user_id}/chats/
  {chat}/outgoing_chat_invitations {"invited_team_id": …}`. Without one (or with the team
  offline) the room's router assigns the chat; `link_router` sets which router that is.
- history and customer messages: replayed one by one (`Capabilities(history=False)`) as
  the visitor: `POST /api/v5/public/visitors/{vid}/chats/{chat}/messages {type: "msg",
  message}`. `post_rich_message` adds `attachments[{text, actions[{text, type, value}]}]`
  and falls back to plain text when there is nothing rich or giosg refuses it. A message's
  files go so: one attachment per file with a `link_button` named after it (`name: url`
  as plain text).
- close (and release): `PATCH /api/v5/orgs/{org}/owned_chats/{chat} {"is_ended": true}`,
  which ends and locks the chat for everyone (leaving a membership would need a member).
- availability: the team's `is_online` (None without a team).
- inbound: the giosg app's channel webhooks, authenticated by the secret last segment of
  `/webhooks/{channel}/{token}` (giosg signs nothing). See adapters/giosg/wire.py.

external_ref is the bare giosg chat id, because giosg's webhooks name only the chat and
the bridge matches them on `external_ref` exactly. A post needs a fresh visitor token
(they last 30 minutes), which only the visitor's `visitor_secret_id` can get; so at open
the visitor id and secret are kept with the bridge's `StateStore` (the adapter_state
table) under this channel and `chat:{chat id}`, and a post reads them back and calls
`POST …/auth {visitor_secret_id}` before sending: two calls a post. The secret lets its
holder write as that visitor into that chat, so the database guards it like the bridge's
other secrets. A chat with nothing kept (one opened before visitors were kept there) is
refused with PlatformRejected. Closing uses the org token and needs no visitor. Nothing
is kept in memory, and no token or secret is logged.

Assumptions, where the public docs are thin:
- Listings (`{results, next}`) give `next` as a URL or a path on the same host; a `next`
  on another host is refused, so the API token never leaves it.
- The API token's user may invite a team to a chat it is not a member of; the demo-bot
  invites from a chat its bot user had joined.
- Room settings are PATCHed at `/api/v5/orgs/{org}/rooms/{room}/settings`: the routers
  doc says "update the router_id of the organization's room settings" but names no path.
- An `added` message with `sender_type: "user"` and `type: "join"` is an agent joining, as
  are a user membership `added` and a chat `changed` to `present_user_participant_count`
  above zero. Visitor messages in the bridge's chats are all the bridge's own: echoes.

Not done, and why:
- An open retried after a failure part-way makes a new visitor and chat: giosg has no
  idempotency key, and the visitor is kept only once its chat exists.
- A message posted again after a lost answer or a crash shows twice: giosg's message
  API takes no client message id (`{type, message}` and attachments only), so nothing
  lets giosg, or an agent, tell the copies for one.
- The bot's history lines are posted as the visitor, unmarked: the public API sets no
  other sender, and a marker in the text would change what the agent reads.
- No join link: giosg has none to hand out (agents work in the giosg console).
- An agent's file reaches the bridge as nothing: the documented message resource shows
  no file fields, so only its text (if any) is relayed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

from adapters.giosg.options import GiosgOptions
from adapters.giosg.wire import (
    GiosgAttachment,
    file_buttons,
    parse_webhook,
    plain_text,
    rich_body,
)
from adapters.kit import PlatformAdapter, UrlToken, json_object, webhook_object
from bridge.errors import PlatformAuthError, PlatformRejected
from bridge.ports import agent_side as port

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Visitor:
    """A visitor's identity and a current access token (never logged)."""

    visitor_id: str
    # Kept out of repr, so a stray log of the object shows no credential.
    secret: str = field(repr=False)
    token: str = field(repr=False)


def _field(body: Mapping[str, Any], key: str, what: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise PlatformRejected(f"giosg's answer to {what} has no {key}")
    return value


def _kept_visitor(raw: str, chat_id: str) -> tuple[str, str]:
    """The visitor id and secret kept for a chat, from the JSON `_keep` stored."""
    try:
        kept = json.loads(raw)
    except ValueError:
        # Not chained: the decoder's error carries the text, and the text holds the secret.
        kept = None
    values = kept if isinstance(kept, dict) else {}
    visitor_id, secret = values.get("visitor_id"), values.get("visitor_secret_id")
    if not (isinstance(visitor_id, str) and visitor_id and isinstance(secret, str) and secret):
        raise PlatformRejected(f"giosg chat {chat_id}: the visitor kept for it is damaged")
    return visitor_id, secret


def _variables(conversation: port.ConversationSnapshot) -> dict[str, str]:
    """The visitor variables agents see: metadata first, so the bridge's own keys win."""
    values: dict[str, str] = {}
    for key, value in conversation.metadata.items():
        if value is not None:
            values[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    customer = conversation.customer
    name = " ".join(str(customer[k]) for k in ("firstname", "lastname") if customer.get(k))
    values["username"] = name or str(customer.get("id", ""))
    if customer.get("email"):
        values["email"] = str(customer["email"])
    if customer.get("id"):
        values["customer_id"] = str(customer["id"])
    if customer.get("labels"):
        values["labels"] = ", ".join(str(label) for label in customer["labels"])
    if conversation.region:
        values["region"] = conversation.region
    values["bridge_conversation_id"] = conversation.id
    return values


class GiosgAdapter(PlatformAdapter[GiosgOptions]):
    """giosg LIVE: the bridge is an external visitor; agents answer in the giosg console."""

    platform: ClassVar[str] = "giosg"
    capabilities: ClassVar[port.Capabilities] = port.Capabilities(history=False, availability=True)
    # giosg signs no webhook: the secret last segment of the URL the giosg app posts to.
    webhook_auth: ClassVar[UrlToken] = UrlToken(
        "webhook_secret", refusal="giosg webhook: the secret in the URL does not match"
    )

    def _org_headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.options.api_token.get_secret_value()}"}

    @staticmethod
    def _visitor_headers(visitor: _Visitor) -> dict[str, str]:
        return {"Authorization": f"Bearer {visitor.token}"}

    # -- outbound ------------------------------------------------------------------------

    async def open_conversation(self, conversation: port.ConversationSnapshot) -> port.OpenResult:
        """Make a visitor with the customer's variables, open its chat, invite the team."""
        opts = self.options
        visitor = await self._authenticate(None)
        await self.http.request(
            "POST",
            opts.url(opts.room_visitors_path, room_id=opts.room_id),
            json_body={"id": visitor.visitor_id},
            headers=self._visitor_headers(visitor),
        )
        variables_url = opts.url(
            opts.visitor_variables_path, room_id=opts.room_id, visitor_id=visitor.visitor_id
        )
        for name, value in _variables(conversation).items():
            await self.http.request(
                "POST",
                variables_url,
                json_body={"key": name, "value": value},
                headers=self._org_headers(),
            )
        response = await self.http.request(
            "POST",
            opts.url(opts.visitor_chats_path, room_id=opts.room_id, visitor_id=visitor.visitor_id),
            json_body={},
            headers=self._visitor_headers(visitor),
        )
        chat_id = _field(
            json_object(response, "the new chat", platform=self.platform), "id", "the new chat"
        )
        await self._keep(chat_id, visitor)
        await self._invite_team(conversation.id, chat_id)
        log.info("giosg.opened", extra={"conversation": conversation.id, "chat": chat_id})
        return port.OpenResult(external_ref=chat_id)

    async def post_message(
        self, conversation: port.ConversationRef, message: port.OutboundMessage
    ) -> None:
        """Post one message as the conversation's visitor; its files as link buttons."""
        if message.attachments:
            await self.post_rich_message(conversation, message.text, file_buttons(message))
            return
        chat_id = self._chat_of(conversation)
        visitor = await self._resume(chat_id)
        await self._send(visitor, chat_id, {"type": "msg", "message": message.text})

    async def post_rich_message(
        self, conversation: port.ConversationRef, text: str, attachments: Sequence[GiosgAttachment]
    ) -> None:
        """Post a message with buttons; plain text when it has none or giosg refuses them."""
        chat_id = self._chat_of(conversation)
        visitor = await self._resume(chat_id)
        if not any(a.text or a.actions for a in attachments):
            await self._send(visitor, chat_id, {"type": "msg", "message": text})
            return
        try:
            await self._send(visitor, chat_id, rich_body(text, attachments))
        except PlatformAuthError:
            raise
        except PlatformRejected as exc:
            log.info(
                "giosg.rich_refused",
                extra={"conversation": conversation.id, "chat": chat_id, "status": exc.status},
            )
            fallback = {"type": "msg", "message": plain_text(text, attachments)}
            await self._send(visitor, chat_id, fallback)

    async def close_conversation(self, conversation: port.ConversationRef, reason: str) -> None:
        """End the giosg chat (`is_ended: true` locks it for good)."""
        chat_id = self._chat_of(conversation)
        await self.http.request(
            "PATCH",
            self.options.url(self.options.chat_path, chat_id=chat_id),
            json_body={"is_ended": True},
            headers=self._org_headers(),
        )
        log.info("giosg.closed", extra={"conversation": conversation.id, "chat": chat_id})

    async def check_availability(self) -> bool | None:
        """Whether the configured team is online; None without a team (or if it is gone)."""
        if self.options.team_id is None:
            return None
        team = await self._team()
        if team is None:
            log.warning("giosg.team_missing", extra={"channel": self.channel})
            return None
        return team.get("is_online") is True

    async def link_router(self, room_id: str, router_id: str | None) -> None:
        """Make `room_id` route its chats with `router_id` (None unlinks it)."""
        await self.http.request(
            "PATCH",
            self.options.url(self.options.room_settings_path, room_id=room_id),
            json_body={"router_id": router_id},
            headers=self._org_headers(),
        )
        log.info("giosg.router_linked", extra={"channel": self.channel, "room": room_id})

    # -- inbound -------------------------------------------------------------------------

    def parse_inbound(self, request: port.InboundRequest) -> list[port.InboundEvent]:
        """Agent messages, joins and ended chats; the bridge's own messages are dropped."""
        return parse_webhook(webhook_object(request, "giosg webhook: the body"))

    # -- helpers -------------------------------------------------------------------------

    def _chat_of(self, conversation: port.ConversationRef) -> str:
        if not conversation.external_ref:
            raise PlatformRejected(f"conversation {conversation.id} has no giosg chat yet")
        return conversation.external_ref

    async def _authenticate(self, secret: str | None) -> _Visitor:
        # A null secret makes a new visitor; the stored one gets a fresh token for it.
        url = self.options.url(self.options.auth_path)
        response = await self.http.request("POST", url, json_body={"visitor_secret_id": secret})
        what = "the visitor authentication"
        body = json_object(response, what, platform=self.platform)
        return _Visitor(
            visitor_id=_field(body, "visitor_id", what),
            secret=secret or _field(body, "visitor_secret_id", what),
            token=_field(body, "access_token", what),
        )

    @staticmethod
    def _state_key(chat_id: str) -> str:
        return f"chat:{chat_id}"

    async def _keep(self, chat_id: str, visitor: _Visitor) -> None:
        """Keep what later posts need to act as the chat's visitor (never logged)."""
        kept = {"visitor_id": visitor.visitor_id, "visitor_secret_id": visitor.secret}
        await self.context.state.put_state(self.channel, self._state_key(chat_id), json.dumps(kept))

    async def _resume(self, chat_id: str) -> _Visitor:
        """The chat's visitor, as kept at open, with a fresh token."""
        raw = await self.context.state.get_state(self.channel, self._state_key(chat_id))
        if raw is None:
            raise PlatformRejected(
                f"giosg chat {chat_id}: the bridge keeps no visitor for it, so nothing can be"
                " posted to it (a chat opened before visitors were kept in the bridge's"
                " database has none)"
            )
        visitor_id, secret = _kept_visitor(raw, chat_id)
        visitor = await self._authenticate(secret)
        if visitor.visitor_id != visitor_id:
            raise PlatformRejected(f"giosg chat {chat_id}: the visitor secret names another one")
        return visitor

    async def _send(self, visitor: _Visitor, chat_id: str, body: dict[str, Any]) -> None:
        await self.http.request(
            "POST",
            self.options.url(
                self.options.visitor_messages_path, visitor_id=visitor.visitor_id, chat_id=chat_id
            ),
            json_body=body,
            headers=self._visitor_headers(visitor),
        )

    async def _team(self) -> dict[str, Any] | None:
        team_id = self.options.team_id
        return await self._first(
            self.options.url(self.options.teams_path), lambda t: t.get("id") == team_id
        )

    async def _invite_team(self, conversation_id: str, chat_id: str) -> None:
        opts = self.options
        if opts.team_id is None or opts.user_id is None:
            return
        team = await self._team()
        if team is None:
            raise PlatformRejected(f"giosg team {opts.team_id} is not in the organization")
        if team.get("is_online") is not True:
            # An offline team is not invited (as giosg's demo-bot does); the room's router
            # still has the pending chat.
            log.info("giosg.team_offline", extra={"conversation": conversation_id})
            return
        await self.http.request(
            "POST",
            opts.url(opts.invitations_path, user_id=opts.user_id, chat_id=chat_id),
            json_body={"invited_team_id": opts.team_id},
            headers=self._org_headers(),
        )

    async def _first(
        self, url: str, wanted: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """The first listed item that is `wanted`, reading no further pages than needed."""
        async with aclosing(self._pages(url)) as items:
            async for item in items:
                if wanted(item):
                    return item
        return None

    async def _pages(self, url: str) -> AsyncGenerator[dict[str, Any], None]:
        """Every result of a paginated `{results, next}` listing, on giosg's own host."""
        base = urlsplit(self.options.base_url)
        next_url: str | None = url
        for _ in range(self.options.max_pages):
            if next_url is None:
                return
            response = await self.http.request("GET", next_url, headers=self._org_headers())
            page = json_object(response, "a listing", platform=self.platform)
            results = page.get("results")
            if not isinstance(results, list):
                raise PlatformRejected("giosg's listing has no results list")
            for item in results:
                if isinstance(item, dict):
                    yield item
            following = page.get("next")
            if not following:
                return
            if not isinstance(following, str):
                raise PlatformRejected("giosg's listing has a next that is not a URL")
            next_url = urljoin(self.options.base_url + "/", following)
            target = urlsplit(next_url)
            if (target.scheme, target.netloc) != (base.scheme, base.netloc):
                # The API token goes with every page: never to another host.
                raise PlatformRejected("giosg's listing points its next page at another host")
        log.warning("giosg.listing_truncated", extra={"channel": self.channel})
