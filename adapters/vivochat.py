"""VivoChat (agent side): the customer talks to the operator in VivoChat's own widget.

VivoChat (docs.vivochat.ai: /routes/, /widgetapi/, /webhookapi/, /verification/) has no
server-side API to open a chat, post a message, import history or close a chat. The chat
is opened by the site: after the bot handed off, the page starts the widget with
`vivo_api.setUserToken(<customer id>)` and `vivo_api.setRegion(<code>)` before
`vivo_api.run()`, and VivoChat routes it to the channel its Regions table gives that code,
the same code the bridge routed on. What VivoChat does offer, and what this adapter does
with it:

- `chat_accepted` (POSTed when an operator accepts a dialog) becomes `agent.joined`, and
  its reply hands the operator the bot's transcript and the handoff metadata (the dialog's
  "Additional" section, `customData`) and the customer's contact details (`contactInfo`).
  That reply is this platform's history import, hence `Capabilities(history=True)`.
- `client_check_token` (the customer-verification hook) is answered with the customer's
  `clientId` and contact details while the customer has an active handoff.

Assumptions where the public docs are thin:

- The site passes the bridge's customer id as the widget's userToken, so
  `open_conversation` just returns it as `external_ref`. VivoChat answers
  `client_check_token` with history and contact details to whoever presents a token, so
  that id must be hard to guess (an opaque per-customer id, never an e-mail or a counter).
- No webhook is signed: each VivoChat URL carries a secret path segment
  (`/webhooks/{channel}/{token}`), compared in constant time.
- `customData` shows plain text, one `{title, content}` per entry: one entry per metadata
  key (keys as titles, in the bot's order), the customer's labels, the transcript as one
  block (newest messages kept when it is too long), and the bridge's conversation id.
  `contactInfo` leaves out what the bridge does not know rather than sending nulls.
- An unknown token gets `{"result": "error"}` with HTTP 200 and no `clientId`: the docs
  say a reply without `clientId` leaves the visitor anonymous; a 4xx might read as the
  hook being down.
- `channel.id` of a `chat_accepted` is compared with the configured `channel_id`. The docs
  allow one URL for several channels, and VivoChat finds a customer's active chat across
  all routing channels, so a mismatch is logged, not refused; the bridge likewise finds
  the conversation by customer across the main channel's channels.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from adapters.kit import EnvSecret, PlatformAdapter, UrlToken, webhook_object
from bridge.errors import MalformedPayload
from bridge.ports.agent_side import (
    Capabilities,
    ConversationInfo,
    ConversationReader,
    ConversationRef,
    ConversationSnapshot,
    InboundEvent,
    InboundReply,
    InboundRequest,
    OpenResult,
    OutboundMessage,
)

log = logging.getLogger(__name__)

# Shorter secrets in a URL are guessable; the operator generates this once.
MIN_TOKEN_LENGTH = 16
_ROLE_LABELS = {"customer": "Customer", "bot": "Bot", "agent": "Agent", "system": "System"}


class VivoChatOptions(BaseModel):
    """A VivoChat channel's options."""

    model_config = ConfigDict(extra="forbid")

    # The secret path segment of the webhook URLs set in VivoChat. VivoChat signs
    # nothing, so the URL itself is the credential: it names an environment variable.
    webhook_token: EnvSecret
    # The VivoChat channel this bridge channel stands for: the `channel.id` its
    # webhooks carry (the channel's Regions code should equal the bridge's code).
    channel_id: str = Field(min_length=1, max_length=256)
    # Who the bot is told joined: the webhook does not name the operator.
    agent_name: str = Field(default="VivoChat operator", min_length=1, max_length=128)
    transcript_title: str = Field(default="Bot conversation", min_length=1)
    labels_title: str = Field(default="Labels", min_length=1)
    reference_title: str = Field(default="Handoff ID", min_length=1)
    # The operator's panel is not a document viewer; keep the newest messages that fit.
    transcript_max_chars: int = Field(default=8000, ge=500, le=100_000)

    @field_validator("webhook_token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the secret must be at least {MIN_TOKEN_LENGTH} characters long")
        return value


class _Channel(BaseModel):
    # Be liberal: VivoChat may add fields; only the id matters here.
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    type: str | None = None
    id: str = Field(min_length=1)


