"""The service's own sections: where it listens, its store, the console, the relay, the queue."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bridge.outbound import parse_allow_entry


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
    # text: `time level logger event key=value` for people; json: one object per line
    # for a log pipeline (see README, Logs).
    log_format: Literal["text", "json"] = "text"
    # One `http.access` line per request at INFO.
    access_log: bool = True

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


class AvailabilitySettings(BaseModel):
    """Asking platforms whether anyone is available (POST /v1/availability, fallbacks)."""

    model_config = ConfigDict(extra="forbid")

    # A platform's answer is reused this long, so a busy bot does not ask it every time.
    cache_seconds: float = Field(default=10.0, ge=0)
    # A platform slower than this is taken as an error, and the bridge's own presence answers.
    timeout_seconds: float = Field(default=3.0, gt=0, le=30)


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
