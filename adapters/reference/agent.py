"""Reference Desk's agents: a small, complete agent-side adapter to copy from.

docs/adapters.md walks through it. Reference Desk is a made-up live-chat platform with
the HTTP API most real ones have (tests/adapters/fake_reference.py stands in for it), so
each part of an adapter shows here once:

- `Authorization: Bearer <api_key>` on every call;
- `POST /conversations {external_id, customer, metadata, messages}` opens a conversation
  with its history and answers `{id, agent_url}`; a repeated `external_id` answers the
  conversation it already opened (so a retried open makes no second one);
- `POST /conversations/{id}/messages {text, role, author}` with an `Idempotency-Key`
  header: the same key twice stores one message;
- `POST /conversations/{id}/close {reason}`;
- `GET /agents/availability` answers `{online}`;
- `GET /events?after=<cursor>&limit=<n>` answers `{events: [...], next}`, the same events
  its webhooks carry, for a bridge that polls;
- webhooks to `/webhooks/{channel}` with the `X-Reference-Token` header:
  `{id, type: message.created | agent.joined | conversation.closed, conversation_id,
  external_id, message?: {id, text, author: {type: agent | api, id, name}}, agent?}`.
  What the bridge posted comes back with `author.type` "api": an echo, dropped.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from adapters.kit import (
    BaseUrl,
    EnvSecret,
    HeaderToken,
    PlatformAdapter,
    json_object,
    message_key,
    webhook_object,
)
from bridge.attachments import with_links
from bridge.errors import MalformedPayload, PlatformRejected
from bridge.ports.agent_side import (
    Capabilities,
    ConversationRef,
    ConversationSnapshot,
    InboundEvent,
    InboundKind,
    InboundRequest,
    OpenResult,
    OutboundMessage,
)
from bridge.ports.http import HttpResponse

log = logging.getLogger(__name__)

# The platform's event types, as the bridge's kinds of inbound event.
_KINDS: dict[str, InboundKind] = {
    "message.created": "agent.message",
    "agent.joined": "agent.joined",
    "conversation.closed": "conversation.closed",
    # Sent while an agent types; relayed to the bot as agent.typing, never stored.
    "agent.typing": "agent.typing",
}


class ReferenceOptions(BaseModel):
    """A Reference Desk channel's options (`channels.<name>.options`)."""

    # A misspelt option is a startup error naming it, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")

    # Secrets name environment variables (EnvSecret); the kit keeps their values out of
    # every error the adapter's HTTP client raises.
    api_key: EnvSecret
    webhook_token: EnvSecret
    base_url: BaseUrl = "https://api.reference-desk.example"
    # Poll `GET /events` this often; None (the default) leaves it to webhooks.
    poll_interval_seconds: float | None = Field(default=None, gt=0)
    poll_page_size: int = Field(default=100, ge=1, le=1000)


