"""/openapi.json and /docs answer without a token, and open nothing else; the page loads
only this server's files, under a policy that allows nothing but 'self'."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import unused_port

from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@pytest.fixture
async def guarded(database: Database) -> AsyncIterator[RunningBridge]:
    """The bridge with the bot and admin tokens set."""
    settings = make_settings(
        database,
        unused_port(),
        security={"api_token": "bot-token-1", "admin_token": "admin-token-2"},
    )
    running = await start_bridge(settings)
    try:
        yield running
    finally:
        await stop_bridge(running)


def _policy(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


async def test_the_document_is_public_and_lists_the_api(guarded: RunningBridge) -> None:
    status, document = await guarded.get("/openapi.json")
    assert status == 200, document
    assert document["openapi"] == "3.1.0"
    assert document["paths"]["/v1/handoffs"]["post"]["security"] == [{"botToken": []}]
    assert set(document["components"]["securitySchemes"]) >= {
        "botToken",
        "adminToken",
        "organizationToken",
        "integrationSignature",
    }
    # Public as /healthz is, and nothing else became so.
    for path in ("/v1/agents", "/v1/outbox", "/v1/conversations/x"):
        status, answer = await guarded.get(path)
        assert status == 401, (path, answer)


async def test_the_docs_page_loads_only_its_own_files(guarded: RunningBridge) -> None:
    async with guarded.http.get(guarded.url("/docs")) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        policy = _policy(response.headers["Content-Security-Policy"])
        page = await response.text()
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert set(policy.values()) <= {"'self'", "'none'"}, policy
    # No inline script or style the policy would block, and no other origin.
    assert "<style" not in page and " style=" not in page
    assert re.search(r"<script(?![^>]*\bsrc=)", page) is None
    references = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert references and all(ref.startswith("/docs/") for ref in references), references
    for reference in references:
        async with guarded.http.get(guarded.url(reference)) as asset:
            assert asset.status == 200, reference
            assert asset.content_type in {"text/css", "text/javascript", "application/javascript"}
            assert asset.headers["X-Content-Type-Options"] == "nosniff"


async def test_only_the_pages_files_are_served(guarded: RunningBridge) -> None:
    # The package holds more (its own index.html, source maps): none of it is served.
    for name in ("index.html", "swagger-initializer.js", "nothing.js", "..%2Fpage.py"):
        status, answer = await guarded.get(f"/docs/{name}")
        assert status == 404, (name, answer)
        assert answer["error"]["code"] == "not_found"
