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
import copy
import http.client
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.relay import signing
from bridge.settings import Settings
from tests.adapters.fake_kommunicate import basic
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body

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
BODY_METHODS = {"POST", "PUT", "PATCH", "*"}
JIVO_FIXTURES = ["jivochat/client_message.json", "jivochat/agent_message.json"]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
]
QUERY_NAMES = ["after", "limit", "status", "conversation_id", "page", "page_size", "ordering"]
NASTY = [
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "²",
    "١٢",
    "-1",
    "0",
    "9" * 25,
    "NaN",
    "..",
    "%",
    "ü",
    "\u202e",
    "null",
]


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
        "conversation": {"conversation_id": conversation_id},
    }.items():
        known.bodies[key] = [body]
    return known


@dataclass(frozen=True)
class Route:
    """One method and path template the app serves."""

    method: str
    template: str

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)", self.template)


def served_routes(app: web.Application) -> list[Route]:
    """Every route of the app, read from its router (static files get a `{filename}`)."""
    routes = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None:
            continue
        template = resource.canonical
        if isinstance(resource, web.StaticResource):
            template += "/{filename}"
        routes.add(Route(route.method, template))
    return sorted(routes, key=lambda r: (r.template, r.method))


@dataclass(frozen=True)
class FuzzRequest:
    """One request as sent on the wire; its repr is what a failure prints."""

    method: str
    target: str
    headers: tuple[tuple[str, bytes], ...]
    body: bytes

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 600 else self.body[:600] + b"...(truncated)"
        return f"{self.method} {self.target}\n  headers={list(self.headers)}\n  body={body!r}"


# -- strategies ------------------------------------------------------------------------------

texts = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(exclude_categories=()), max_size=30),
    st.sampled_from(NASTY),
    st.integers(60, 3000).map(lambda n: "k" * n),
    # Just over the lengths of the store's columns and of a message.
    st.sampled_from([37, 65, 129, 257, 321, 10_001]).map(lambda n: "k" * n),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=10,
)
DEEP = "\x01deep\x01"


