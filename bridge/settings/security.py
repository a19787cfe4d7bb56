"""Secrets and credentials. Only the environment may set these (BRIDGE_SECURITY__*)."""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


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
    # A token only for scraping GET /metrics, so Prometheus need not hold the admin
    # token; the admin token is accepted there too.
    metrics_token: SecretStr | None = None

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
