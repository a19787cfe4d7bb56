"""What every adapter is built with: its validated options and the app's shared resources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from bridge.errors import ConfigError
from bridge.live import ConsoleHub
from bridge.ports.http import HttpClient


def validate_options(
    model: type[BaseModel], raw: dict[str, Any], path: str, owner: str
) -> BaseModel:
    """Options validated by their model, or a ConfigError naming each bad field by `path`."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{path}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{owner}: {problems}") from exc


class NoOptions(BaseModel):
    """For platforms that take no options."""

    model_config = ConfigDict(extra="forbid")


class StateStore(Protocol):
    """Small durable values an adapter keeps, by adapter (channel or bot name) and key."""

    async def put_state(self, adapter: str, key: str, value: str) -> None: ...

    async def get_state(self, adapter: str, key: str) -> str | None: ...


@dataclass(slots=True)
class AdapterContext:
    """Shared resources an adapter may use: the app's one HTTP client, and what the core lends.

    Adapters are built (and their options checked) before the database is up, so the
    values that come from the store (`webhook_secret`, `state_store`) are filled in by the
    composition root once it has read them; until then reading them is an error.
    """

    http: HttpClient
    # The client for URLs that callers give the bridge (a handoff's callback_url, a bot
    # platform's setWebhook): it calls only what the outbound URL policy allows. `http`
    # stays for the platforms the operator configured.
    callbacks: HttpClient | None = None
    # Wakes the console's live pages; the console adapter's deliveries are wake-ups.
    live: ConsoleHub = field(default_factory=ConsoleHub)
    # The secret bot events are signed with (Standard Webhooks).
    webhook_secret: str | None = None
    state_store: StateStore | None = None

    @property
    def callback_http(self) -> HttpClient:
        """The client for callers' URLs (the app's one when no policy was wired)."""
        return self.callbacks or self.http

    @property
    def signing_secret(self) -> str:
        """The webhook secret (read from the store at start; not during validation)."""
        if self.webhook_secret is None:
            raise RuntimeError("the webhook secret is not available before the service starts")
        return self.webhook_secret

    @property
    def state(self) -> StateStore:
        """The store for small values (set once the database is up; not during validation)."""
        if self.state_store is None:
            raise RuntimeError("adapter state is not available before the service starts")
        return self.state_store
