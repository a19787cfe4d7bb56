"""Settings: YAML from config/, each value overridable by a BRIDGE_* environment variable.

Nested values use a double underscore: `BRIDGE_DATABASE__URL`, `BRIDGE_SERVER__PORT`,
`BRIDGE_CHANNELS__MYSITE__PLATFORM`. Precedence: environment > YAML file > defaults.
Secrets (everything under `security`) are accepted only from the environment, so a
config file can be committed and shared without leaking them.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bridge.errors import ConfigError
from bridge.outbound import parse_allow_entry

DEFAULT_CONFIG = Path("config/bridge.yaml")


class ServerSettings(BaseModel):
    """Where the service listens and how it is reached from outside."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The address agents and platforms use to reach us; join links are built on it.
    public_url: str | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Slow clients: a connection must send a complete request head within this many
    # seconds of opening (or of its previous response; idle keep-alive connections close
    # then too), and the body within `body_timeout_seconds` of its head (the largest body
    # in 15 s needs about 70 KB/s).
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=15.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def base_url(self) -> str:
        """The public base URL without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host
        return f"http://{host}:{self.port}"


class DatabaseSettings(BaseModel):
    """The store: SQLite (embedded default) or PostgreSQL (for several replicas)."""

    url: str = "sqlite+aiosqlite:///data/bridge.db"
    # PostgreSQL only: keep the bridge's tables in this schema (created if missing).
    pg_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    pool_size: int = Field(default=10, ge=1)
    # FULL survives power loss; NORMAL survives a killed process but may lose the last
    # commits on power loss, in exchange for faster commits.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    migrate_on_start: bool = True

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite store."""
        return self.url.startswith("sqlite")


class ConsoleSettings(BaseModel):
    """The built-in agent console."""

    link_ttl_seconds: int = Field(default=86_400, ge=60)


# Seconds after each failed attempt: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 12 h.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200)


class RelaySettings(BaseModel):
    """Outbox delivery: retries, backoff and concurrency."""

    # Attempts before a delivery is dead: the first, then one after each delay below.
    max_attempts: int = Field(default=len(DEFAULT_RETRY_SCHEDULE) + 1, ge=1)
    # The wait after failed attempt n is the n-th entry (the last one repeats), plus up
    # to 20% jitter: about 27.7 hours in all by default, like trusted webhook senders.
    retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE), min_length=1
    )
    # Set to use capped exponential backoff instead of the schedule (tests, quick setups).
    backoff_initial_seconds: float | None = Field(default=None, gt=0)
    backoff_max_seconds: float = Field(default=600.0, gt=0)
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    # Quick retries inside one delivery attempt, for blips, before the durable backoff.
    quick_retries: int = Field(default=2, ge=0, le=5)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    max_in_flight: int = Field(default=64, ge=1)
    # Attempts in flight to one destination (host:port of a URL, else the channel), so
    # receivers that hang hold back only their own lanes, never every slot.
    max_in_flight_per_destination: int = Field(default=16, ge=1)
    # A claimed delivery is leased this long and the lease is renewed while the attempt
    # runs, so a delivery cut off by a crash is taken over about this long afterwards.
    lease_seconds: float = Field(default=15.0, ge=1)
    # Delivered and cancelled deliveries are kept this long for inspection, then pruned.
    keep_delivered_days: float = Field(default=7, gt=0)
    # Inbound webhook ids are remembered this long, longer than any sender retries
    # (Stripe-style replays go up to 30 days).
    keep_inbound_ids_days: float = Field(default=30, gt=0)
    # A platform event that arrives before the open has stored the platform's id waits
    # this long for its conversation to become known, then it is dropped.
    keep_early_events_seconds: float = Field(default=600, gt=0)

    @field_validator("retry_schedule_seconds")
    @classmethod
    def _positive_delays(cls, values: list[float]) -> list[float]:
        if any(value <= 0 for value in values):
            raise ValueError("every retry delay must be more than 0 seconds")
        return values


class QueueSettings(BaseModel):
    """How the bot hears of its place in the queue."""

    # A bot hears of a new position at most once per conversation this often, so a
    # busy channel costs one batch of queue.updated events per interval, not one per
    # waiting chat at every handoff and take.
    update_seconds: float = Field(default=5.0, gt=0)
    # A position is counted when it is read, up to this many chats ahead (an index range,
    # so its cost grows with the chats ahead); further back the last announced one is shown.
    count_limit: int = Field(default=100, ge=1)