class ChatAccepted(BaseModel):
    """`chat_accepted`: an operator accepted the dialog."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    type: Literal["chat_accepted"]
    user_token: str | None = Field(default=None, alias="userToken")
    chat_id: str = Field(alias="chatId", min_length=1, max_length=256)
    channel: _Channel


class ClientCheckToken(BaseModel):
    """`client_check_token`: VivoChat asks who the widget's userToken belongs to."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    type: Literal["client_check_token"]
    user_token: str | None = Field(default=None, alias="userToken")


_MODELS: dict[str, type[ChatAccepted] | type[ClientCheckToken]] = {
    "chat_accepted": ChatAccepted,
    "client_check_token": ClientCheckToken,
}


def parse_payload(request: InboundRequest) -> ChatAccepted | ClientCheckToken:
    """The webhook as one of VivoChat's documented payloads, or MalformedPayload."""
    data = webhook_object(request, "a VivoChat webhook body")
    kind = data.get("type")
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(_MODELS))
        raise MalformedPayload(f"type: unknown VivoChat event {kind!r} (known: {known})")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise MalformedPayload(f"{kind}: {problems}") from exc


def _token(value: str | None) -> str | None:
    # An empty token is what a page sends after `setUserToken("")`: nobody to match.
    if value is None:
        return None
    return value.strip() or None


def contact_info(customer: dict[str, Any]) -> dict[str, str]:
    """VivoChat's `contactInfo` from the bridge's customer; unknown fields are left out."""
    name = " ".join(str(customer[k]) for k in ("firstname", "lastname") if customer.get(k))
    info = {"name": name, "phone": customer.get("phone"), "email": customer.get("email")}
    return {key: str(value) for key, value in info.items() if value}


def _speaker(message: OutboundMessage) -> str:
    label = _ROLE_LABELS.get(message.role, message.role.capitalize())
    if message.author and message.author.strip().lower() != message.role:
        return f"{label} ({message.author})"
    return label


def _line(message: OutboundMessage) -> str:
    when = message.sent_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    # Continuation lines are indented so each message still reads as one entry.
    text = message.text.replace("\r\n", "\n").replace("\n", "\n    ")
    return f"[{when}] {_speaker(message)}: {text}"


