"""Who sees which conversations in the supervisor views, and the console's supervisor link,
through the real app on SQLite and on PostgreSQL.

The organizations of tests/integration/test_tenants.py: acme owns the default channels,
globex owns `globex-site` and its region `globex-fi`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.conftest import Database, RunningBridge, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body
from tests.integration.test_tenants import ACME, ADMIN, BOT, GLOBEX, call, ok, tenant_settings
from tests.kit.eventually import WITHIN_SECONDS

ACME_CHANNELS = {"mysite", "mysite-en", "mysite-es", "mysite-de"}
GLOBEX_CHANNELS = {"globex-site", "globex-fi"}


@pytest.fixture
async def bridge(database: Database) -> AsyncIterator[RunningBridge]:
    """The bridge shared by acme and globex."""
    running = await start_bridge(tenant_settings(database))
    try:
        yield running
    finally:
        await stop_bridge(running)


async def hand_off(
    bridge: RunningBridge, bot: FakeBot, n: int, channel: str | None, region: str | None
) -> str:
    extra = {"channel": channel} if channel else {}
    body = handoff_body(
        bot.url, conversation_id=f"bot-{n}", customer_id=f"cust-{n}", region=region, **extra
    )
    conversation = await ok(bridge, "POST", "/v1/handoffs", BOT, body)
    return str(conversation["id"])


async def three_chats(bridge: RunningBridge, bot: FakeBot) -> tuple[str, list[str]]:
    """One chat of acme's, two of globex's (one on its region channel)."""
    acme = await hand_off(bridge, bot, 1, None, "es")
    globex = [
        await hand_off(bridge, bot, 2, "globex-site", None),
        await hand_off(bridge, bot, 3, "globex-site", "fi"),
    ]
    return acme, globex


def ids(answer: Any) -> list[str]:
    return [item["id"] for item in answer["items"]]


def channels(answer: Any) -> set[str]:
    return {channel["channel"] for channel in answer["channels"]}


async def test_an_organization_lists_only_its_own_conversations_and_queues(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    acme, globex = await three_chats(bridge, bot)

    assert ids(await ok(bridge, "GET", "/v1/conversations", ACME)) == [acme]
    assert ids(await ok(bridge, "GET", "/v1/conversations", GLOBEX)) == globex
    everything = await ok(bridge, "GET", "/v1/conversations", ADMIN)
    assert ids(everything) == [acme, *globex]
    assert [i["organization_id"] for i in everything["items"]] == ["acme", "globex", "globex"]
    narrowed = await ok(bridge, "GET", "/v1/conversations?organization_id=globex", ADMIN)
    assert ids(narrowed) == globex
    # Filtering by another organization's channel finds nothing rather than its chats.
    assert ids(await ok(bridge, "GET", "/v1/conversations?channel=globex-site", ACME)) == []
    # A cursor grants nothing: acme paging with the admin's cursor still sees only its own.
    first = await ok(bridge, "GET", "/v1/conversations?limit=1&order=-created_at", ADMIN)
    rest = await ok(
        bridge,
        "GET",
        f"/v1/conversations?order=-created_at&cursor={first['next_cursor']}",
        ACME,
    )
    assert ids(rest) == [acme]

    assert channels(await ok(bridge, "GET", "/v1/queue", ACME)) == ACME_CHANNELS
    theirs = await ok(bridge, "GET", "/v1/queue", GLOBEX)
    assert channels(theirs) == GLOBEX_CHANNELS
    waiting = [w["id"] for c in theirs["channels"] for w in c["waiting"]]
    assert sorted(waiting) == sorted(globex)
    assert channels(await ok(bridge, "GET", "/v1/queue", ADMIN)) == ACME_CHANNELS | GLOBEX_CHANNELS
    assert channels(await ok(bridge, "GET", "/v1/queue?channel=globex-fi", ACME)) == set()


@pytest.mark.parametrize("path", ["/v1/conversations", "/v1/queue", "/v1/supervisor_link"])
async def test_naming_another_organization_is_refused(bridge: RunningBridge, path: str) -> None:
    status, answer = await call(bridge, "GET", f"{path}?organization_id=globex", ACME)
    assert status == 403, answer
    assert answer["error"]["fields"][0]["field"] == "organization_id"
    # The bots' token is shared by every bot: it lists nothing. No token, likewise.
    for headers in (BOT, {}):
        status, answer = await call(bridge, "GET", path, headers)
        assert status == 401, answer


async def test_a_supervisor_link_shows_its_organization_only(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    acme, globex = await three_chats(bridge, bot)
    acme_link = await ok(bridge, "GET", "/v1/supervisor_link", ACME)
    assert acme_link["organization_id"] == "acme"
    admin_link = await ok(bridge, "GET", "/v1/supervisor_link", ADMIN)
    assert admin_link["organization_id"] is None
    globex_link = await ok(bridge, "GET", "/v1/supervisor_link?organization_id=globex", ADMIN)
    assert globex_link["organization_id"] == "globex"

    def api(link: dict[str, Any], what: str) -> str:
        token = link["url"].rsplit("/", 1)[1]
        return f"/console/supervisor-api/{token}/{what}"

    assert ids(await ok(bridge, "GET", api(acme_link, "conversations"), {})) == [acme]
    assert ids(await ok(bridge, "GET", api(globex_link, "conversations"), {})) == globex
    assert ids(await ok(bridge, "GET", api(admin_link, "conversations"), {})) == [acme, *globex]
    narrowed = api(admin_link, "conversations?organization_id=globex")
    assert ids(await ok(bridge, "GET", narrowed, {})) == globex
    status, answer = await call(
        bridge, "GET", api(acme_link, "conversations?organization_id=globex"), {}
    )
    assert status == 403 and answer["error"]["fields"][0]["field"] == "organization_id"
    assert channels(await ok(bridge, "GET", api(acme_link, "queue"), {})) == ACME_CHANNELS
    assert (await ok(bridge, "GET", api(acme_link, "scope"), {})) == {"organization_id": "acme"}
    # The page's filters are the API's: a wrong one is a 422 naming it.
    status, answer = await call(bridge, "GET", api(acme_link, "conversations?limit=0"), {})
    assert status == 422 and answer["error"]["fields"][0]["field"] == "limit"

    async with bridge.http.get(bridge.url(urlsplit(acme_link["url"]).path)) as page:
        assert page.status == 200 and page.content_type == "text/html"
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]


async def test_a_tampered_or_foreign_token_is_refused(bridge: RunningBridge) -> None:
    link = await ok(bridge, "GET", "/v1/supervisor_link", ACME)
    token = link["url"].rsplit("/", 1)[1]
    payload, stamp, signature = token.rsplit(".", 2)
    tampered = f"{payload}.{stamp}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    desk = await ok(bridge, "GET", "/v1/agents/a1/desk_link", ACME)
    desk_token = desk["url"].rsplit("/", 1)[1]
    for bad in (tampered, desk_token):
        status, answer = await call(bridge, "GET", f"/console/supervisor-api/{bad}/queue", {})
        assert status == 403, answer
        async with bridge.http.get(bridge.url(f"/console/supervisor/{bad}")) as page:
            assert page.status == 403 and page.content_type == "text/html"


async def next_event(stream: aiohttp.ClientResponse) -> tuple[str, Any]:
    """The next server-sent event's name and data."""
    name, data = "message", ""
    async for raw in stream.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data += line.removeprefix("data:").strip()
        elif not line and data:
            return name, json.loads(data)
    raise AssertionError("the stream ended")


