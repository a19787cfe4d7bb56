"""Wire and domain models (pydantic v2). The API validates requests into these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from bridge.attachments import Attachment
from bridge.input_limits import MAX_JSON_DEPTH, json_depth

Role = Literal["customer", "bot", "agent", "system"]
MetadataValue = str | int | float | bool | None

MAX_TEXT = 10_000
MAX_HISTORY = 1_000


def _text_only(value: Any) -> Any:
    # JSON has no date type, and a number would be taken as Unix seconds, which the API
    # never promised: a date-time is ISO 8601 text.
    if isinstance(value, int | float):
        raise ValueError("must be an ISO 8601 date-time string")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_text_only)]

# A customer's id is text; a number (Chatvisor's example id is one) is kept as its text.
CustomerId = Annotated[
    str,
    Field(min_length=1, max_length=256),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 256}, {"type": "integer"}]}
    ),
]


class _Strict(BaseModel):
    # Unknown fields are refused so a misspelt field gets a clear answer instead of
    # being silently dropped.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _WithFiles(_Strict):
    """A message's files and text: either may be left out, not both."""

    # The document says so too: a text with something to read, or at least one file.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["text"], "properties": {"text": {"pattern": "\\S"}}},
                {"required": ["attachments"], "properties": {"attachments": {"minItems": 1}}},
            ]
        }
    )

    # Files as links; how many a message may carry is a setting (attachments.max_count).
    attachments: list[Attachment] = Field(
        default_factory=list,
        max_length=100,
        description="Files as links; limits in the `attachments` settings.",
    )
    # Empty when the message is only files (a screenshot with nothing to say). Declared
    # after `attachments`, so its check sees them; validated when left out too.
    text: str = Field(default="", max_length=MAX_TEXT, validate_default=True)

    @field_validator("text")
    @classmethod
    def _says_something(cls, text: str, info: ValidationInfo) -> str:
        # Attachments that failed their own checks are reported there, not here again.
        if not text and info.data.get("attachments") == []:
            raise ValueError("a message needs a text, attachments or both")
        return text


class Customer(_Strict):
    """The customer, shaped like Chatvisor's customer tag."""

    id: CustomerId
    email: str | None = Field(default=None, max_length=320)
    firstname: str | None = Field(default=None, max_length=256)
    lastname: str | None = Field(default=None, max_length=256)
    labels: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # Chatvisor's example id is a number; the bridge keeps every id as text.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    def display_name(self) -> str:
        """First and last name, else the id."""
        name = " ".join(part for part in (self.firstname, self.lastname) if part)
        return name or self.id


class BotRef(_Strict):
    """Which bot platform handed over, and its own id for the conversation."""

    platform: str = Field(min_length=1, max_length=64)
    conversation_id: str = Field(min_length=1, max_length=256)


class HistoryMessage(_WithFiles):
    """One message of the chat before the handoff."""

    role: Role
    # Optional: a bot without timestamps is not refused; the service dates such messages
    # at the receipt, in the order given (see services.messages.history_values).
    sent_at: Timestamp | None = None
    author: str | None = Field(default=None, max_length=256)


class HandoffRequest(_Strict):
    """The bot's transfer-to-agent event."""

    bot: BotRef
    customer: Customer
    # A main channel; the configured default when absent.
    channel: str | None = Field(default=None, max_length=128)
    region: str | None = Field(default=None, max_length=128)
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    history: list[HistoryMessage] = Field(default_factory=list, max_length=MAX_HISTORY)
    settings: dict[str, Any] = Field(default_factory=dict)
    callback_url: HttpUrl

    @field_validator("settings")
    @classmethod
    def _settings_nesting(cls, settings: dict[str, Any]) -> dict[str, Any]:
        # A setting may be JSON text (Kommunicate sends skipBotEvent so) that routing
        # decodes later: it is held to a body's nesting limit, or decoding it would recurse.
        for key, value in settings.items():
            raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else b""
            if json_depth(raw) > MAX_JSON_DEPTH:
                raise ValueError(f"{key} holds JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return settings


class CustomerMessageRequest(_WithFiles):
    """A customer message to relay to the agent side."""

    # The bot's id for the message: a retried send with the same id is stored once.
    id: str | None = Field(default=None, min_length=1, max_length=256)
    sent_at: Timestamp | None = None


class AgentMessageRequest(_WithFiles):
    """A message typed by an agent in the console (or relayed from their platform)."""

    client_id: str | None = Field(default=None, min_length=1, max_length=256)


class JoinRequest(_Strict):
    """An agent joining a conversation from the console."""

    name: str = Field(min_length=1, max_length=128)


class ReasonRequest(_Strict):
    """An optional reason given when closing or releasing."""

    reason: str | None = Field(default=None, max_length=1_000)


Disposition = Literal["resolved", "needs_bot_follow_up", "other"]


class HandbackRequest(_Strict):
    """An agent hands the chat back to the bot, optionally saying how it went."""

    reason: str | None = Field(default=None, max_length=1_000)
    disposition: Disposition | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20
    )
    note: str | None = Field(default=None, max_length=2_000)

    @field_validator("tags")
    @classmethod
    def _short_tags(cls, tags: list[str]) -> list[str]:
        # Kept in order, each once: a tag is a label for the bot, not a sentence.
        for tag in tags:
            if not 1 <= len(tag.strip()) <= 64:
                raise ValueError("each tag must be 1 to 64 characters")
        return list(dict.fromkeys(tag.strip() for tag in tags))


class ReleaseRequest(HandbackRequest):
    """A release through the API: by the bot, or for the assigned agent (`agent_id`)."""

    agent_id: str | None = Field(default=None, min_length=1, max_length=128)


class TransferRequest(_Strict):
    """Where a chat goes: exactly one of an agent, a team or a channel; a note for them."""

    agent_id: str | None = Field(default=None, min_length=1, max_length=128)
    team_id: str | None = Field(default=None, min_length=1, max_length=128)
    channel: str | None = Field(default=None, min_length=1, max_length=128)
    note: str | None = Field(default=None, max_length=2_000)


class MetadataUpdate(_Strict):
    """New metadata for an active conversation (Kommunicate's updateConversationMetadata)."""

    metadata: dict[str, MetadataValue]
    # Merge into the existing metadata by default; replace it all when true.
    replace: bool = False


class CustomerUpdate(_Strict):
    """Re-identify or tag a customer: profile fields and labels to add or remove."""

    customer_id: CustomerId
    email: str | None = Field(default=None, max_length=320)
    firstname: str | None = Field(default=None, max_length=256)
    lastname: str | None = Field(default=None, max_length=256)
    labels_add: list[str] = Field(default_factory=list, max_length=100)
    labels_remove: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("customer_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value


class PresenceUpdate(_Strict):
    """An agent's presence on a channel, pushed from outside."""

    channel: str = Field(min_length=1, max_length=128)
    # As long as agents.id: an unknown agent is created with this id.
    agent_id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=256)
    presence: Literal["online", "offline", "absent"]


class SubscriptionRequest(_Strict):
    """A CRM or helpdesk endpoint that wants lifecycle events."""

    url: HttpUrl
    events: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    description: str | None = Field(default=None, max_length=256)
    # Whose conversations it receives: an organization token's own (the default for one);
    # an admin may name any, or none for every organization's.
    organization_id: str | None = Field(default=None, min_length=1, max_length=128)


class AssignRequest(_Strict):
    """Which agent takes a pending chat."""

    agent_id: str = Field(min_length=1, max_length=128)
