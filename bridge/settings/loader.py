"""Settings: YAML from config/, each value overridable by a BRIDGE_* environment variable.

Nested values use a double underscore: `BRIDGE_DATABASE__URL`, `BRIDGE_SERVER__PORT`,
`BRIDGE_CHANNELS__MYSITE__PLATFORM`. Precedence: environment > YAML file > defaults.
Secrets (everything under `security`) are accepted only from the environment, so a
config file can be committed and shared without leaking them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bridge.errors import ConfigError
from bridge.settings import directory, observability, service
from bridge.settings.attachments import AttachmentSettings
from bridge.settings.security import SecuritySettings

DEFAULT_CONFIG = Path("config/bridge.yaml")


class Settings(BaseSettings):
    """Everything the service needs to start."""

    model_config = SettingsConfigDict(
        env_prefix="BRIDGE_", env_nested_delimiter="__", extra="forbid"
    )

    server: service.ServerSettings = Field(default_factory=service.ServerSettings)
    database: service.DatabaseSettings = Field(default_factory=service.DatabaseSettings)
    console: service.ConsoleSettings = Field(default_factory=service.ConsoleSettings)
    relay: service.RelaySettings = Field(default_factory=service.RelaySettings)
    queue: service.QueueSettings = Field(default_factory=service.QueueSettings)
    availability: service.AvailabilitySettings = Field(default_factory=service.AvailabilitySettings)
    outbound: service.OutboundSettings = Field(default_factory=service.OutboundSettings)
    attachments: AttachmentSettings = Field(default_factory=AttachmentSettings)
    metrics: observability.MetricsSettings = Field(default_factory=observability.MetricsSettings)
    tracing: observability.TracingSettings = Field(default_factory=observability.TracingSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    # The main channel a handoff lands on when it names none.
    default_channel: str | None = None
    channels: dict[str, directory.ChannelSettings] = Field(default_factory=dict)
    # Bot platforms by the name a handoff gives in `bot.platform`; any other name is
    # served by the plain Standard Webhooks bot.
    bots: dict[str, directory.BotSettings] = Field(default_factory=dict)
    # The organization that owns config-defined agents, teams and channels.
    organization_id: str = "default"
    # Organization -> organizations its router steps may name in `organization_ids`
    # (giosg's partner organizations); users and teams must be the organization's own.
    partner_organizations: dict[str, list[str]] = Field(default_factory=dict)
    agents: list[directory.AgentSettings] = Field(default_factory=list)
    teams: list[directory.TeamSettings] = Field(default_factory=list)
    # Named business hours: {timezone, weekly: {mon: ["09:00-17:00"], ...}, holidays: [...]}.
    hours: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init arguments; the environment must win over it.
        return env_settings, init_settings

    @model_validator(mode="after")
    def _channels_are_consistent(self) -> Settings:
        if not self.channels:
            raise ValueError("channels: at least one channel is needed")
        targets: set[str] = set()
        for name, channel in self.channels.items():
            for code, target in channel.regions.items():
                if not code:
                    raise ValueError(f"channels.{name}.regions: a routing code is empty")
                if target not in self.channels:
                    raise ValueError(
                        f"channels.{name}.regions.{code}: channel {target!r} is not defined"
                    )
                if self.channels[target].regions:
                    raise ValueError(
                        f"channels.{name}.regions.{code}: {target!r} has regions of its own;"
                        " a region channel cannot be a main channel"
                    )
                targets.add(target)
        self._region_owners_agree()
        mains = [name for name in self.channels if name not in targets]
        if self.default_channel is None:
            if len(mains) != 1:
                raise ValueError(
                    f"default_channel: required when there are several main channels ({mains})"
                )
            self.default_channel = mains[0]
        elif self.default_channel not in self.channels:
            raise ValueError(f"default_channel: channel {self.default_channel!r} is not defined")
        elif self.default_channel in targets:
            raise ValueError(
                f"default_channel: {self.default_channel!r} is a region channel, not a main one"
            )
        return self

    def _region_owners_agree(self) -> None:
        # A region channel inherits its main channel's organization; shared by mains of two
        # organizations it would belong to whichever is listed first, so it must say.
        owners: dict[str, tuple[str, str]] = {}
        for name, channel in self.channels.items():
            for target in channel.regions.values():
                if self.channels[target].organization_id is not None:
                    continue
                owner = channel.organization_id or self.organization_id
                seen = owners.setdefault(target, (name, owner))
                if seen[1] != owner:
                    raise ValueError(
                        f"channels.{target}.organization_id: required, because it is a region"
                        f" of {seen[0]!r} ({seen[1]}) and of {name!r} ({owner})"
                    )

    def main_channels(self) -> list[str]:
        """Channels that no region points to: the ones a handoff may name."""
        targets = {t for c in self.channels.values() for t in c.regions.values()}
        return [name for name in self.channels if name not in targets]

    def channel_organization(self, channel: str) -> str:
        """The organization owning a channel: its own, else its main channel's, else the top's."""
        own = self.channels[channel].organization_id
        if own is not None:
            return own
        for main in self.channels.values():
            if channel in main.regions.values():
                return main.organization_id or self.organization_id
        return self.organization_id

    def reachable_organizations(self, organization_id: str) -> frozenset[str]:
        """The organizations whose people `organization_id`'s router steps may name."""
        return frozenset({organization_id, *self.partner_organizations.get(organization_id, ())})


def _format_validation_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(settings)"
        lines.append(f"{where}: {item['msg']}")
    return "; ".join(lines)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (if any), apply overrides, then the environment, and validate."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        data = loaded or {}
        if "security" in data:
            raise ConfigError(
                f"{path}: 'security' holds secrets and may only be set from the environment"
                " (BRIDGE_SECURITY__API_TOKEN, BRIDGE_SECURITY__WEBHOOK_SECRET,"
                " BRIDGE_SECURITY__CONSOLE_SECRET)"
            )
    data = deep_merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {_format_validation_error(exc)}") from exc