class ReferenceAdapter(PlatformAdapter[ReferenceOptions]):
    """Reference Desk as the agent side: the kit's parts, each used once."""

    # The `platform` a channel names in config; the registry keys on it.
    platform: ClassVar[str] = "reference"
    # What the platform does natively; the bridge does the rest (a history replay, its
    # own join link) where a flag is False.
    capabilities: ClassVar[Capabilities] = Capabilities(
        history=True, join_url=True, availability=True, polling=True
    )
    # Checked by the kit's verify_inbound, in constant time, before anything is parsed.
    webhook_auth: ClassVar[HeaderToken] = HeaderToken("X-Reference-Token")

    # -- outbound: the bridge's calls, made by the relay and retried by it -----------------

    async def open_conversation(self, conversation: ConversationSnapshot) -> OpenResult:
        """Open the conversation with its history; the platform's id becomes external_ref."""
        customer = conversation.customer
        name = " ".join(str(customer[k]) for k in ("firstname", "lastname") if customer.get(k))
        body = {
            # Our id: a retried open (after a lost answer) finds the same conversation.
            "external_id": conversation.id,
            "customer": {
                "id": customer["id"],
                "name": name or None,
                "email": customer.get("email"),
            },
            "metadata": conversation.metadata,
            "messages": [_message_body(m) for m in conversation.history],
        }
        response = await self._call("POST", "/conversations", body)
        opened = json_object(response, "the new conversation", platform=self.platform)
        conversation_id = opened.get("id")
        if not isinstance(conversation_id, str) or not conversation_id:
            # A 2xx without an id is a broken answer: retrying would not mend it.
            raise PlatformRejected("reference answered the new conversation without an id")
        agent_url = opened.get("agent_url")
        return OpenResult(
            external_ref=conversation_id,
            join_url=agent_url if isinstance(agent_url, str) and agent_url else None,
        )

    async def post_message(self, conversation: ConversationRef, message: OutboundMessage) -> None:
        """Post one message; the same Idempotency-Key on every attempt stores it once."""
        path = f"/conversations/{self._platform_id(conversation)}/messages"
        key = message_key(conversation, message)
        await self._call("POST", path, _message_body(message), {"Idempotency-Key": key})

    async def close_conversation(self, conversation: ConversationRef, reason: str) -> None:
        """Close it on the platform (a repeated close is answered 200 there)."""
        path = f"/conversations/{self._platform_id(conversation)}/close"
        await self._call("POST", path, {"reason": reason})

    async def check_availability(self) -> bool | None:
        """Whether an agent is online, as the platform says."""
        response = await self._call("GET", "/agents/availability")
        answer = json_object(response, "the availability", platform=self.platform)
        return answer.get("online") is True

    # -- polling: the same events as the webhooks, for a bridge the platform cannot reach --

    def poll_interval(self) -> float | None:
        """The configured interval; None leaves the channel to webhooks."""
        return self.options.poll_interval_seconds

    async def poll(self, cursor: str | None) -> tuple[list[InboundEvent], str | None]:
        """Events after `cursor`; the platform's `next` is the cursor the bridge stores."""
        params = {"limit": str(self.options.poll_page_size)}
        if cursor is not None:
            params["after"] = cursor
        response = await self._call("GET", "/events", params=params)
        page = json_object(response, "the event list", platform=self.platform)
        raw = page.get("events")
        if not isinstance(raw, list):
            raise PlatformRejected("reference answered the event list without an events list")
        events: list[InboundEvent] = []
        for item in raw:
            try:
                events.extend(_parse_event(item))
            except MalformedPayload as exc:
                # Skipped, not refused: a poll that fails on one bad event would never
                # get past it. A webhook can be refused instead (the platform sees a 400).
                log.warning("reference.unreadable_event", extra={"problem": exc.message})
        following = page.get("next")
        return events, following if isinstance(following, str) and following else cursor

    # -- inbound: verify_inbound comes from `webhook_auth`; parse what it let in ------------

    def parse_inbound(self, request: InboundRequest) -> list[InboundEvent]:
        """The webhook's event; echoes of what the bridge posted are dropped here."""
        return _parse_event(webhook_object(request, "a Reference Desk webhook body"))

    # -- helpers ---------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> HttpResponse:
        # self.http turns 5xx/429/timeouts into PlatformUnavailable (retried), 401/403
        # into PlatformAuthError and other 4xx into PlatformRejected, without the key.
        auth = {"Authorization": f"Bearer {self.options.api_key.get_secret_value()}"}
        return await self.http.request(
            method,
            self.options.base_url + path,
            json_body=body,
            headers={**auth, **(headers or {})},
            params=params,
        )

    @staticmethod
    def _platform_id(conversation: ConversationRef) -> str:
        if not conversation.external_ref:
            raise PlatformRejected(f"conversation {conversation.id} was never opened on reference")
        return quote(conversation.external_ref, safe="")


def _message_body(message: OutboundMessage) -> dict[str, Any]:
    # Reference Desk takes text only: files go as `name: url` lines, the fallback every
    # adapter may use for a platform without file messages.
    return {
        "text": with_links(message.text, message.attachments),
        "role": message.role,
        "author": message.author,
        "sent_at": message.sent_at.isoformat(),
    }


def _text(value: Any, field: str) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise MalformedPayload(f"{field} must be a non-empty string")


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPayload(f"{field} must be an object")
    return value


def _parse_event(payload: Any) -> list[InboundEvent]:
    """One platform event as at most one bridge event; MalformedPayload names the field."""
    payload = _object(payload, "the event")
    kind = _KINDS.get(str(payload.get("type")))
    event_id = _text(payload.get("id"), "id")
    if kind is None or event_id is None:
        # An event type the bridge has no use for is acknowledged, not refused: the
        # platform would otherwise redeliver it for ever.
        return []
    text = None
    if kind == "agent.message":
        message = _object(payload.get("message"), "message")
        agent = _object(message.get("author"), "message.author")
        if agent.get("type") != "agent":
            return []  # the bridge's own message, echoed back (author.type "api")
        text = _text(message.get("text"), "message.text")
        if text is None:
            raise MalformedPayload("message.text is missing")
    else:
        agent = _object(payload.get("agent") or {}, "agent")
    return [
        InboundEvent(
            kind=kind,
            # The platform's event id: a redelivered webhook carries the same one.
            event_id=event_id,
            external_ref=_text(payload.get("conversation_id"), "conversation_id"),
            # Ours, given as external_id at the open: the surest way back to it.
            conversation_id=_text(payload.get("external_id"), "external_id"),
            agent_id=_text(agent.get("id"), "agent.id"),
            agent_name=_text(agent.get("name"), "agent.name"),
            text=text,
        )
    ]
