"""The options of a giosg channel: credentials, the room and team, and every API path.

Every path is a template filled with `str.format`; the placeholders each path may use are
listed in `_PLACEHOLDERS`, and a path that lacks one it needs (or names an unknown one)
is a startup error naming the option. The defaults are the paths of giosg's public docs
and of its official demo-bot and ext-chat-connectivity-example repositories.
"""

from __future__ import annotations

import string
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from adapters.kit import BaseUrl, EnvSecret

# Which placeholders each path needs; a path may use exactly these.
_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "auth_path": frozenset({"organization_id"}),
    "room_visitors_path": frozenset({"organization_id", "room_id"}),
    "visitor_chats_path": frozenset({"organization_id", "room_id", "visitor_id"}),
    "visitor_messages_path": frozenset({"visitor_id", "chat_id"}),
    "visitor_variables_path": frozenset({"organization_id", "room_id", "visitor_id"}),
    "chat_path": frozenset({"organization_id", "chat_id"}),
    "teams_path": frozenset({"organization_id"}),
    "invitations_path": frozenset({"user_id", "chat_id"}),
    "room_settings_path": frozenset({"organization_id", "room_id"}),
}


class GiosgOptions(BaseModel):
    """A giosg channel's options (`channels.<name>.options`)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    # The environment variable holding a giosg API token (Settings → API tokens); sent as
    # `Authorization: Token <api_token>`. Its user needs the `settings` permission for
    # link_router and must be allowed to invite the team.
    api_token: EnvSecret
    # The environment variable holding the secret path segment of our webhook URL: giosg
    # signs no webhook, so the URL the giosg app posts to is what authenticates it.
    webhook_secret: EnvSecret
    organization_id: str = Field(min_length=1)
    # The room the bridge's visitors and chats are created in; its router (or the team
    # invitation below) brings the chats to agents.
    room_id: str = Field(min_length=1)
    # The team invited to every chat (and whose `is_online` is this channel's
    # availability). Without it, the room's router alone assigns the chat.
    team_id: str | None = Field(default=None, min_length=1)
    # The user the invitations are sent as: the API token's own user.
    user_id: str | None = Field(default=None, min_length=1, validate_default=True)
    base_url: BaseUrl = "https://service.giosg.com"
    auth_path: str = "/api/v5/public/orgs/{organization_id}/auth"
    room_visitors_path: str = "/api/v5/public/orgs/{organization_id}/rooms/{room_id}/visitors"
    visitor_chats_path: str = (
        "/api/v5/public/orgs/{organization_id}/rooms/{room_id}/visitors/{visitor_id}/chats"
    )
    visitor_messages_path: str = "/api/v5/public/visitors/{visitor_id}/chats/{chat_id}/messages"
    visitor_variables_path: str = (
        "/api/v5/orgs/{organization_id}/rooms/{room_id}/visitors/{visitor_id}/variables"
    )
    # PATCHed with `{"is_ended": true}` to close: that locks the chat for good.
    chat_path: str = "/api/v5/orgs/{organization_id}/owned_chats/{chat_id}"
    teams_path: str = "/api/v5/orgs/{organization_id}/teams"
    invitations_path: str = "/api/v5/users/{user_id}/chats/{chat_id}/outgoing_chat_invitations"
    # PATCHed with `{"router_id": ...}` by link_router.
    room_settings_path: str = "/api/v5/orgs/{organization_id}/rooms/{room_id}/settings"
    # A listing follows at most this many `next` pages.
    max_pages: int = Field(default=20, ge=1, le=1000)

    @field_validator(*_PLACEHOLDERS)
    @classmethod
    def _path_template(cls, value: str, info: ValidationInfo) -> str:
        name = info.field_name or ""
        if not value.startswith("/"):
            raise ValueError("must start with /")
        try:
            used = {field for _, field, _, _ in string.Formatter().parse(value) if field}
        except ValueError as exc:
            raise ValueError(f"is not a valid path template: {exc}") from exc
        needed = _PLACEHOLDERS[name]
        if used != needed:
            wanted = ", ".join("{" + p + "}" for p in sorted(needed))
            raise ValueError(f"must use exactly the placeholders {wanted}")
        return value

    @field_validator("user_id")
    @classmethod
    def _inviter_for_team(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Checked at start (on user_id, so the error names it), not at every invitation.
        if value is None and info.data.get("team_id") is not None:
            raise ValueError("required when team_id is set: invitations are sent as this user")
        return value

    def url(self, template: str, **values: str) -> str:
        """The full URL of a path template, each value URL-quoted."""
        quoted = {key: quote(value, safe="") for key, value in values.items()}
        return self.base_url + template.format(
            organization_id=quote(self.organization_id, safe=""), **quoted
        )
