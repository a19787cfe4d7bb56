"""Kommunicate options (per channel) and routing settings (per handoff), validated."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.kit import BaseUrl, EnvSecret
from bridge.errors import PlatformRejected

_GROUP_NAME_FIELDS = {"customer_name": "", "customer_id": "", "channel": "", "conversation_id": ""}


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return None if isinstance(value, list) and not value else value


def _one_or_many(value: Any) -> Any:
    # The Web SDK takes a single id where a list is expected; so do we.
    value = _blank_to_none(value)
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [value]
    return value


class KommunicateOptions(BaseModel):
    """A Kommunicate channel's options (`channels.<name>.options`)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    # Dashboard → Settings → Install → API Key; names the environment variable.
    api_key: EnvSecret
    # The authentication token set under Settings → Webhooks & Security.
    webhook_token: EnvSecret
    base_url: BaseUrl = "https://services.kommunicate.io"
    create_conversation_path: str = "/rest/ws/group/conversation"
    send_message_path: str = "/rest/ws/message/v2/send"
    assignee_change_path: str = "/rest/ws/group/assignee/change"
    status_change_path: str = "/rest/ws/group/status/change"
    dashboard_url: str = "https://dashboard.kommunicate.io/conversations/{groupId}"
    # The user that bot (and any non-customer) history messages are posted as.
    bot_user_id: str = Field(default="bot", min_length=1)
    # Of-User-Id for assignee and status changes: an admin, agent or bot user.
    acting_user_id: str = Field(default="bot", min_length=1)
    customer_user_prefix: str = "customer-"
    # Placeholders: {customer_name}, {customer_id}, {channel}, {conversation_id}.
    group_name: str = Field(default="{customer_name}", min_length=1)
    # Defaults for every conversation of this channel; a handoff's settings override them.
    default_agent_ids: list[str] = Field(default_factory=list)
    default_bot_ids: list[str] = Field(default_factory=list)
    default_assignee: str | None = None
    skip_routing: bool = False
    team_id: str | None = None
    # Other users whose messages are not agent replies (bots added by conversation rules).
    ignored_senders: list[str] = Field(default_factory=list)
    # The name the bot is told for any Kommunicate agent; None gives the agent's user id.
    agent_name: str | None = None
    notify_on_assign: bool = True
    take_over_from_bot: bool = True
    # 1 open, 2 resolved, 3 pending, 4 bot-closed, 5 snoozed.
    resolved_status: int = Field(default=2, ge=1, le=5)

    @field_validator(
        "create_conversation_path",
        "send_message_path",
        "assignee_change_path",
        "status_change_path",
    )
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value

    @field_validator("dashboard_url")
    @classmethod
    def _dashboard(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or "{groupId}" not in value:
            raise ValueError("must be an http(s) URL containing {groupId}")
        try:
            value.format(groupId="1")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{groupId}} may be filled in ({exc})") from exc
        return value

    @field_validator("group_name")
    @classmethod
    def _group_name(cls, value: str) -> str:
        try:
            value.format(**_GROUP_NAME_FIELDS)
        except (KeyError, IndexError, ValueError) as exc:
            known = ", ".join("{" + name + "}" for name in _GROUP_NAME_FIELDS)
            raise ValueError(f"unknown placeholder {exc}; use {known}") from exc
        return value

    @field_validator("default_assignee", "team_id", mode="before")
    @classmethod
    def _optional_text(cls, value: Any) -> Any:
        return _blank_to_none(value)


class ConversationSettings(BaseModel):
    """Routing settings a handoff may carry, in Kommunicate's spelling or in snake_case.

    An empty value (null, "", []) means "not given", so the channel's option applies:
    the bridge passes its merged settings with every key present, unset ones empty.
    """

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    agent_ids: list[str] | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "defaultAgentIds", "default_agent_ids", "agentIds", "agent_ids"
        ),
    )
    bot_ids: list[str] | None = Field(
        default=None,
        validation_alias=AliasChoices("defaultBotIds", "default_bot_ids", "botIds", "bot_ids"),
    )
    assignee: str | None = Field(
        default=None,
        validation_alias=AliasChoices("defaultAssignee", "default_assignee", "assignee"),
    )
    skip_routing: bool | None = Field(
        default=None, validation_alias=AliasChoices("skipRouting", "skip_routing")
    )
    team_id: str | None = Field(default=None, validation_alias=AliasChoices("teamId", "team_id"))
    skip_bot_events: list[str] | None = Field(
        default=None, validation_alias=AliasChoices("skipBotEvent", "skip_bot_events")
    )
    welcome_message: str | None = Field(
        default=None, validation_alias=AliasChoices("WELCOME_MESSAGE", "welcome_message")
    )
    conversation_metadata: dict[str, Any] | None = Field(
        default=None,
        validation_alias=AliasChoices("conversationMetadata", "conversation_metadata"),
    )
    chat_context: dict[str, Any] | None = Field(
        default=None,
        validation_alias=AliasChoices("KM_CHAT_CONTEXT", "chatContext", "chat_context"),
    )
    group_name: str | None = Field(
        default=None, validation_alias=AliasChoices("defaultGroupName", "groupName", "group_name")
    )

    @field_validator("agent_ids", "bot_ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        return _one_or_many(value)

    @field_validator("skip_bot_events", mode="before")
    @classmethod
    def _events(cls, value: Any) -> Any:
        # Kommunicate's example passes the list as JSON text: '["WELCOME_EVENT"]'.
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ValueError(f"is not a JSON list of event names: {exc}") from exc
        return _one_or_many(value)

    @field_validator("assignee", "team_id", "welcome_message", "group_name", mode="before")
    @classmethod
    def _optional_text(cls, value: Any) -> Any:
        return _blank_to_none(value)

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> ConversationSettings:
        """The settings, or PlatformRejected naming each bad field (before any call is made)."""
        try:
            return cls.model_validate(dict(settings))
        except ValidationError as exc:
            problems = "; ".join(
                f"settings.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise PlatformRejected(f"kommunicate cannot use the handoff's {problems}") from exc