def render_transcript(history: tuple[OutboundMessage, ...], max_chars: int) -> str:
    """The messages as readable lines, oldest first; the oldest go first when too long."""
    lines = [_line(m) for m in history]
    whole = "\n".join(lines)
    if len(whole) <= max_chars:
        return whole
    # Room for the "… N earlier messages not shown" line.
    budget = max_chars - 64
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) + 1 > budget:
            break
        kept.append(line)
        size += len(line) + 1
    if not kept:
        # The newest message alone is too long: cut it rather than show nothing.
        kept = [lines[-1][: budget - 1] + "…"]
    kept.reverse()
    omitted = len(lines) - len(kept)
    if omitted:
        kept.insert(0, f"… {omitted} earlier message(s) not shown")
    return "\n".join(kept)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class VivoChatAdapter(PlatformAdapter[VivoChatOptions]):
    """VivoChat: routing by the widget's region code, history handed over on accept."""

    platform: ClassVar[str] = "vivochat"
    # History goes out in the chat_accepted reply; the customer already talks to the
    # operator in the widget, so there is nothing to relay messages to; no join link.
    capabilities: ClassVar[Capabilities] = Capabilities(
        history=True, join_url=False, messages=False, inbound=True
    )
    # VivoChat documents no signature: each webhook URL carries a secret path segment.
    webhook_auth: ClassVar[UrlToken] = UrlToken(
        refusal="the VivoChat webhook URL token does not match"
    )

    async def open_conversation(self, conversation: ConversationSnapshot) -> OpenResult:
        """Return the customer id as the platform's reference; VivoChat needs no call.

        There is no API to open a chat: the site's widget opens it with this id as its
        userToken and the region code as `setRegion()`. The conversation is matched when
        VivoChat calls back with that token, and the history goes out then, in the
        `chat_accepted` reply, so nothing is lost by not calling anything now.
        """
        customer_id = str(conversation.customer.get("id") or "")
        if not customer_id:
            # Dispatch never builds a snapshot without one; fail loudly if it ever does.
            raise ValueError(f"conversation {conversation.id} has no customer id")
        log.info(
            "vivochat.awaiting_widget",
            extra={"conversation": conversation.id, "channel": self.channel},
        )
        return OpenResult(external_ref=customer_id)

    async def post_message(self, conversation: ConversationRef, message: OutboundMessage) -> None:
        """Do nothing: VivoChat has no API to post into a dialog.

        The bridge does not send these (capabilities.messages is False); the customer
        writes to the operator in the widget. Raising would only park a dead delivery.
        """
        log.info(
            "vivochat.message_not_relayed",
            extra={"conversation": conversation.id, "seq": message.seq},
        )

    async def close_conversation(self, conversation: ConversationRef, reason: str) -> None:
        """Log only: VivoChat has no API to close a dialog; its operator closes it there.

        The bridge's conversation is closed on the bridge's side already; failing here
        would retry a call that cannot exist and finally report a false failure.
        """
        log.info(
            "vivochat.close_not_supported",
            extra={"conversation": conversation.id, "channel": self.channel},
        )

    # -- inbound -----------------------------------------------------------------------

    def parse_inbound(self, request: InboundRequest) -> list[InboundEvent]:
        """`chat_accepted` with a userToken is an agent join; nothing else is an event.

        VivoChat sends no message webhooks, so there are no echoes of the bridge's own
        messages to drop. A chat accepted without a token is a visitor who never came
        through the bot: there is no conversation to join, and it is answered plainly.
        """
        payload = parse_payload(request)
        if not isinstance(payload, ChatAccepted):
            return []
        if payload.channel.id != self.options.channel_id:
            log.warning(
                "vivochat.channel_mismatch",
                extra={
                    "channel": self.channel,
                    "expected": self.options.channel_id,
                    "received": payload.channel.id,
                    "chat": payload.chat_id,
                },
            )
        customer_id = _token(payload.user_token)
        if customer_id is None:
            log.info("vivochat.anonymous_chat", extra={"chat": payload.chat_id})
            return []
        return [
            InboundEvent(
                kind="agent.joined",
                # VivoChat's dialog id: a redelivered webhook carries the same one.
                event_id=payload.chat_id,
                customer_id=customer_id,
                agent_name=self.options.agent_name,
            )
        ]

    async def reply_inbound(
        self, request: InboundRequest, events: list[InboundEvent], reader: ConversationReader
    ) -> InboundReply:
        """Answer with the conversation's data for the operator, or the token check."""
        payload = parse_payload(request)
        customer_id = _token(payload.user_token)
        info = None
        if customer_id is not None:
            info = await reader.find_active(self.channel, customer_id=customer_id)
        if isinstance(payload, ClientCheckToken):
            return InboundReply(body=self.token_check_reply(customer_id, info))
        return InboundReply(body=self.chat_accepted_reply(info))

    def token_check_reply(
        self, customer_id: str | None, info: ConversationInfo | None
    ) -> dict[str, Any]:
        """`client_check_token`'s answer: the client and contacts, or a clear refusal."""
        if customer_id is None or info is None:
            return {
                "result": "error",
                "error": "unknown_token",
                "message": "no active handoff for this userToken",
            }
        body: dict[str, Any] = {"result": "ok", "clientId": customer_id}
        contacts = contact_info(info.customer)
        if contacts:
            body["contactInfo"] = contacts
        return body

    def chat_accepted_reply(self, info: ConversationInfo | None) -> dict[str, Any]:
        """`chat_accepted`'s answer: metadata, labels, transcript and contacts for the operator."""
        if info is None:
            return {"result": "ok"}
        options = self.options
        custom: list[dict[str, str]] = [
            {"title": str(key), "content": _text(value)}
            for key, value in info.metadata.items()
            if value is not None
        ]
        labels = [str(label) for label in info.customer.get("labels") or ()]
        if labels:
            custom.append({"title": options.labels_title, "content": ", ".join(labels)})
        if info.history:
            transcript = render_transcript(info.history, options.transcript_max_chars)
            custom.append({"title": options.transcript_title, "content": transcript})
        custom.append({"title": options.reference_title, "content": info.id})
        body: dict[str, Any] = {"result": "ok", "customData": custom}
        contacts = contact_info(info.customer)
        if contacts:
            body["contactInfo"] = contacts
        return body