class OutboundSettings(BaseModel):
    """Where the bridge may send callers' URLs (bot callbacks, subscriptions): see README."""

    model_config = ConfigDict(extra="forbid")

    # Networks (`10.0.0.0/8`, an address) and host names (`bot.internal`, `*.corp.example`)
    # that may be called although they are not public: on-premises bots and CRMs.
    allow: list[str] = Field(default_factory=list)
    # Loopback destinations: `auto` allows them while the service listens on loopback
    # only (the quickstart's bot on the same machine), and refuses them otherwise.
    allow_loopback: bool | Literal["auto"] = "auto"
    # How long the API waits for DNS when it checks a URL a caller gives.
    resolve_timeout_seconds: float = Field(default=2.0, gt=0, le=30)

    @field_validator("allow")
    @classmethod
    def _entries(cls, values: list[str]) -> list[str]:
        # Checked here so a typo stops the start, not every later delivery.
        for value in values:
            parse_allow_entry(value)
        return values


class OrgToken(BaseModel):
    """An API token for the routers API, scoped to one organization."""

    model_config = ConfigDict(extra="forbid")

    organization_id: str
    user_id: str | None = None
    permissions: list[str] = Field(default_factory=lambda: ["settings"])


class SecuritySettings(BaseModel):
    """Secrets. Only the environment may set these (BRIDGE_SECURITY__*)."""

    # The bot-side API (/v1/handoffs, /v1/conversations/...) requires
    # `Authorization: Bearer <api_token>` when it is set.
    api_token: SecretStr | None = None
    # The admin API (agents, teams, subscriptions, outbox, routing) requires
    # `Authorization: Bearer <admin_token>` when it is set; a bot's token never opens it.
    admin_token: SecretStr | None = None
    # Without both tokens the service refuses to listen on anything but loopback, unless
    # this says the open API is intended (a warning is logged at every start).
    allow_open_api: bool = False
    # Standard Webhooks secret (`whsec_<base64>`) for events to bots. Generated and kept
    # in the database when unset, so every replica signs with the same key.
    webhook_secret: SecretStr | None = None
    # Key for signed console join links. Generated and kept in the database when unset.
    console_secret: SecretStr | None = None

    # Standard Webhooks secrets that CRMs and helpdesks sign their calls to
    # /integrations/* with. Several may be active while a secret is rotated, e.g.
    # BRIDGE_SECURITY__INTEGRATION_SECRETS='["whsec_new...", "whsec_old..."]'.
    integration_secrets: list[SecretStr] = Field(default_factory=list)
    # Tokens for /api/v5/orgs/{organization_id}/routers, as a JSON object from the
    # environment: BRIDGE_SECURITY__ORG_TOKENS='{"<token>": {"organization_id": "acme"}}'.
    org_tokens: dict[str, OrgToken] = Field(default_factory=dict)

    @field_validator("webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked here so a typo stops the start, not every later delivery.
        if value is not None:
            _check_whsec(value)
        return value

    @field_validator("integration_secrets")
    @classmethod
    def _whsecs(cls, values: list[SecretStr]) -> list[SecretStr]:
        for value in values:
            _check_whsec(value)
        return values


def _check_whsec(value: SecretStr) -> None:
    encoded = value.get_secret_value().removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ValueError("must be a Standard Webhooks secret: whsec_ and at least 16 base64 bytes")


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


class BotSettings(BaseModel):
    """A bot platform with an API of its own (the plain webhook bot needs no entry)."""

    platform: str
    options: dict[str, Any] = Field(default_factory=dict)


class Settings(BaseSettings):
    """Everything the service needs to start."""

    model_config = SettingsConfigDict(
        env_prefix="BRIDGE_", env_nested_delimiter="__", extra="forbid"
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    relay: RelaySettings = Field(default_factory=RelaySettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    outbound: OutboundSettings = Field(default_factory=OutboundSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    # The main channel a handoff lands on when it names none.
    default_channel: str | None = None
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    # Bot platforms by the name a handoff gives in `bot.platform`; any other name is
    # served by the plain Standard Webhooks bot.
    bots: dict[str, BotSettings] = Field(default_factory=dict)
    # The organization that owns config-defined agents, teams and channels.
    organization_id: str = "default"
    # Organization -> organizations its router steps may name in `organization_ids`
    # (giosg's partner organizations); users and teams must be the organization's own.
    partner_organizations: dict[str, list[str]] = Field(default_factory=dict)
    agents: list[AgentSettings] = Field(default_factory=list)
    teams: list[TeamSettings] = Field(default_factory=list)
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


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
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
    data = _deep_merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {_format_validation_error(exc)}") from exc
