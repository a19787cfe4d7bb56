"""What a client sends never earns a 5xx: each case the fuzzer found, pinned down.

Deep JSON, NUL characters, lone surrogates, ids longer than their column, numbers that
are not finite, repeated team ids and undecodable headers are answered 4xx naming the
field, on SQLite and on PostgreSQL, and nothing is stored. A value the store itself
refuses is never a 503 with Retry-After (a client would retry it for ever), while a real
outage still is.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port
from sqlalchemy import text

from bridge.api.errors import error_middleware
from bridge.db.engine import create_engine
from bridge.settings import DatabaseSettings
from bridge.typedefs import SETTINGS
from tests.adapters.fake_giosg import message_webhook
from tests.adapters.fake_kommunicate import FakeKommunicate, basic
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body
from tests.integration import test_platform_kommunicate
from tests.integration.test_bad_input import _counts
from tests.integration.test_fuzz import ORG, ORG_TOKEN, SECRETS, platform_settings
from tests.integration.test_platform_kommunicate import AGENT, TOKEN, _group, _handoff

kommunicate = test_platform_kommunicate.kommunicate
km_bridge = test_platform_kommunicate.km_bridge

JSON = {"Content-Type": "application/json"}
DEEP = b"[" * 1000 + b"]" * 1000


def _fields(answer: dict[str, Any]) -> dict[str, str]:
    return {f["field"]: f["problem"] for f in answer["error"]["fields"]}


async def _post_raw(
    bridge: RunningBridge, path: str, raw: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any, str | None]:
    """POST bytes as they are; the status, the JSON answer and any Retry-After."""
    async with bridge.http.post(bridge.url(path), data=raw, headers=headers or JSON) as r:
        return r.status, await r.json(), r.headers.get("Retry-After")


@pytest.fixture
async def platforms(
    database: Database, bot: FakeBot, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RunningBridge]:
    """A bridge with a channel on every platform, both bot APIs and an org token."""
    bridge = await start_bridge(platform_settings(database, bot.url, monkeypatch))
    try:
        yield bridge
    finally:
        await stop_bridge(bridge)


# -- JSON nested 1,000 levels deep: 500 on every JSON route --------------------------------


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/handoffs", JSON),
        ("/v1/routing/explain", JSON),
        ("/v1/subscriptions", JSON),
        (f"/api/v5/orgs/{ORG}/routers", {**JSON, "Authorization": f"Token {ORG_TOKEN}"}),
        ("/webhooks/km", {**JSON, "Authentication": basic(SECRETS["FUZZ_KM_TOKEN"])}),
        (f"/webhooks/gs/{SECRETS['FUZZ_GS_SECRET']}", JSON),
        (f"/bots/tovie/{SECRETS['FUZZ_TOVIE_TOKEN']}/sendText", JSON),
    ],
)
async def test_deep_json_is_a_400_naming_the_body(
    platforms: RunningBridge, path: str, headers: dict[str, str]
) -> None:
    for body in (DEEP, b'{"metadata": {"a": ' + DEEP + b"}}"):
        status, answer, retry = await _post_raw(platforms, path, body, headers)
        assert status == 400, answer
        assert _fields(answer) == {"(body)": "nested deeper than 64 levels"}, answer
        assert retry is None


async def test_deep_json_text_in_a_setting_is_refused(bridge: RunningBridge, bot: FakeBot) -> None:
    # skipBotEvent may be JSON text, which routing decodes: it is held to the same limit.
    body = handoff_body(bot.url, settings={"skipBotEvent": "[" * 5000})
    status, answer = await bridge.post("/v1/handoffs", body)
    assert status == 422, answer
    assert "settings" in _fields(answer)


async def test_deep_json_text_in_a_tovie_attribute_is_refused(platforms: RunningBridge) -> None:
    path = f"/bots/tovie/{SECRETS['FUZZ_TOVIE_TOKEN']}/selectDestination"
    body = {"userId": "u-1", "destinationId": "mysite", "attributes": "[" * 5000 + "]" * 5000}
    status, answer = await platforms.post(path, body)
    assert 400 <= status < 500, answer


# -- NUL characters and lone surrogates: 503 with Retry-After on PostgreSQL, 500 -----------


@pytest.mark.parametrize(
    ("mutate", "field", "problem"),
    [
        (lambda b: b["customer"].update(firstname="Jo\x00hn"), "customer.firstname", "NUL"),
        (lambda b: b["bot"].update(conversation_id="\ud800"), "bot.conversation_id", "surrogate"),
        (lambda b: b["history"][1].update(text="x\udfff"), "history[1].text", "surrogate"),
        (lambda b: b.update(metadata={"plan\x00": "vip"}), "metadata", "a key contains a NUL"),
    ],
)
async def test_nul_and_lone_surrogates_in_a_body_are_400_naming_the_field(
    bridge: RunningBridge, bot: FakeBot, mutate: Any, field: str, problem: str
) -> None:
    body = handoff_body(bot.url)
    mutate(body)
    before = await _counts(bridge)
    # json.dumps writes both as \\u escapes, as any JSON client would.
    status, answer, retry = await _post_raw(bridge, "/v1/handoffs", json.dumps(body).encode())
    assert status == 400, answer
    assert problem in _fields(answer)[field], answer
    assert retry is None
    assert await _counts(bridge) == before


async def test_a_lone_surrogate_in_router_id_is_refused(platforms: RunningBridge) -> None:
    raw = json.dumps({"router_id": "\ud800"}).encode()
    headers = {**JSON, "Authorization": f"Token {ORG_TOKEN}"}
    url = platforms.url(f"/api/v5/orgs/{ORG}/rooms/mysite")
    async with platforms.http.patch(url, data=raw, headers=headers) as response:
        assert response.status == 400
        assert "surrogate" in _fields(await response.json())["router_id"]


async def test_nul_in_a_path_or_query_value_is_a_422_naming_it(bridge: RunningBridge) -> None:
    status, answer = await bridge.get("/v1/conversations/%00")
    assert status == 422, answer
    assert _fields(answer) == {"conversation_id": "contains a NUL character"}
    status, answer = await bridge.get("/v1/outbox?conversation_id=a%00b")
    assert status == 422, answer
    assert _fields(answer) == {"conversation_id": "contains a NUL character"}


async def test_a_header_that_is_not_utf8_is_a_422_naming_it(bridge: RunningBridge) -> None:
    # With an API token, the token check used to encode the header again: a 500.
    port = bridge.server.port
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /v1/outbox HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
        b"Connection: close\r\n\r\n"
    )
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 422"), answer
    assert _fields(json.loads(body)) == {"Authorization": "is not UTF-8 text"}


# -- ids longer than their column, numbers that are not numbers -----------------------------


async def test_kommunicate_message_key_over_256_is_acknowledged_and_dropped(
    km_bridge: RunningBridge, kommunicate: FakeKommunicate, bot: FakeBot
) -> None:
    """It was a 500, so Kommunicate redelivered it for ever; a 2xx stops that."""
    cid = await _handoff(km_bridge, bot)
    await kommunicate.wait_for(lambda k: k.group(cid) is not None)
    group = _group(kommunicate, cid)
    headers = {"Authentication": basic(TOKEN)}
    too_long = kommunicate.webhook_payload(group, "lost", sender=AGENT, key="5-" + "k" * 300)
    status, answer = await km_bridge.post("/webhooks/support", too_long, headers=headers)
    assert status == 200, answer
    fine = kommunicate.webhook_payload(group, "Hi, Ana here", sender=AGENT)
    status, answer = await km_bridge.post("/webhooks/support", fine, headers=headers)
    assert status == 200, answer
    _, body = await km_bridge.get(f"/v1/conversations/{cid}/messages")
    agent_lines = [m["text"] for m in body["messages"] if m["role"] == "agent"]
    assert agent_lines == ["Hi, Ana here"]


async def test_over_long_ids_in_the_path_are_a_422(bridge: RunningBridge) -> None:
    async with bridge.http.put(bridge.url("/v1/agents/" + "a" * 129), json={"name": "A"}) as r:
        assert r.status == 422
        assert _fields(await r.json()) == {"agent_id": "must be at most 128 characters"}
    async with bridge.http.put(bridge.url("/v1/teams/" + "t" * 129), json={"name": "T"}) as r:
        assert r.status == 422
        assert _fields(await r.json()) == {"team_id": "must be at most 128 characters"}
    async with bridge.http.put(
        bridge.url("/v1/teams/t1"), json={"name": "T", "hours": "h" * 129}
    ) as r:
        assert r.status == 422
        assert "hours" in _fields(await r.json())


async def test_repeated_team_ids_are_one_membership(bridge: RunningBridge) -> None:
    async with bridge.http.put(bridge.url("/v1/teams/t1"), json={"name": "T"}) as r:
        assert r.status == 200, await r.text()
    agent = {"name": "Ana", "teams": ["t1", "t1"]}
    async with bridge.http.put(bridge.url("/v1/agents/ana"), json=agent) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["teams"] == ["t1"]
    agent = {"name": "Ana", "teams": ["t" * 129]}
    async with bridge.http.put(bridge.url("/v1/agents/ana"), json=agent) as r:
        assert r.status == 422
        assert "teams[0]" in _fields(await r.json())


async def test_numbers_that_are_not_finite_are_refused(bridge: RunningBridge, bot: FakeBot) -> None:
    body = json.dumps(handoff_body(bot.url, metadata={"order": 1})).encode()
    for number in (b"1e400", b"-1e400", b"NaN", b"Infinity"):
        status, answer, _ = await _post_raw(
            bridge, "/v1/handoffs", body.replace(b'"order": 1', b'"order": ' + number)
        )
        assert status == 400, (number, answer)
        assert _fields(answer) == {"(body)": "not valid JSON"}


async def test_digits_python_reads_but_int_does_not(bridge: RunningBridge, bot: FakeBot) -> None:
    # "²".isdigit() is true and int("²") fails; 25 nines do not fit the store's integers.
    for item in ("%C2%B2", "9" * 25):
        status, answer = await bridge.post(f"/v1/outbox/{item}/retry")
        assert status == 404, answer
    _, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url))
    token = conversation["join_url"].rsplit("/", 1)[1]
    for after in ("%C2%B2", "9" * 25):
        async with bridge.http.get(bridge.url(f"/console/api/{token}/events?after={after}")) as r:
            assert r.status == 200


async def test_router_pages_in_digits_int_does_not_read_are_a_400(
    platforms: RunningBridge,
) -> None:
    headers = {"Authorization": f"Token {ORG_TOKEN}"}
    for page in ("%C2%B2", "9" * 5000):
        for name in ("page", "page_size"):
            status, answer = await platforms.get(
                f"/api/v5/orgs/{ORG}/routers?{name}={page}", headers=headers
            )
            assert status == 400, answer
            assert [f["field"] for f in answer["error"]["fields"]] == [name]


async def test_a_static_file_name_too_long_for_the_disk_is_404(bridge: RunningBridge) -> None:
    status, answer = await bridge.get("/console/static/" + "k" * 300)
    assert status == 404, answer


async def test_a_giosg_action_of_the_wrong_type_is_a_400(platforms: RunningBridge) -> None:
    body = message_webhook("chat-1", "hello")
    body["action"] = ["added"]
    status, answer = await platforms.post(f"/webhooks/gs/{SECRETS['FUZZ_GS_SECRET']}", body)
    assert status == 400, answer


# -- a value the store refuses is the request's fault; an outage is not ---------------------


async def _store_app(database: Database, url: str, statement: str) -> TestClient[Any, Any]:
    """A route behind the bridge's error middleware that runs `statement` on a real store."""
    engine = create_engine(DatabaseSettings(url=url, pg_schema=database.pg_schema))
    if database.pg_schema:
        statement = f'CREATE SCHEMA IF NOT EXISTS "{database.pg_schema}";{statement}'

    async def handler(request: web.Request) -> web.Response:
        async with engine.begin() as connection:
            for part in statement.split(";"):
                await connection.execute(text(part))
        return web.json_response({})

    async def dispose(app: web.Application) -> None:
        await engine.dispose()

    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS] = make_settings(database, unused_port())
    app.router.add_post("/", handler)
    app.on_cleanup.append(dispose)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_store_refusals_are_4xx_without_retry_after(database: Database) -> None:
    statements = {
        409: "CREATE TABLE probe (id VARCHAR(3) PRIMARY KEY);"
        "INSERT INTO probe (id) VALUES ('a');INSERT INTO probe (id) VALUES ('a')",
    }
    if database.backend == "postgres":  # SQLite keeps any length in a VARCHAR(3)
        statements[422] = "CREATE TABLE probe2 (id VARCHAR(3));INSERT INTO probe2 VALUES ('abcd')"
    for status, statement in statements.items():
        client = await _store_app(database, database.url, statement)
        try:
            response = await client.post("/")
            assert response.status == status, await response.text()
            assert "Retry-After" not in response.headers
            assert (await response.json())["error"]["fields"][0]["field"] == "(body)"
        finally:
            await client.close()


async def test_a_store_outage_is_still_a_503_with_retry_after(
    database: Database, tmp_path: Path
) -> None:
    if database.backend == "postgres":
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{unused_port()}/test"
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}"  # a directory: SQLite cannot open it
    client = await _store_app(database, url, "SELECT 1")
    try:
        response = await client.post("/")
        assert response.status == 503, await response.text()
        assert response.headers["Retry-After"] == "5"
    finally:
        await client.close()
