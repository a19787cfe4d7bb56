"""The bot-side contract: how events reach a bot, and the gateway a bot platform's API calls.

A bot platform with an API of its own (Tovie's Operator API, Jivo's Bot API) is served
at `/bots/{name}/{path}` by its adapter, which translates each call into the same
`BotGateway` calls the bridge's own HTTP API makes. The gateway lists every call an
adapter may make, with its types, so a missing one is a type error, not a run-time check.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal, Protocol, Self

from pydantic import BaseModel

from bridge.errors import FieldProblem, NotFound
from bridge.models import AgentMessageRequest, CustomerMessageRequest, HandoffRequest
from bridge.ports.agent_side import InboundReply, InboundRequest
from bridge.ports.context import AdapterContext, NoOptions, validate_options

# The plain bot side (signed Standard Webhooks events to the handoff's callback_url): it
# delivers each bot event whose bot platform has no adapter of its own.
DEFAULT_BOT = "webhook"

Actor = Literal["bot", "agent"]


class HandedOff(Protocol):
    """A handed-off conversation, as much of it as a bot-side adapter reads."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def channel(self) -> str: ...

    @property
    def callback_url(self) -> str: ...


class StoredMessage(Protocol):
    """A message the bridge stored, as much of it as a bot-side adapter reads."""

    @property
    def seq(self) -> int: ...

    @property
    def role(self) -> str: ...

    @property
    def text(self) -> str: ...


class BotGateway(Protocol):
    """Every call a bot-side adapter may make of the bridge (HandoffService makes them all)."""

    async def open(self, request: HandoffRequest) -> tuple[HandedOff, bool]:
        """Route and open a handoff; the existing active one, and whether it is new."""
        ...

    async def customer_message(
        self, conversation_id: str, request: CustomerMessageRequest
    ) -> tuple[StoredMessage, bool]:
        """Relay a customer's message to the agent side; a repeated id is stored once."""
        ...

    async def agent_joined(self, conversation_id: str, name: str) -> HandedOff:
        """An agent took the conversation (for bot platforms whose agents answer in-house)."""
        ...

    async def agent_message(
        self, conversation_id: str, request: AgentMessageRequest, author: str | None
    ) -> tuple[StoredMessage, bool]:
        """An agent's reply, relayed to the bot."""
        ...

    async def close(self, conversation_id: str, by: Actor, reason: str | None) -> HandedOff:
        """End the conversation and tell the other side."""
        ...

    async def release(self, conversation_id: str, by: Actor, reason: str | None) -> HandedOff:
        """Hand the conversation back to the bot and tell the other side."""
        ...

    async def find_by_bot_conversation(
        self, bot_platform: str, bot_conversation_id: str
    ) -> HandedOff | None:
        """The newest conversation handed over from this bot conversation, if any."""
        ...

    async def destinations(self) -> list[dict[str, Any]]:
        """Where a handoff may go: each main channel with its region codes."""
        ...

    async def notify_bot(
        self,
        bot: str,
        bot_conversation_id: str,
        target: str,
        event_type: str,
        data: dict[str, Any],
    ) -> None:
        """Queue an event for this bot adapter to deliver to `target`, durably and in order."""
        ...

    async def put_state(self, adapter: str, key: str, value: str) -> None:
        """Keep a small value for an adapter."""
        ...

    async def get_state(self, adapter: str, key: str) -> str | None:
        """A value an adapter kept."""
        ...


class BotSideAdapter(ABC):
    """A bot platform: how events reach the bot, and (optionally) its own inbound API."""

    platform: ClassVar[str]
    options_model: ClassVar[type[BaseModel]] = NoOptions

    def __init__(self, name: str, options: BaseModel, context: AdapterContext) -> None:
        self.name = name
        self.options = options
        self.context = context

    @classmethod
    def from_settings(cls, name: str, raw_options: dict[str, Any], context: AdapterContext) -> Self:
        """Validate this bot's options; a bad one is a startup error naming the field."""
        where = (f"bots.{name}.options", f"bot {name!r} ({cls.platform})")
        return cls(name, validate_options(cls.options_model, raw_options, *where), context)

    @abstractmethod
    async def deliver_event(self, target: str, event_id: str, body: str) -> None:
        """Deliver one bridge event (`{type, timestamp, data}` JSON) to the bot at `target`."""

    async def handle_request(
        self, path: str, request: InboundRequest, gateway: BotGateway
    ) -> InboundReply:
        """Serve the platform's own inbound API at `/bots/{name}/{path}` (Tovie, Jivo).

        Verify the request first (a wrong secret raises InvalidSignature), then call the
        gateway. The default has no such API.
        """
        raise NotFound(f"bot {self.name!r} has no inbound API", [FieldProblem("path", path)])
