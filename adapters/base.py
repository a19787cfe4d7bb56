"""The agent-side contract every live-chat platform adapter fulfils.

An adapter is a translator: bridge models in, platform calls out. It keeps no state
and writes no SQL; what must survive a crash lives in the bridge's outbox. A platform
that lacks an operation says so in `capabilities`, and the bridge does the next best
thing (history replayed as messages, the bridge's own signed join link).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from adapters.http import HttpClient
from bridge.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a platform can do natively."""

    history: bool = False
    join_url: bool = False
    availability: bool = False


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message for the agent side."""

    seq: int
    role: str
    text: str
    author: str | None
    sent_at: datetime


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


class NoOptions(BaseModel):
    """For platforms that take no options."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """Shared resources an adapter may use: the app's one HTTP client, and extras by name."""

    http: HttpClient
    extras: dict[str, Any] = field(default_factory=dict)


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
        try:
            options = cls.options_model.model_validate(raw_options)
        except ValidationError as exc:
            problems = "; ".join(
                f"channels.{channel}.options.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(f"channel {channel!r} ({cls.platform}): {problems}") from exc
        return cls(channel, options, context)

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
