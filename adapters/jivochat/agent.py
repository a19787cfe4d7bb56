"""JivoChat as the agent side, in one of two modes chosen by the channel's `mode` option.

`bot_api` (the business channel): the chat already lives in Jivo and the bridge is its
bot provider. Opening the handoff sends the Bot API's `INVITE_AGENT` for the chat; Jivo
puts the chat in front of an agent, who sees the whole transcript there, and the customer
goes on writing in Jivo's own widget. So `Capabilities(history=True, messages=False)`
and no inbound webhook on `/webhooks/{channel}`: Jivo reports the agent's join, messages
and the close to the provider URL, which the bot side (`JivoBotProvider`) serves.

`chat_api`: Jivo's Chat API for custom channels. The bridge is the client side of a
Jivo channel: it checks `GET {endpoint}/status` (0 or 1), opens the chat with an intro
message from the customer (name, e-mail, and the handoff's metadata, which a Chat API
client has no other place for), POSTs the customer's messages (and the replayed history)
as `{sender, message{type:"text"}}`, and Jivo POSTs the agent's replies to
`/webhooks/{channel}/{webhook_token}`. The Chat API cannot end a chat, so a close is a
last message (`close_notice`) the agent reads.

Assumptions where the public docs are thin:

- `bot_api`: `ConversationSnapshot` does not carry the bot's conversation id, so the
  handoff's metadata must: `jivo_chat_id` (required) and `jivo_client_id` (else the
  customer id). The bot side hands the bot a ready-made `handoff` block with both.
  INVITE_AGENT's `id` is derived from the conversation id, so a retried open repeats it.
  The provider cannot close a Jivo chat, so a close by the bot changes nothing in Jivo.
- `chat_api`: the Jivo client id (`sender.id`) is the bridge's customer id, which is also
  `external_ref`; the agent's reply names it as `recipient.id`. A reply's `message.id`
  is its event id (a digest of the body when there is none). A webhook without a
  `recipient` is a client-side message, i.e. an echo of what the bridge posted, and is
  dropped, as is one whose message id is one the bridge made. Jivo sends no join event:
  the bridge takes the first reply as the join. Files arrive as `photo`/`document`/...
  with a `file` URL and become the message's attachment (its MIME type guessed from the
  name); typing and read notices are ignored. A customer's attachments go out as Chat API
  file messages after its text, `photo` for images and `document` otherwise, each with an
  id of its own (`...-{seq}-f{n}`). Only the customer can speak on a Chat API channel,
  so replayed bot lines show as the customer's; the intro message says so.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel

from adapters.jivochat.options import (
    BotApiChannelOptions,
    ChatApiChannelOptions,
    JivoChannelOptions,
)
from adapters.jivochat.wire import (
    INVITE_AGENT,
    as_id,
    compact,
    event_key,
    optional_object,
    optional_text,
    secret_url,
    short_id,
    stable_uuid,
)
from adapters.kit import PlatformAdapter, UrlToken, webhook_object
from bridge.attachments import Attachment, from_platform
from bridge.errors import MalformedPayload, PlatformRejected
from bridge.models import MAX_TEXT
from bridge.ports import agent_side as port
from bridge.ports.context import AdapterContext

log = logging.getLogger(__name__)

# Ids of the messages the bridge posts start with this, so their echoes are recognised.
OUR_ID_PREFIX = "bridge-"
_FILE_TYPES = {"photo", "document", "video", "audio", "voice", "sticker"}

ModeT = TypeVar("ModeT", BotApiChannelOptions, ChatApiChannelOptions)


class JivoChatAdapter(PlatformAdapter[ModeT]):
    """A Jivo channel: `mode: bot_api` is a JivoBotApiAdapter, `chat_api` a JivoChatApiAdapter."""

    platform: ClassVar[str] = "jivochat"
    # Both modes' options; the one `mode` chose is each class's typed `options`.
    options_model: ClassVar[type[BaseModel]] = JivoChannelOptions

    def __new__(
        cls, channel: str, options: BaseModel, context: AdapterContext
    ) -> JivoChatAdapter[Any]:
        # What the platform can do depends on the mode, and `capabilities` is a class
        # attribute of the contract: so each mode is its own class, picked here.
        if cls is not JivoChatAdapter:
            return super().__new__(cls)
        mode = options.root if isinstance(options, JivoChannelOptions) else options
        if isinstance(mode, ChatApiChannelOptions):
            return super().__new__(JivoChatApiAdapter)
        return super().__new__(JivoBotApiAdapter)


class JivoBotApiAdapter(JivoChatAdapter[BotApiChannelOptions]):
    """JivoChat's agents via the Bot API's INVITE_AGENT (`mode: bot_api`)."""

    capabilities: ClassVar[port.Capabilities] = port.Capabilities(
        history=True, messages=False, inbound=False
    )

    async def open_conversation(self, conversation: port.ConversationSnapshot) -> port.OpenResult:
        """Send INVITE_AGENT for the Jivo chat the bot handed over; the chat id is the ref."""
        chat_id = conversation.metadata.get("jivo_chat_id")
        client_id = conversation.metadata.get("jivo_client_id") or conversation.customer.get("id")
        if chat_id in (None, "") or client_id in (None, ""):
            raise PlatformRejected(
                "a Jivo bot_api handoff needs metadata.jivo_chat_id (and jivo_client_id or"
                " customer.id): the bot API invites an agent into an existing Jivo chat"
            )
        options = self.options
        invite = {
            "event": INVITE_AGENT,
            "id": stable_uuid("invite", conversation.id),
            # Jivo wants both ids as strings.
            "client_id": str(client_id),
            "chat_id": str(chat_id),
        }
        url = secret_url(
            options.bot_api_url,
            options.bot_api_path,
            options.token,
            provider_id=options.provider_id,
        )
        await self.http.request("POST", url, json_body=invite)
        log.info("jivochat.invite_agent", extra={"conversation": conversation.id})
        return port.OpenResult(external_ref=str(chat_id))

    async def post_message(
        self, conversation: port.ConversationRef, message: port.OutboundMessage
    ) -> None:
        """Never called (Capabilities.messages is False): the customer writes in Jivo itself."""
        raise PlatformRejected(
            "a Jivo bot_api channel relays no messages: the customer talks to the agent in Jivo"
        )

    async def close_conversation(self, conversation: port.ConversationRef, reason: str) -> None:
        """Nothing to call: the Bot API lets a provider invite an agent, not end a chat."""
        log.info("jivochat.close_not_supported", extra={"conversation": conversation.id})


class JivoChatApiAdapter(JivoChatAdapter[ChatApiChannelOptions]):
    """JivoChat's Chat API (`mode: chat_api`): the bridge is a custom client channel."""

    capabilities: ClassVar[port.Capabilities] = port.Capabilities(
        history=False, messages=True, availability=True, inbound=True
    )
    # Jivo signs nothing: the webhook URL's secret segment is compared in constant time.
    webhook_auth: ClassVar[UrlToken] = UrlToken(
        refusal="the Jivo Chat API webhook URL token does not match"
    )

    def _endpoint(self, suffix: str = "") -> str:
        options = self.options
        return secret_url(
            options.chat_api_url,
            options.chat_api_path + suffix,
            options.endpoint_secret,
            public_id=options.public_id,
        )

    async def _send(self, sender: dict[str, Any], message_id: str, text: str) -> None:
        await self._post(sender, {"type": "text", "id": message_id, "text": text})

    async def _post(self, sender: dict[str, Any], message: dict[str, Any]) -> None:
        # The endpoint's URL holds its secret; the client's errors never show it.
        body = {"sender": sender, "message": message}
        await self.http.request("POST", self._endpoint(), json_body=body)

    async def check_availability(self) -> bool:
        """`GET {endpoint}/status`: 1 when an agent can take the chat, 0 when not."""
        response = await self.http.request("GET", self._endpoint(self.options.status_suffix))
        answer = response.body.decode("utf-8", "replace").strip()
        if answer not in ("0", "1"):
            quoted = response.redact(answer)[:40]
            raise PlatformRejected(f"Jivo's status answered {quoted!r}, not 0 or 1")
        return answer == "1"

    async def open_conversation(self, conversation: port.ConversationSnapshot) -> port.OpenResult:
        """Introduce the customer (and the handoff's metadata) in a new Jivo chat."""
        customer = conversation.customer
        client_id = str(customer["id"])
        # The intro also names the Jivo client: later messages carry only its id.
        await self._send(
            _sender(customer), f"{OUR_ID_PREFIX}{conversation.id}-intro", _intro(conversation)
        )
        return port.OpenResult(external_ref=client_id)

    async def post_message(
        self, conversation: port.ConversationRef, message: port.OutboundMessage
    ) -> None:
        """POST one message as the customer; its id is stable, so a retry repeats it."""
        if conversation.external_ref is None:
            raise PlatformRejected(f"conversation {conversation.id} was never opened in Jivo")
        # Only the client id: an author's name here would rename the Jivo client.
        client = {"id": conversation.external_ref}
        message_id = f"{OUR_ID_PREFIX}{conversation.id}-{message.seq}"
        if message.text:
            await self._send(client, message_id, message.text)
        for index, attachment in enumerate(message.attachments, start=1):
            await self._post(
                client,
                {
                    "type": "photo" if attachment.is_image() else "document",
                    "id": f"{message_id}-f{index}",
                    "file": attachment.url,
                    "file_name": attachment.name,
                },
            )

    async def close_conversation(self, conversation: port.ConversationRef, reason: str) -> None:
        """Tell the agent in the chat: the Chat API has no call that ends a chat."""
        if conversation.external_ref is None:
            return
        notice = self.options.close_notice.format(reason=reason)
        await self._send(
            {"id": conversation.external_ref}, f"{OUR_ID_PREFIX}{conversation.id}-close", notice
        )

    def parse_inbound(self, request: port.InboundRequest) -> list[port.InboundEvent]:
        """An agent's reply as agent.message; echoes, typing and read notices are dropped."""
        body = webhook_object(request, "a Jivo event")
        message = optional_object(body, "message")
        if not message:
            raise MalformedPayload("a Jivo Chat API event needs a 'message' object")
        recipient = optional_object(body, "recipient")
        message_id = optional_text(message, "id")
        if not recipient or (message_id or "").startswith(OUR_ID_PREFIX):
            # A client-side message: what the bridge itself posted, come back.
            return []
        text, files = _message_parts(message)
        if not text and not files:
            return []
        sender = optional_object(body, "sender")
        client_id = as_id(recipient.get("id"), "recipient.id")
        return [
            port.InboundEvent(
                kind="agent.message",
                event_id=short_id(message_id or event_key({}, request.body)),
                external_ref=client_id,
                customer_id=client_id,
                agent_id=optional_text(sender, "id"),
                agent_name=optional_text(sender, "name"),
                text=text[:MAX_TEXT],
                attachments=files,
            )
        ]


