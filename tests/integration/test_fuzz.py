"""Nothing a client sends is answered with a 5xx: a seeded fuzzer over every route.

The routes are read from the app's router when the test runs, so a new route is fuzzed
without anyone listing it here. Each request is real HTTP to the real app on a real port,
on SQLite and on PostgreSQL. Path parameters are either values that exist (a live
conversation, a router, a webhook's secret) so the request gets past the lookup and the
credentials, or hostile text; bodies are a route's valid example with a few values
replaced, or random JSON, deep nesting, NUL bytes, lone surrogates, huge strings and
non-JSON. Hypothesis runs derandomized, so CI fuzzes the same requests every time, and a
failure prints the request that got the 5xx.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import unused_port
from hypothesis import HealthCheck, given, settings

from bridge.relay import signing
from bridge.settings import Settings
from tests.adapters.fake_kommunicate import basic
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body
from tests.fuzzing import Aim, FuzzRequest, Route, requests, send, served_routes

# Requests per backend: well under a minute each on a small CI machine. Set
# BRIDGE_FUZZ_EXAMPLES to fuzz longer locally.
EXAMPLES = int(os.environ.get("BRIDGE_FUZZ_EXAMPLES", "2000"))
FIXTURES = Path(__file__).resolve().parent.parent / "adapters" / "fixtures"
ORG = "acme"
ORG_TOKEN = "org-token-fuzz-1234567890"
INTEGRATION_SECRET = "whsec_" + base64.b64encode(b"fuzz-integration-key-32-bytes!!!").decode()
# Each platform channel and the secret that lets a webhook in (env variable, value).
SECRETS = {
    "FUZZ_KM_API_KEY": "km-api-key",
    "FUZZ_KM_TOKEN": "km-webhook-token-123",
    "FUZZ_CV_API": "cv-api-token",
    "FUZZ_CV_TOKEN": "cv-webhook-token-123",
    "FUZZ_GS_API": "gs-api-token",
    "FUZZ_GS_SECRET": "gs-webhook-secret-123",
    "FUZZ_VV_TOKEN": "vv-webhook-token-1234",
    "FUZZ_JV_TOKEN": "jivo-bot-token-123456",
    "FUZZ_JV_SECRET": "jivo-endpoint-secret",
    "FUZZ_JC_TOKEN": "jivo-chat-token-12345",
    "FUZZ_TOVIE_TOKEN": "tovie-api-token-123",
}
PATH_TOKENS = {
    "cv": SECRETS["FUZZ_CV_TOKEN"],
    "gs": SECRETS["FUZZ_GS_SECRET"],
    "vv": SECRETS["FUZZ_VV_TOKEN"],
    "jc": SECRETS["FUZZ_JC_TOKEN"],
}
WEBHOOK_FIXTURES = {
    "km": ["kommunicate/webhook_agent_message.json", "kommunicate/webhook_attachment.json"],
    "cv": ["chatvisor/webhook_message_agent.json", "chatvisor/webhook_status_done.json"],
    "gs": ["giosg/webhook_user_message.json", "giosg/webhook_chat_ended.json"],
    "vv": ["vivochat/chat_accepted.json", "vivochat/client_check_token.json"],
    "jc": ["jivochat/chat_api_agent_message.json"],
}
BOT_FIXTURES = {
    "selectDestination": "tovie/select_destination.json",
    "sendText": "tovie/send_text.json",
    "sendFile": "tovie/send_file.json",
    "closeChat": "tovie/close_chat.json",
    "setWebhook": "tovie/set_webhook.json",
}
BOT_PATHS = {
    "tovie": [f"{SECRETS['FUZZ_TOVIE_TOKEN']}/{method}" for method in BOT_FIXTURES],
    "jivo": [SECRETS["FUZZ_JV_TOKEN"], f"{SECRETS['FUZZ_JV_TOKEN']}/reply"],
}
JIVO_FIXTURES = ["jivochat/client_message.json", "jivochat/agent_message.json"]
QUERY_NAMES = ("after", "limit", "status", "conversation_id", "page", "page_size", "ordering")


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _channels(dead_url: str) -> dict[str, Any]:
    """One channel per platform with webhooks, each reached through a region of `mysite`."""
    return {
        "mysite": {"regions": {name: name for name in WEBHOOK_FIXTURES}},
        "km": {
            "platform": "kommunicate",
            "options": {
                "api_key": "FUZZ_KM_API_KEY",
                "webhook_token": "FUZZ_KM_TOKEN",
                "base_url": dead_url,
            },
        },
        "cv": {
            "platform": "chatvisor",
            "options": {
                "api_token": "FUZZ_CV_API",
                "webhook_token": "FUZZ_CV_TOKEN",
                "base_url": dead_url,
            },
        },
        "gs": {
            "platform": "giosg",
            "options": {
                "api_token": "FUZZ_GS_API",
                "webhook_secret": "FUZZ_GS_SECRET",
                "organization_id": ORG,
                "room_id": "room-1",
                "base_url": dead_url,
            },
        },
        "vv": {
            "platform": "vivochat",
            "options": {"webhook_token": "FUZZ_VV_TOKEN", "channel_id": "1CafijNcdgYtDhS3vg9b1V"},
        },
        "jc": {
            "platform": "jivochat",
            "options": {
                "mode": "chat_api",
                "chat_api_url": dead_url,
                "endpoint_secret": "FUZZ_JV_SECRET",
                "public_id": "DCall6BR1M",
                "webhook_token": "FUZZ_JC_TOKEN",
            },
        },
    }


def _bots(dead_url: str, bot_url: str) -> dict[str, Any]:
    jivo = {"provider_id": "prov-1", "token": "FUZZ_JV_TOKEN", "bot_api_url": dead_url}
    return {
        "tovie": {"platform": "tovie", "options": {"api_token": "FUZZ_TOVIE_TOKEN"}},
        "jivo": {"platform": "jivochat", "options": {**jivo, "bot_url": bot_url}},
    }


@dataclass
class Known:
    """Values that exist in the running bridge, and a valid body per route."""

    params: dict[str, list[str]] = field(default_factory=dict)
    bodies: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, name: str, *values: str) -> None:
        self.params.setdefault(name, []).extend(values)


async def _created(bridge: RunningBridge, path: str, body: Any, **kwargs: Any) -> Any:
    status, answer = await bridge.post(path, body, **kwargs)
    assert status in (200, 201), (path, status, answer)
    return answer


async def _seed(bridge: RunningBridge, bot: FakeBot) -> Known:
    """A conversation on every channel, an agent, a team, a router and a subscription."""
    known = Known()
    for region in ["es", *WEBHOOK_FIXTURES]:
        conversation = await _created(
            bridge,
            "/v1/handoffs",
            handoff_body(
                bot.url, region=region, conversation_id=f"b-{region}", customer_id=f"c-{region}"
            ),
        )
        known.add("conversation_id", conversation["id"])
        if region == "es":
            known.add("token", conversation["join_url"].rsplit("/", 1)[1])
    org = {"Authorization": f"Token {ORG_TOKEN}"}
    async with bridge.http.put(bridge.url("/v1/teams/team-1"), json={"name": "Team"}) as r:
        assert r.status == 200, await r.text()
    agent = {"name": "Ana", "teams": ["team-1"]}
    async with bridge.http.put(bridge.url("/v1/agents/agent-1"), json=agent) as r:
        assert r.status == 200, await r.text()
    _, link = await bridge.get("/v1/agents/agent-1/desk_link")
    step = {"preconditions": [], "organization_ids": [], "team_ids": ["team-1"]}
    router = {"name": "Router", "steps": [{**step, "user_ids": ["agent-1"]}]}
    created = await _created(bridge, f"/api/v5/orgs/{ORG}/routers", router, headers=org)
    subscription = await _created(bridge, "/v1/subscriptions", {"url": bot.url})
    known.add("token", link["url"].rsplit("/", 1)[1], *PATH_TOKENS.values())
    known.add("agent_id", "agent-1")
    known.add("team_id", "team-1")
    known.add("router_id", created["id"])
    known.add("organization_id", ORG)
    known.add("room_id", "mysite", "km")
    known.add("subscription_id", subscription["id"])
    known.add("item_id", "1", "2")
    known.add("channel", *WEBHOOK_FIXTURES)
    known.add("bot", "tovie", "jivo")
    known.add("path", *BOT_PATHS["tovie"], *BOT_PATHS["jivo"])
    known.add("filename", "console.js", "desk.html")
    conversation_id = known.params["conversation_id"][0]
    for channel, names in WEBHOOK_FIXTURES.items():
        known.bodies[f"webhook:{channel}"] = [_fixture(name) for name in names]
    for method, name in BOT_FIXTURES.items():
        known.bodies[f"bot:{method}"] = [_fixture(name)]
    known.bodies["bot:jivo"] = [_fixture(name) for name in JIVO_FIXTURES]
    known.bodies["bot:reply"] = [{"chat_id": "2037", "client_id": "1233", "text": "Hi"}]
    handoff = handoff_body(bot.url, settings={"team_id": "team-1", "priority": 1})
    for key, body in {
        "/v1/handoffs": handoff,
        "/v1/routing/explain": handoff,
        "/v1/conversations/{conversation_id}/messages": {"text": "Hi", "id": "m-1"},
        "/v1/conversations/{conversation_id}/metadata": {"metadata": {"a": 1}},
        "/v1/conversations/{conversation_id}/assign": {"agent_id": "agent-1"},
        "/v1/conversations/{conversation_id}/close": {"reason": "done"},
        "/v1/agents/{agent_id}": agent,
        "/v1/agents/{agent_id}/presence": {"presence": "online"},
        "/v1/teams/{team_id}": {"name": "Team", "hours": None},
        "/v1/subscriptions": {"url": bot.url, "events": ["*"], "description": "crm"},
        "/integrations/customers": {"customer_id": "c-es", "labels_add": ["x"]},
        "/integrations/conversations/{conversation_id}/metadata": {"metadata": {"a": "b"}},
        "/integrations/presence": {"channel": "km", "agent_id": "a-2", "presence": "online"},
        "/api/v5/orgs/{organization_id}/routers": router,
        "/api/v5/orgs/{organization_id}/routers/{router_id}": router,
        "/api/v5/orgs/{organization_id}/rooms/{room_id}": {"router_id": created["id"]},
        "/console/api/{token}/join": {"name": "Ana"},
        "/console/api/{token}/messages": {"text": "Hello", "client_id": "x-1"},
        "/console/desk-api/{token}/presence": {"presence": "online"},
        "/console/desk-api/{token}/take/{conversation_id}": {},
        "(any)": {"conversation_id": conversation_id},
    }.items():
        known.bodies[key] = [body]
    return known


def _aim(known: Known) -> Aim:
    """The bridge's own knowledge: existing ids, valid bodies, and each route's credentials."""

    def values(route: Route, name: str, drawn: dict[str, str]) -> list[str]:
        # A webhook's secret and a bot API's path go with the channel or bot drawn before.
        if name == "token" and route.template.startswith("/webhooks/"):
            token = PATH_TOKENS.get(drawn.get("channel", ""))
            return [token] if token else []
        if name == "path" and drawn.get("bot") in BOT_PATHS:
            return BOT_PATHS[drawn["bot"]]
        return known.params.get(name, [])

    def templates(route: Route, drawn: dict[str, str]) -> list[Any]:
        if route.template.startswith("/webhooks/"):
            return known.bodies.get(f"webhook:{drawn['channel']}", [])
        if route.template.startswith("/bots/"):
            action = drawn["path"].rsplit("/", 1)[-1]
            if drawn["bot"] == "jivo":
                return known.bodies["bot:reply" if action == "reply" else "bot:jivo"]
            return known.bodies.get(f"bot:{action}", [])
        return known.bodies.get(route.template, known.bodies["(any)"])

    def credentials(route: Route, drawn: dict[str, str], body: bytes) -> dict[str, str]:
        if route.template.startswith("/integrations/"):
            key = signing.secret_key(INTEGRATION_SECRET)
            stamp = int(time.time())
            return signing.headers(key, f"msg_{stamp}", stamp, body.decode("utf-8", "replace"))
        if drawn.get("channel") == "km":
            return {"Authentication": basic(SECRETS["FUZZ_KM_TOKEN"])}
        return {"Authorization": f"Token {ORG_TOKEN}"}

    return Aim(values, templates, credentials, QUERY_NAMES)


# -- the test -------------------------------------------------------------------------------


class StoreRefusals(logging.Handler):
    """Counts requests that reached the store with a value it refused.

    The API answers those 4xx too, but as a last resort that cannot name the field: each
    one means an input check is missing, so the fuzzer fails on it as on a 5xx.
    """

    def __init__(self) -> None:
        super().__init__()
        self.routes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "api.refused_by_store":
            self.routes.append(str(getattr(record, "route", "?")))


def fuzz(port: int, routes: list[Route], aim: Aim, examples: int) -> None:
    """Send `examples` generated requests; fail on a 5xx or a store refusal, naming the request."""
    refusals = StoreRefusals()
    logging.getLogger("bridge").addHandler(refusals)

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(requests(routes, aim))
    def no_server_error(request: FuzzRequest) -> None:
        refused = len(refusals.routes)
        status, answer = send(port, request)
        assert status < 500, f"{status} for\n{request!r}\nanswer: {answer[:500]!r}"
        assert len(refusals.routes) == refused, (
            f"the store refused a value of\n{request!r}\nanswer: {answer[:500]!r}"
        )

    try:
        no_server_error()
    finally:
        logging.getLogger("bridge").removeHandler(refusals)


def platform_settings(
    database: Database, bot_url: str, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Every platform with webhooks, both bot APIs, an org token and an integration secret.

    The platforms' own APIs are a closed port: opening a chat there fails in the
    background, which changes nothing about what the bridge answers its callers.
    """
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    dead_url = f"http://127.0.0.1:{unused_port()}"
    return make_settings(
        database,
        unused_port(),
        channels=_channels(dead_url),
        bots=_bots(dead_url, bot_url),
        security={
            "org_tokens": {ORG_TOKEN: {"organization_id": ORG, "user_id": "u-1"}},
            "integration_secrets": [INTEGRATION_SECRET],
        },
        relay={"max_attempts": 2},
        organization_id=ORG,
    )


async def test_no_route_answers_5xx_to_anything_a_client_sends(
    database: Database, bot: FakeBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = await start_bridge(platform_settings(database, bot.url, monkeypatch))
    try:
        known = await _seed(bridge, bot)
        routes = served_routes(bridge.server.app)
        assert len(routes) > 40, routes
        port = bridge.server.port
        assert port is not None
        await asyncio.to_thread(fuzz, port, routes, _aim(known), EXAMPLES)
    finally:
        await stop_bridge(bridge)
