"""The agent-side contract every live-chat platform adapter fulfils.

An adapter is a translator: bridge models in, platform calls out. It keeps no state
and writes no SQL; what must survive a crash lives in the bridge's outbox. A platform
that lacks an operation says so in `capabilities`, and the bridge does the next best
thing (history replayed as messages, the bridge's own signed join link).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol, Self

from pydantic import BaseModel

from bridge.attachments import Attachment
from bridge.errors import InvalidSignature, MalformedPayload
from bridge.input_limits import load_json
from bridge.ports.context import AdapterContext, NoOptions, validate_options


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a platform can do natively."""

    # Imports history with the conversation; otherwise the bridge replays it as messages.
    history: bool = False
    # Has its own join link; otherwise the bridge hands out its signed console link.
    join_url: bool = False
    # Can tell whether a human is available (check_availability).
    availability: bool = False
    # Accepts customer messages after the open. A platform where the customer already
    # talks to the agent directly (VivoChat's widget) has nothing to relay them to.
    messages: bool = True
    # Sends agent events (messages, joins, closes) to the bridge's webhook.
    inbound: bool = True
    # Can be polled for events where its webhooks are not set up (see `poll`).
    polling: bool = False


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message for the agent side (its text may be empty when it carries files)."""

    seq: int
    role: str
    text: str
    author: str | None
    sent_at: datetime
    # Links, never bytes: an adapter sends them as its platform's file messages, or as
    # `name: url` lines (`bridge.attachments.with_links`).
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class ConversationSnapshot:
    """What the agent side needs to open a conversation."""

    id: str
    channel: str
    main_channel: str
    region: str | None
    customer: dict[str, Any]
    metadata: dict[str, Any]
    settings: dict[str, Any]
    history: tuple[OutboundMessage, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class ConversationRef:
    """An opened conversation: our id and the platform's."""

    id: str
    channel: str
    external_ref: str | None


@dataclass(frozen=True, slots=True)
class OpenResult:
    """The platform's id for the new conversation, and its own join link if it has one."""

    external_ref: str
    join_url: str | None = None


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """A webhook as it arrived, for an adapter to verify and parse."""

    method: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    # The secret path segment, for platforms that cannot sign (Jivo, giosg, VivoChat).
    path_token: str | None = None

    def json(self) -> Any:
        """The body as JSON within the bridge's input limits, or MalformedPayload naming why."""
        return load_json(self.body, MalformedPayload)


# agent.typing is relayed to the bot at once and never stored (bridge/services/typing.py).
InboundKind = Literal[
    "agent.joined", "agent.message", "conversation.closed", "agent.presence", "agent.typing"
]
Presence = Literal["online", "offline", "absent"]


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """One thing that happened on the platform, in the bridge's terms.

    `event_id` is the platform's id for the event (or message); the bridge applies an
    event with a given id once, however often the platform redelivers it. The
    conversation is found by `conversation_id` (ours, when the platform echoes it), else
    by `external_ref` (the platform's), else by `customer_id`.
    """

    kind: InboundKind
    event_id: str
    external_ref: str | None = None
    conversation_id: str | None = None
    customer_id: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    text: str | None = None
    presence: Presence | None = None
    # Files an agent sent (agent.message): relayed to the bot as the message's attachments.
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class InboundReply:
    """What to answer the platform's webhook with (some platforms expect data back)."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"result": "ok"})


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    """What an adapter may read about a conversation to answer a webhook."""

    id: str
    status: str
    channel: str
    external_ref: str | None
    customer: dict[str, Any]
    metadata: dict[str, Any]
    history: tuple[OutboundMessage, ...]


class ConversationReader(Protocol):
    """Read-only access for adapters whose webhook replies carry conversation data."""

    async def find_active(
        self, channel: str, *, external_ref: str | None = None, customer_id: str | None = None
    ) -> ConversationInfo | None: ...


class AgentSideAdapter(ABC):
    """A live-chat platform where human agents answer."""

    platform: ClassVar[str]
    options_model: ClassVar[type[BaseModel]] = NoOptions
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, channel: str, options: BaseModel, context: AdapterContext) -> None:
        self.channel = channel
        self.options = options
        self.context = context

    @classmethod
    def from_settings(
        cls, channel: str, raw_options: dict[str, Any], context: AdapterContext
    ) -> Self:
        """Validate this channel's options; a bad one is a startup error naming the field."""
        where = (f"channels.{channel}.options", f"channel {channel!r} ({cls.platform})")
        return cls(channel, validate_options(cls.options_model, raw_options, *where), context)

    @abstractmethod
    async def open_conversation(self, conversation: ConversationSnapshot) -> OpenResult:
        """Create the conversation on the platform, with its history when supported."""

    @abstractmethod
    async def post_message(self, conversation: ConversationRef, message: OutboundMessage) -> None:
        """Post one customer (or bot) message into the platform's conversation."""

    @abstractmethod
    async def close_conversation(self, conversation: ConversationRef, reason: str) -> None:
        """End the conversation on the platform (closed, or handed back to the bot)."""

    async def post_history(
        self, conversation: ConversationRef, history: tuple[OutboundMessage, ...]
    ) -> None:
        """Replay history as messages: the fallback for platforms with no history import."""
        for message in history:
            await self.post_message(conversation, message)

    def join_url(self, conversation: ConversationRef) -> str | None:
        """The platform's own link to the conversation; None means use the bridge's link."""
        return None

    async def check_availability(self) -> bool | None:
        """Whether a human is available on this channel; None when the platform cannot say."""
        return None

    def poll_interval(self) -> float | None:
        """Seconds between polls when this channel is to be polled; None means no polling."""
        return None

    async def poll(self, cursor: str | None) -> tuple[list[InboundEvent], str | None]:
        """Events since `cursor` (opaque, adapter-made); returns them and the next cursor."""
        return [], cursor

    # -- inbound webhooks ------------------------------------------------------------------

    def verify_inbound(self, request: InboundRequest) -> None:
        """Check the webhook's signature or secret; raise InvalidSignature when it is wrong.

        The default refuses everything: a platform that sends webhooks must say how
        they are authenticated.
        """
        raise InvalidSignature(f"{self.platform} sends no webhooks to the bridge")

    def parse_inbound(self, request: InboundRequest) -> list[InboundEvent]:
        """The events in a verified webhook. Echoes of what the bridge posted are dropped here."""
        return []

    async def reply_inbound(
        self, request: InboundRequest, events: list[InboundEvent], reader: ConversationReader
    ) -> InboundReply:
        """The answer to the webhook, after its events were applied."""
        return InboundReply()