def _message_parts(message: dict[str, Any]) -> tuple[str, tuple[Attachment, ...]]:
    """A reply's text, or its file as an attachment (a link line when it is no usable one)."""
    kind = optional_text(message, "type") or "text"
    if kind == "text":
        text = optional_text(message, "text")
        return (text if text and text.strip() else ""), ()
    if kind in _FILE_TYPES:
        link = optional_text(message, "file")
        name = optional_text(message, "file_name")
        if link:
            found = from_platform(link, name)
            return ("", (found,)) if found else (f"{name or kind}: {link}", ())
    return "", ()


def _sender(customer: dict[str, Any]) -> dict[str, Any]:
    name = " ".join(str(customer[k]) for k in ("firstname", "lastname") if customer.get(k))
    return compact(
        {
            "id": str(customer["id"]),
            "name": name or None,
            "email": customer.get("email"),
            "phone": customer.get("phone"),
        }
    )


def _intro(conversation: port.ConversationSnapshot) -> str:
    details = [f"{key}: {value}" for key, value in conversation.metadata.items()]
    labels = conversation.customer.get("labels") or []
    if labels:
        details.append("labels: " + ", ".join(str(label) for label in labels))
    if conversation.region:
        details.append(f"region: {conversation.region}")
    lines = [
        "Handed over by the bot. The chat so far follows; the bot's lines show as the"
        " customer's, since only the customer can write on this channel."
    ]
    if details:
        lines.append("; ".join(details))
    return "\n".join(lines)
