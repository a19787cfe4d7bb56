"""The console and desk pages send a strict Content-Security-Policy and its companions,
and hold no inline script or style the policy would block (the browser tests in tests/e2e
show they still work under it)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import unused_port
from multidict import CIMultiDictProxy

from adapters.console.pages import STATIC
from tests.conftest import Database, RunningBridge, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body
from tests.integration.test_desk import desk_settings, desk_token

STRICT = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "connect-src": "'self'",
    "base-uri": "'none'",
    "form-action": "'none'",
    "frame-ancestors": "'none'",
}


@pytest.fixture
async def pages_bridge(database: Database) -> AsyncIterator[RunningBridge]:
    """The real app with agents, so there are desk links too."""
    running = await start_bridge(desk_settings(database, unused_port()))
    try:
        yield running
    finally:
        await stop_bridge(running)


async def _headers(bridge: RunningBridge, path: str) -> tuple[int, CIMultiDictProxy[str]]:
    async with bridge.http.get(bridge.url(path)) as response:
        await response.read()
        return response.status, response.headers


def _assert_strict(headers: CIMultiDictProxy[str], images: str = "'self'") -> None:
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in headers["Content-Security-Policy"].split(";")
    )
    assert {name: policy.get(name) for name in STRICT} == STRICT, policy
    assert policy.get("img-src") == images, policy
    # Nothing else may load from anywhere: every other source list is 'self' or 'none'.
    others = {name: value for name, value in policy.items() if name != "img-src"}
    assert set(others.values()) <= {"'self'", "'none'"}, policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_pages_send_a_strict_policy(pages_bridge: RunningBridge, bot: FakeBot) -> None:
    """Conversation, desk and supervisor pages and the 403 page for a bad link, all with the
    policy; the conversation page alone lets images (attached ones) load from https."""
    status, conversation = await pages_bridge.post("/v1/handoffs", handoff_body(bot.url))
    assert status == 201, conversation
    join_token = str(conversation["join_url"]).rsplit("/", 1)[1]
    token = await desk_token(pages_bridge, "ana")
    status, link = await pages_bridge.get("/v1/supervisor_link")
    assert status == 200, link
    supervisor = str(link["url"]).rsplit("/", 1)[1]
    for path, expected in [
        (f"/console/c/{join_token}", 200),
        (f"/console/c/{join_token[:-2]}xx", 403),
        (f"/console/desk/{token}", 200),
        (f"/console/desk/{token[:-2]}xx", 403),
        (f"/console/supervisor/{supervisor}", 200),
        (f"/console/supervisor/{supervisor[:-2]}xx", 403),
    ]:
        status, headers = await _headers(pages_bridge, path)
        assert status == expected, path
        assert headers["Content-Type"].startswith("text/html"), path
        chat_page = path.startswith("/console/c/") and expected == 200
        _assert_strict(headers, "'self' https:" if chat_page else "'self'")

    # What the pages load and call is never taken for another type either.
    for path in [
        "/console/static/console.js",
        "/console/static/forbidden.css",
        f"/console/api/{join_token}/conversation",
        "/console/static/supervisor.js",
        f"/console/supervisor-api/{supervisor}/queue",
    ]:
        status, headers = await _headers(pages_bridge, path)
        assert status == 200, path
        assert headers["X-Content-Type-Options"] == "nosniff", path


INLINE = [
    re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),  # a script without src
    re.compile(r"<style\b", re.IGNORECASE),
    re.compile(r"\sstyle\s*=", re.IGNORECASE),
    re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),  # onclick= and the like
    re.compile(r"javascript:", re.IGNORECASE),
]


@pytest.mark.parametrize("page", ["console.html", "desk.html", "supervisor.html", "forbidden.html"])
def test_pages_hold_no_inline_script_or_style(page: str) -> None:
    """Everything the policy allows comes from /console/static; nothing is inline."""
    html = (STATIC / page).read_text(encoding="utf-8")
    assert [pattern.pattern for pattern in INLINE if pattern.search(html)] == []
    for reference in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert reference.startswith("/console/static/"), reference
        assert (STATIC / reference.removeprefix("/console/static/")).is_file(), reference
