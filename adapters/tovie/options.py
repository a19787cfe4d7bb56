"""A Tovie bot's options: the apiUrl token, the history buffer, how events are worded."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from adapters.kit import EnvSecret
from bridge.domain.reasons import Reason
from bridge.models import MAX_HISTORY

_FILE_EXTENSIONS = [
    "pdf", "png", "jpg", "jpeg", "gif", "webp", "svg", "txt", "csv", "doc", "docx",
    "xls", "xlsx", "ppt", "pptx", "odt", "zip", "rar", "7z", "mp3", "ogg", "wav", "mp4", "mov",
]  # fmt: skip


class ToviePaths(BaseModel):
    """The Operator API method names Tovie appends to the apiUrl (the documented ones)."""

    model_config = ConfigDict(extra="forbid")

    set_webhook: str = Field(default="setWebhook", min_length=1)
    get_destinations: str = Field(default="getDestinations", min_length=1)
    select_destination: str = Field(default="selectDestination", min_length=1)
    send_text: str = Field(default="sendText", min_length=1)
    send_file: str = Field(default="sendFile", min_length=1)
    close_chat: str = Field(default="closeChat", min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        # Two methods on one path would silently shadow each other.
        names = list(self.model_dump().values())
        if len(set(names)) != len(names) or any("/" in name for name in names):
            raise ValueError("must be six different names without '/'")
        return self


class TovieOptions(BaseModel):
    """A Tovie bot's options."""

    model_config = ConfigDict(extra="forbid")

    # The secret last segment of the apiUrl configured in Tovie (names an env variable).
    api_token: EnvSecret
    # Where events go when Tovie has not called setWebhook (its documented shape is
    # https://<tovie-host>/chatadapter/chatapi/webhook/operatorapi/<apiKey>).
    webhook_url: HttpUrl | None = None
    # At most this many pre-handoff lines are kept per user as the handoff's history.
    history_limit: int = Field(default=50, ge=0, le=MAX_HISTORY)
    # Older buffered lines are left out of the history (leftovers of an earlier chat).
    history_max_age_seconds: float = Field(default=900.0, gt=0)
    # Display names for destinations, by destinationId (`mysite`, `mysite:es`).
    destination_names: dict[str, str] = Field(default_factory=dict)
    # The text sent when an agent joins ({agent} is the agent's name); null sends nothing.
    join_notice: str | None = "{agent} joined the chat."
    # The text sent while a handoff waits, by the bridge's reason (no_agents_online,
    # capacity, ...): Tovie has no waiting event, so the client reads it as a message.
    # A reason not listed sends nothing.
    waiting_notices: dict[Reason, str] = Field(default_factory=dict)
    # The employee named on events with no agent (a close, a failed handoff).
    system_agent_name: str = Field(default="Support", min_length=1)
    agent_avatar_url: str = ""
    # An agent message that is one link to a file with these extensions is a FileMessage.
    file_extensions: list[str] = Field(default_factory=lambda: list(_FILE_EXTENSIONS))
    paths: ToviePaths = Field(default_factory=ToviePaths)