def _slots(document: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON document, breadth first."""
    slots: list[tuple[Any, Any]] = []
    pending = [document]
    while pending:
        node = pending.pop(0)
        keys = list(node) if isinstance(node, dict) else range(len(node))
        for key in keys:
            slots.append((node, key))
            if isinstance(node[key], dict | list):
                pending.append(node[key])
    return slots


@st.composite
def mutated(draw: st.DrawFn, template: Any) -> Any:
    """A valid body with a few values replaced, dropped, or buried in deep nesting."""
    document = copy.deepcopy(template)
    for _ in range(draw(st.integers(0, 3))):
        slots = _slots(document) if isinstance(document, dict | list) else []
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["value", "value", "drop", "deep", "list", "extra"]))
        if action == "drop" and isinstance(container, dict):
            del container[key]
        elif action == "list" and isinstance(container, list):
            container.append(copy.deepcopy(container[key]))  # a repeated item
        elif action == "deep":
            container[key] = DEEP
        elif action == "list":
            container[key] = [container[key], container[key]]
        elif action == "extra" and isinstance(container, dict):
            container[draw(texts)] = draw(json_values)
        else:
            container[key] = draw(json_values)
    return document


@st.composite
def bodies(draw: st.DrawFn, templates: list[Any]) -> bytes:
    """Bytes of a body: mostly JSON near a valid one, sometimes anything at all."""
    kind = draw(st.sampled_from(["template"] * 5 + ["random", "deep", "raw", "empty"]))
    if kind == "empty":
        return b""
    if kind == "raw":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        depth = draw(st.integers(30, 5000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return (opener * depth + "1" + closer * depth).encode()
    document = draw(mutated(draw(st.sampled_from(templates))) if templates else json_values)
    if kind == "random":
        document = draw(json_values)
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    depth = draw(st.integers(10, 3000))
    text = text.replace(json.dumps(DEEP), "[" * depth + "0" + "]" * depth)
    return text.encode("utf-8", "surrogatepass")


def _encode(value: str, safe: str = "") -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe=safe)


def _templates(known: Known, route: Route, values: dict[str, str]) -> list[Any]:
    if route.template.startswith("/webhooks/"):
        return known.bodies.get(f"webhook:{values['channel']}", [])
    if route.template.startswith("/bots/"):
        action = values["path"].rsplit("/", 1)[-1]
        if values["bot"] == "jivo":
            return known.bodies["bot:reply" if action == "reply" else "bot:jivo"]
        return known.bodies.get(f"bot:{action}", [])
    return known.bodies.get(route.template, known.bodies["conversation"])


def _headers(route: Route, values: dict[str, str], body: bytes) -> dict[str, str]:
    """The credentials a route wants, so the request reaches the parser behind them."""
    if route.template.startswith("/integrations/"):
        key = signing.secret_key(INTEGRATION_SECRET)
        stamp = int(time.time())
        return signing.headers(key, f"msg_{stamp}", stamp, body.decode("utf-8", "replace"))
    if values.get("channel") == "km":
        return {"Authentication": basic(SECRETS["FUZZ_KM_TOKEN"])}
    return {"Authorization": f"Token {ORG_TOKEN}"}


def requests(routes: list[Route], known: Known) -> st.SearchStrategy[FuzzRequest]:
    """Requests to the app's routes, each aimed past its credentials most of the time."""
    # Routes that take a body are where most input goes: they are drawn three times as often.
    weighted = [r for r in routes for _ in range(3 if r.method in BODY_METHODS else 1)]

    @st.composite
    def build(draw: st.DrawFn) -> FuzzRequest:
        route = draw(st.sampled_from(weighted))
        method = route.method
        if method == "*":
            method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
        values: dict[str, str] = {}
        for name in route.params:
            real = _real_values(known, route, name, values)
            use_real = real and draw(st.integers(0, 4)) > 0
            values[name] = draw(st.sampled_from(real)) if use_real else draw(texts)
        path = route.template
        for name, value in values.items():
            segment = _encode(value, "/" if name == "path" else "")
            path = re.sub(r"\{" + name + r"(:[^}]*)?\}", lambda _, s=segment: s, path)
        query = draw(st.dictionaries(st.sampled_from(QUERY_NAMES) | texts, texts, max_size=3))
        if query:
            path += "?" + "&".join(f"{_encode(k)}={_encode(v)}" for k, v in query.items())
        body = draw(bodies(_templates(known, route, values)))
        headers = {"Content-Type": draw(st.sampled_from(["application/json"] * 6 + CONTENT_TYPES))}
        if draw(st.integers(0, 5)) > 0:
            headers.update(_headers(route, values, body))
        # One value per header name, whatever its case (signing.headers has content-type).
        wire = {k.title(): v.encode("latin-1", "replace") for k, v in headers.items()}
        if draw(st.integers(0, 9)) == 0:
            name = draw(st.sampled_from(["Authorization", "Content-Type", "Last-Event-ID"]))
            wire[name] = draw(st.binary(min_size=1, max_size=40).filter(_legal_header))
        return FuzzRequest(method, path, tuple(wire.items()), body)

    return build()


def _real_values(known: Known, route: Route, name: str, values: dict[str, str]) -> list[str]:
    """Existing values for a path parameter that agree with the ones drawn before it."""
    if name == "token" and route.template.startswith("/webhooks/"):
        token = PATH_TOKENS.get(values.get("channel", ""))
        return [token] if token else []
    if name == "path" and values.get("bot") in BOT_PATHS:
        return BOT_PATHS[values["bot"]]
    return known.params.get(name, [])


def _legal_header(value: bytes) -> bool:
    # Control bytes HTTP cannot carry in a header value: the server's parser refuses them.
    return not re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value) and value.strip() == value


# -- the test -------------------------------------------------------------------------------


def _send(port: int, request: FuzzRequest) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(request.method, request.target, skip_accept_encoding=True)
        for name, value in request.headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(request.body)))
        connection.endheaders(request.body)
        response = connection.getresponse()
        if response.getheader("Content-Type", "").startswith("text/event-stream"):
            return response.status, b"(a live event stream)"
        return response.status, response.read()
    finally:
        connection.close()


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


def fuzz(port: int, routes: list[Route], known: Known, examples: int) -> None:
    """Send `examples` generated requests; fail on the first 5xx, naming the request."""
    refusals = StoreRefusals()
    logging.getLogger("bridge").addHandler(refusals)

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(requests(routes, known))
    def no_server_error(request: FuzzRequest) -> None:
        refused = len(refusals.routes)
        status, answer = _send(port, request)
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
        await asyncio.to_thread(fuzz, port, routes, known, EXAMPLES)
    finally:
        await stop_bridge(bridge)
