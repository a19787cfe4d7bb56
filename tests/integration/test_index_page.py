"""The index at `/`: public, what runs and where to start, nothing secret, a strict policy."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import unused_port
from multidict import CIMultiDictProxy

import bridge as bridge_package
from tests.conftest import (
    CONSOLE_SECRET,
    Database,
    RunningBridge,
    make_settings,
    start_bridge,
    stop_bridge,
)
from tests.fakes import WEBHOOK_SECRET

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
API_TOKEN = "index-test-api-token-7f3a"
ADMIN_TOKEN = "index-test-admin-token-91c2"


async def _index(bridge: RunningBridge, accept: str | None) -> tuple[Any, CIMultiDictProxy[str]]:
    headers = {"Accept": accept} if accept is not None else {}
    async with bridge.http.get(bridge.url("/"), headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.text(), response.headers


def _assert_strict(headers: CIMultiDictProxy[str]) -> None:
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in headers["Content-Security-Policy"].split(";")
    )
    # Nothing may load, run, submit or frame the page.
    assert policy == {
        "default-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }, policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Vary"] == "Accept"


async def test_json_says_what_runs_and_every_link_answers(
    bridge: RunningBridge, database: Database
) -> None:
    """A client gets JSON: version, database kind, channels; each link is served."""
    for accept in ("application/json", None, "*/*"):
        text, headers = await _index(bridge, accept)
        assert headers["Content-Type"].startswith("application/json"), accept
        _assert_strict(headers)
    view = json.loads(text)
    assert view["version"] == bridge_package.__version__
    assert view["database"] == {"sqlite": "sqlite", "postgres": "postgresql"}[database.backend]
    assert view["public_url"] == bridge.settings.server.base_url()
    channels = {c["name"]: c for c in view["channels"]}
    assert channels["mysite"] == {
        "name": "mysite",
        "platform": "console",
        "main": True,
        "regions": {"en": "mysite-en", "es": "mysite-es", "de": "mysite-de"},
        "team_id": None,
    }
    assert channels["mysite-es"]["main"] is False
    assert view["links"]["health"] == "/healthz"
    assert view["links"]["ready"] == "/readyz"
    for path in view["links"].values():
        async with bridge.http.get(bridge.url(path)) as response:
            assert response.status == 200, path
    assert view["desk"]["how"].startswith("GET /v1/agents/{agent_id}/desk_link")


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_browser_gets_an_html_page_with_the_links(bridge: RunningBridge) -> None:
    page, headers = await _index(bridge, BROWSER)
    assert headers["Content-Type"].startswith("text/html")
    _assert_strict(headers)
    assert '<a href="/healthz">' in page
    assert "/v1/agents/{agent_id}/desk_link" in page
    assert "<script" not in page and "style=" not in page


@pytest.fixture
async def guarded_bridge(database: Database) -> AsyncIterator[RunningBridge]:
    """Both API tokens set, the demo agent in the directory."""
    settings = make_settings(
        database,
        unused_port(),
        demo=True,
        security={"api_token": API_TOKEN, "admin_token": ADMIN_TOKEN},
    )
    running = await start_bridge(settings)
    try:
        yield running
    finally:
        await stop_bridge(running)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_public_with_tokens_set_and_shows_no_secret(guarded_bridge: RunningBridge) -> None:
    """No credential needed; no token, secret or agent id shown while the admin API is shut."""
    status, _ = await guarded_bridge.get("/v1/agents")
    assert status == 401  # the admin API is shut to this caller
    for accept in ("application/json", BROWSER):
        text, _ = await _index(guarded_bridge, accept)
        for secret in (API_TOKEN, ADMIN_TOKEN, WEBHOOK_SECRET, CONSOLE_SECRET):
            assert secret not in text, accept
        assert "/console/desk/" not in text and "/console/c/" not in text
        assert "BRIDGE_SECURITY__ADMIN_TOKEN" in text  # says which credential, not its value
    view = json.loads((await _index(guarded_bridge, "application/json"))[0])
    assert view["desk"]["agents"] is None
    assert view["api"]["bot_credential"] == "Authorization: Bearer <BRIDGE_SECURITY__API_TOKEN>"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_open_admin_api_lists_the_config_agents_escaped(database: Database) -> None:
    """On an open loopback bridge the desk section names the agents, escaped in HTML."""
    settings = make_settings(
        database,
        unused_port(),
        agents=[{"id": "demo"}, {"id": "<b>ana</b>"}],
    )
    running = await start_bridge(settings)
    try:
        view = json.loads((await _index(running, "application/json"))[0])
        assert view["desk"]["agents"] == ["demo", "<b>ana</b>"]
        assert view["desk"]["credential"] == "none (the admin API is open)"
        page, _ = await _index(running, BROWSER)
        assert "&lt;b&gt;ana&lt;/b&gt;" in page and "<b>ana" not in page
        assert "/v1/agents/demo/desk_link" in page
    finally:
        await stop_bridge(running)