async def changed_to(stream: aiohttp.ClientResponse, counts: dict[str, int]) -> None:
    """Read `changed` events until one says `counts` (each change is told, maybe with others
    that came between)."""
    seen: list[Any] = []

    async def read() -> None:
        while True:
            event = await next_event(stream)
            seen.append(event)
            if event == ("changed", counts):
                return

    try:
        await asyncio.wait_for(read(), WITHIN_SECONDS)
    except TimeoutError:
        raise AssertionError(f"no changed event with {counts}; saw {seen}") from None


async def test_the_live_stream_says_when_its_organizations_chats_change(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    link = await ok(bridge, "GET", "/v1/supervisor_link", ACME)
    token = link["url"].rsplit("/", 1)[1]
    url = bridge.url(f"/console/supervisor-api/{token}/events")
    async with bridge.http.get(url, timeout=aiohttp.ClientTimeout(total=None)) as stream:
        assert stream.status == 200 and stream.content_type == "text/event-stream"
        # At once, so a page that loaded before the stream connected reads again.
        assert await asyncio.wait_for(next_event(stream), WITHIN_SECONDS) == (
            "changed",
            {"under_way": 0, "waiting": 0},
        )
        await hand_off(bridge, bot, 2, "globex-site", None)  # not acme's: nothing to tell
        acme = await hand_off(bridge, bot, 1, None, "es")
        await changed_to(stream, {"under_way": 1, "waiting": 1})
        await ok(bridge, "POST", f"/v1/conversations/{acme}/assign", BOT, {"agent_id": "a1"})
        await changed_to(stream, {"under_way": 1, "waiting": 0})
        await ok(bridge, "POST", f"/v1/conversations/{acme}/close", BOT, {})
        await changed_to(stream, {"under_way": 0, "waiting": 0})
