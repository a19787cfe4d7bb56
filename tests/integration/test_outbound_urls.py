"""Callers' URLs under the outbound policy: refused at the API, re-checked at delivery, and
no receiver's answer ever read back through the outbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

from bridge.errors import PlatformRejected
from bridge.outbound import REFUSED_AT_DELIVERY, OutboundPolicy
from bridge.ports.http import HttpClient
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fake_dns import TableResolver
from tests.fakes import FakeBot, handoff_body
from tests.kit.fake_platform import FakePlatform

PUBLIC = "93.184.215.14"
MARKER = "INTERNAL-ONLY-7f3a9c"

# Refused with the default policy and `allow_loopback: false`: each spelling of a
# non-public destination, and names that resolve to one.
REFUSED = [
    ("http://127.0.0.1:5432/", "is a loopback address"),
    ("http://2130706433/", "is a loopback address"),
    ("http://0x7f.1/", "is a loopback address"),
    ("http://017700000001/", "is a loopback address"),
    ("http://127.1/", "is a loopback address"),
    ("http://[::1]/", "is a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "is a loopback address"),
    ("http://localhost:6379/", "resolves to a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "is a link-local address"),
    ("http://10.0.0.5/", "is a private address"),
    ("http://[fd00::1]/", "is a private address"),
    ("http://0.0.0.0/", "is an unspecified address"),
    ("http://rebind.example/hook", "resolves to a private address"),
    ("http://nowhere.example/hook", "host does not resolve"),
]


def dns(**table: list[list[str]]) -> TableResolver:
    """Names resolved by the test; `localhost` as the system would."""
    return TableResolver({"localhost": [["127.0.0.1", "::1"]], **table})


@pytest.fixture
async def strict_bridge(database: Database) -> AsyncIterator[RunningBridge]:
    """A bridge on loopback told not to call loopback (as one on 0.0.0.0 would be)."""
    settings = make_settings(database, unused_port(), outbound={"allow_loopback": False})
    running = await start_bridge(settings, resolver=dns(**{"rebind.example": [["10.1.1.1"]]}))
    try:
        yield running
    finally:
        await stop_bridge(running)


def problems(body: Any) -> list[tuple[str, str]]:
    return [(f["field"], f["problem"]) for f in body["error"]["fields"]]


async def test_refused_callback_urls_are_422_and_store_nothing(
    strict_bridge: RunningBridge,
) -> None:
    for url, problem in REFUSED:
        status, body = await strict_bridge.post("/v1/handoffs", handoff_body(url))
        assert (status, problems(body)) == (422, [("callback_url", problem)]), url
    _, outbox = await strict_bridge.get("/v1/outbox")
    assert outbox["items"] == []
    # The bot conversation was never opened: a handoff with a public URL creates it now.
    status, body = await strict_bridge.post("/v1/handoffs", handoff_body(f"http://{PUBLIC}:9/hook"))
    assert status == 201, body


async def test_refused_subscription_urls_are_422_and_store_nothing(
    strict_bridge: RunningBridge,
) -> None:
    for url, problem in REFUSED:
        status, body = await strict_bridge.post("/v1/subscriptions", {"url": url})
        assert (status, problems(body)) == (422, [("url", problem)]), url
    _, listing = await strict_bridge.get("/v1/subscriptions")
    assert listing["items"] == []


async def test_a_bridge_on_every_address_refuses_loopback_callbacks(database: Database) -> None:
    # The Docker image listens on 0.0.0.0: with no outbound setting, loopback is refused.
    settings = make_settings(
        database,
        unused_port(),
        server={"host": "0.0.0.0"},
        security={"api_token": "bot-token-for-tests", "admin_token": "admin-token-for-tests"},
    )
    running = await start_bridge(settings)
    try:
        status, body = await running.post(
            "/v1/handoffs",
            handoff_body("http://127.0.0.1:9000/callback"),
            headers={"Authorization": "Bearer bot-token-for-tests"},
        )
        assert (status, problems(body)) == (422, [("callback_url", "is a loopback address")])
    finally:
        await stop_bridge(running)


async def test_allow_listed_networks_and_names_are_called(database: Database, bot: FakeBot) -> None:
    settings = make_settings(
        database,
        unused_port(),
        outbound={"allow_loopback": False, "allow": ["127.0.0.0/8", "bot.internal"]},
    )
    resolver = dns(**{"bot.internal": [["127.0.0.1"]]})
    running = await start_bridge(settings, resolver=resolver)
    try:
        status, _ = await running.post("/v1/handoffs", handoff_body(bot.url))
        assert status == 201
        by_name = bot.url.replace("127.0.0.1", "bot.internal")
        status, _ = await running.post(
            "/v1/handoffs", handoff_body(by_name, conversation_id="c2", customer_id="c2")
        )
        assert status == 201
        await bot.wait_for(lambda b: len({e.data["conversation_id"] for e in b.other_events}) == 2)
        assert resolver.lookups["bot.internal"] >= 1
    finally:
        await stop_bridge(running)


async def _dead(bridge: RunningBridge) -> list[dict[str, Any]]:
    body = await bridge.get_until("/v1/outbox?status=dead", lambda b: b["items"])
    items: list[dict[str, Any]] = body["items"]
    return items


async def test_a_name_rebound_after_acceptance_is_dead_at_delivery(database: Database) -> None:
    # Public when the handoff is accepted, the metadata service when the event is sent.
    resolver = dns(**{"bot.example": [[PUBLIC], ["169.254.169.254"]]})
    running = await start_bridge(make_settings(database, unused_port()), resolver=resolver)
    try:
        status, conversation = await running.post(
            "/v1/handoffs", handoff_body("http://bot.example/hook")
        )
        assert status == 201, conversation
        dead = await _dead(running)
        # Refused once and for all: not retried.
        assert {(i["last_error"], i["attempts"]) for i in dead} == {(REFUSED_AT_DELIVERY, 1)}
        assert resolver.lookups["bot.example"] >= 2
    finally:
        await stop_bridge(running)


@dataclass
class Receiver(FakePlatform):
    """A receiver that answers every POST with one status and a body of internal data."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Every path answers the same."""
        router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        body = json.dumps({"secret_config": MARKER, "detail": "x" * 50})
        return web.Response(status=self.status, text=body, headers=self.headers)


