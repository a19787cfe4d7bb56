"""Channels, agents, teams and bot platforms, as the configuration defines them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class OutsideHours(BaseModel):
    """What happens to a handoff outside business hours: another channel or team, else fail."""

    model_config = ConfigDict(extra="forbid")

    channel: str | None = None
    team_id: str | None = None


class ChannelSettings(BaseModel):
    """One channel: the platform its agents work on and, for a main channel, its regions."""

    platform: str = "console"
    # Routing code -> channel name, as VivoChat's Regions table.
    regions: dict[str, str] = Field(default_factory=dict)
    # Platform-specific options, validated by that platform's adapter at start.
    options: dict[str, Any] = Field(default_factory=dict)
    # Conversation settings every conversation on this channel starts from (Kommunicate's
    # names or snake_case); a handoff's own `settings` override them key by key.
    settings: dict[str, Any] = Field(default_factory=dict)
    # Main channels only: ordered metadata rules; the first match wins.
    rules: list[dict[str, Any]] = Field(default_factory=list)
    # The organization that owns this channel (giosg's room owner): only its routers may be
    # linked to it. None: a region channel's main channel's, else the top-level one.
    organization_id: str | None = Field(default=None, min_length=1, max_length=128)
    # The router this channel uses (giosg's room router_id); the API can change it.
    router_id: str | None = None
    # The team that gets this channel's chats when no rule or setting names one.
    team_id: str | None = None
    # A name under `hours`; outside them `outside_hours` applies.
    hours: str | None = None
    outside_hours: OutsideHours | None = None
    # Main channels only: where its chats go next (channels of any platform, in order)
    # when nobody is available on the chosen channel at the handoff, or nobody has taken
    # the chat within `fallback_after_seconds` (None: only the check at the handoff).
    fallback_channels: list[str] = Field(default_factory=list)
    fallback_after_seconds: float | None = Field(default=None, gt=0)
    # Seconds an offered or assigned chat may go unanswered (no agent's first message)
    # before it is offered further or handed back to routing; None: it waits.
    accept_timeout_seconds: float | None = Field(default=None, gt=0)


class AgentSettings(BaseModel):
    """An agent defined in config (more can come from the API or a platform)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128)
    name: str | None = None
    email: str | None = None
    teams: list[str] = Field(default_factory=list)
    capacity: int = Field(default=3, ge=0)


class TeamSettings(BaseModel):
    """A team defined in config."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128)
    name: str | None = None
    hours: str | None = None
    # Overrides the channel's accept_timeout_seconds for chats routed to this team.
    accept_timeout_seconds: float | None = Field(default=None, gt=0)


class BotSettings(BaseModel):
    """A bot platform with an API of its own (the plain webhook bot needs no entry)."""

    platform: str
    options: dict[str, Any] = Field(default_factory=dict)
