"""Who may call what: one credential per kind of caller, and no open API off loopback."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.api.auth import Caller, check_exposure, identify, is_loopback
from bridge.errors import ConfigError, Unauthorized
from bridge.settings import SecuritySettings, Settings

SECURITY = SecuritySettings.model_validate(
    {
        "api_token": "bot-token",
        "admin_token": "admin-token",
        "org_tokens": {
            "acme-token": {"organization_id": "acme", "user_id": "u1"},
            "viewer-token": {"organization_id": "acme", "permissions": []},
        },
    }
)


def _settings(host: str, **security: Any) -> Settings:
    return Settings.model_validate(
        {"server": {"host": host}, "security": security, "channels": {"main": {}}}
    )


@pytest.mark.parametrize(
    "path",
    ["/v1/handoffs", "/v1/conversations/c1/messages", "/v1/conversations/c1/assign"],
)
def test_the_bot_token_opens_the_bot_side_api_only(path: str) -> None:
    assert identify(SECURITY, path, "bot-token") == Caller("bot")
    for wrong in (None, "admin-token", "acme-token", "bot-token "):
        with pytest.raises(Unauthorized):
            identify(SECURITY, path, wrong)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/agents/a1/desk_link",
        "/v1/subscriptions",
        "/v1/outbox",
        "/v1/routing/explain",
        "/v1/teams",
        "/v1/anything-new",
    ],
)
def test_a_bot_token_never_opens_the_admin_api(path: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        identify(SECURITY, path, "bot-token")
    assert "BRIDGE_SECURITY__ADMIN_TOKEN" in caught.value.fields[0].problem
    assert identify(SECURITY, path, "admin-token") == Caller("admin")


def test_organization_tokens_are_scoped_to_their_organization() -> None:
    caller = identify(SECURITY, "/v1/agents", "acme-token")
    assert caller == Caller("org", "acme", "u1")
    assert caller.sees("acme") and not caller.sees("globex")
    assert identify(SECURITY, "/v1/agents", "admin-token").sees("globex")
    # Not on the outbox or the bot-side API, and not without the settings permission.
    for path in ("/v1/outbox", "/v1/handoffs", "/v1/routing/explain"):
        with pytest.raises(Unauthorized):
            identify(SECURITY, path, "acme-token")
    with pytest.raises(Unauthorized):
        identify(SECURITY, "/v1/agents", "viewer-token")


def test_a_group_without_a_token_is_open() -> None:
    bots_only = SecuritySettings.model_validate({"api_token": "bot-token"})
    assert identify(bots_only, "/v1/outbox", None).role == "open"
    with pytest.raises(Unauthorized):
        identify(bots_only, "/v1/handoffs", None)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_listeners_may_run_open(host: str) -> None:
    assert is_loopback(host)
    assert check_exposure(_settings(host)) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "bridge.example.com", ""])
def test_an_exposed_listener_refuses_to_start_open(host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_exposure(_settings(host))
    assert "BRIDGE_SECURITY__API_TOKEN" in str(caught.value)
    assert "BRIDGE_SECURITY__ADMIN_TOKEN" in str(caught.value)
    # One token is not enough: the other group would still be open.
    with pytest.raises(ConfigError) as caught:
        check_exposure(_settings(host, api_token="t"))
    assert "admin API" in str(caught.value) and "bot-side" not in str(caught.value)
    assert check_exposure(_settings(host, api_token="t", admin_token="u")) == []


def test_an_open_api_on_purpose_starts_with_a_warning() -> None:
    warnings = check_exposure(_settings("0.0.0.0", allow_open_api=True))
    assert len(warnings) == 1 and "allow_open_api" in warnings[0]