async def test_a_receivers_answer_never_shows_in_the_outbox(bridge: RunningBridge) -> None:
    async with Receiver(500) as receiver:
        status, _ = await bridge.post("/v1/subscriptions", {"url": receiver.url_for("/crm")})
        assert status == 201
        status, conversation = await bridge.post(
            "/v1/handoffs", handoff_body(receiver.url_for("/cb"))
        )
        assert status == 201
        dead = await bridge.get_until(
            "/v1/outbox?status=dead",
            lambda b: {i["kind"] for i in b["items"]} >= {"bot.event", "subscription.event"},
        )
    assert {i["last_error"] for i in dead["items"]} == {"HTTP 500"}
    assert {"/cb", "/crm"} <= set(receiver.paths())
    for path in ("/v1/outbox", f"/v1/conversations/{conversation['id']}"):
        async with bridge.http.get(bridge.url(path)) as response:
            assert MARKER not in await response.text()


async def test_redirects_are_not_followed(bridge: RunningBridge) -> None:
    async with Receiver(307) as receiver:
        receiver.headers["Location"] = receiver.url_for("/elsewhere")
        status, _ = await bridge.post("/v1/handoffs", handoff_body(receiver.url_for("/cb")))
        assert status == 201
        dead = await _dead(bridge)
    assert {i["last_error"] for i in dead} == {"HTTP 307"}
    assert "/elsewhere" not in receiver.paths()


async def test_open_and_closed_ports_read_the_same(bridge: RunningBridge) -> None:
    # One port speaks something that is not HTTP (a database would), the other is closed.
    async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"\x00\x01 not http at all " + MARKER.encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_http, "127.0.0.1", 0)
    open_port = server.sockets[0].getsockname()[1]
    closed_port = unused_port()
    try:
        for index, port in enumerate((open_port, closed_port)):
            status, _ = await bridge.post(
                "/v1/handoffs",
                handoff_body(
                    f"http://127.0.0.1:{port}/cb",
                    conversation_id=f"c{index}",
                    customer_id=f"c{index}",
                ),
            )
            assert status == 201
        dead = await bridge.get_until(
            "/v1/outbox?status=dead",
            lambda b: len({i["conversation_id"] for i in b["items"]}) == 2,
        )
    finally:
        server.close()
        await server.wait_closed()
    # Both conversations' events: one wording, nothing of what the open port said.
    assert len({i["conversation_id"] for i in dead["items"]}) == 2
    assert {i["last_error"] for i in dead["items"]} == {"connection failed"}


async def test_the_guarded_client_never_connects_to_a_refused_address() -> None:
    # A URL holding an address never reaches the resolver: the client checks it itself.
    async with Receiver(204) as receiver, aiohttp.ClientSession() as session:
        client = HttpClient(session, timeout=5, quick_retries=0, policy=OutboundPolicy())
        with pytest.raises(PlatformRejected, match=REFUSED_AT_DELIVERY):
            await client.request("POST", receiver.url_for("/cb"), data=b"{}")
        trusting = HttpClient(session, timeout=5, quick_retries=0)
        await trusting.request("POST", receiver.url_for("/cb"), data=b"{}")
    assert receiver.paths() == ["/cb"]


async def test_the_guarded_client_decides_the_same_for_a_url_on_every_call() -> None:
    """A URL let through is called again without a new check; a refused one stays refused."""
    async with Receiver(204) as receiver, aiohttp.ClientSession() as session:
        allowing = HttpClient(
            session, timeout=5, quick_retries=0, policy=OutboundPolicy(allow_loopback=True)
        )
        refusing = HttpClient(session, timeout=5, quick_retries=0, policy=OutboundPolicy())
        for _ in range(3):
            await allowing.request("POST", receiver.url_for("/cb"), data=b"{}")
            with pytest.raises(PlatformRejected, match=REFUSED_AT_DELIVERY):
                await refusing.request("POST", receiver.url_for("/cb"), data=b"{}")
    assert receiver.paths() == ["/cb"] * 3
