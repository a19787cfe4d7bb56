"""The options of a Chatvisor channel: credentials, every REST path, assignment and polling.

Only `GET /rest/v1/customer` is documented with its path; every other path here is our
best guess at Chatvisor's REST API and can be changed per channel without a code change.
Paths that act on one customer carry the `{customerId}` placeholder.
"""

from __future__ import annotations

from typing import Self
from urllib.parse import quote

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from adapters.kit import BaseUrl, EnvSecret

CUSTOMER_PLACEHOLDER = "{customerId}"


class ChatvisorOptions(BaseModel):
    """A Chatvisor (TeamViewer Engage) channel's options."""

    model_config = ConfigDict(extra="forbid")

    # The environment variable that holds the API key (Settings > API > Keys), sent as
    # `Authorization: Bearer <key>`.
    api_token: EnvSecret
    # The environment variable that holds the secret path segment of our webhook URL:
    # Chatvisor signs nothing, so the secret URL is what authenticates its webhooks.
    webhook_token: EnvSecret
    base_url: BaseUrl = "https://api.chatvisor.com"
    # Re-identify (tag) a customer: {email, firstname, id, labels, lastname}.
    tag_path: str = "/rest/v1/customer/tag"
    # Generate the public agent chat URL (a one-click, logged-in link to the chat).
    agent_url_path: str = "/rest/v1/customer/{customerId}/agenturl"
    # Assign a customer to a user or to a team (mutually exclusive).
    assign_path: str = "/rest/v1/customer/{customerId}/assign"
    # Post a message into the customer's chat (no send endpoint is documented).
    message_path: str = "/rest/v1/customer/{customerId}/message"
    # Set the customer's status (DONE ends the conversation).
    status_path: str = "/rest/v1/customer/{customerId}/status"
    # List all customers: the documented endpoint, used by polling.
    customers_path: str = "/rest/v1/customer"
    # List agent (user) accounts with their presence.
    users_path: str = "/rest/v1/user"
    # Show or hide the chat widget.
    visibility_path: str = "/rest/v1/chat/visibility"
    # Assign every conversation of this channel to this user, or else to this team,
    # unless the handoff's settings name one (`default_assignee` / `team_id`).
    default_assignee: str | None = Field(default=None, min_length=1)
    team_id: str | None = Field(default=None, min_length=1)
    # Poll the customer list every this many seconds; None or 0 leaves polling off.
    poll_interval_seconds: float | None = Field(default=None, ge=0)
    poll_page_size: int = Field(default=100, ge=1, le=1000)
    # A poll reads at most this many pages; customers beyond are seen on later polls.
    poll_max_pages: int = Field(default=10, ge=1, le=1000)
    # Also read agents' presence on every poll (it feeds the bridge's presence table).
    sync_presence_on_poll: bool = False
    # Put on every message the bridge posts, so its echo can be told from an agent's.
    echo_marker: str = Field(default="handoff-bridge", min_length=1, max_length=64)

    @field_validator("tag_path", "customers_path", "users_path", "visibility_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value

    @field_validator("agent_url_path", "assign_path", "message_path", "status_path")
    @classmethod
    def _customer_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        if CUSTOMER_PLACEHOLDER not in value:
            raise ValueError(f"must contain {CUSTOMER_PLACEHOLDER}")
        return value

    @field_validator("team_id")
    @classmethod
    def _one_assignment(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Chatvisor assigns to a user or to a team, never both; checked on team_id so the
        # startup error names a field.
        if value is not None and info.data.get("default_assignee") is not None:
            raise ValueError("default_assignee and team_id are mutually exclusive; set one")
        return value

    @model_validator(mode="after")
    def _polling_off_is_none(self) -> Self:
        if self.poll_interval_seconds == 0:
            self.poll_interval_seconds = None
        return self

    def url(self, path: str, customer_id: str | None = None) -> str:
        """The full URL of `path`, with the customer id filled in (URL-quoted)."""
        if customer_id is not None:
            path = path.replace(CUSTOMER_PLACEHOLDER, quote(customer_id, safe=""))
        return self.base_url + path
