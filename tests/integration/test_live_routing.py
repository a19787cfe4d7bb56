"""Availability before handing off, and routing across platforms by live availability.

Two fake Reference Desk platforms stand in for platforms that report availability; the
built-in console is the last fallback. Everything runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from bridge.errors import ConfigError
from bridge.services.routing_state import compile_table
from tests.adapters.fake_reference import API_KEY, WEBHOOK_TOKEN, FakeReference
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body


@pytest.fixture
async def desk_a() -> AsyncIterator[FakeReference]:
    async with FakeReference() as fake:
        yield fake


@pytest.fixture
async def desk_b() -> AsyncIterator[FakeReference]:
    async with FakeReference() as fake:
        yield fake


def _options(fake: FakeReference) -> dict[str, Any]:
    return {
        "api_key": "REFERENCE_API_KEY",
        "webhook_token": "REFERENCE_WEBHOOK_TOKEN",
        "base_url": fake.url,
    }


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFERENCE_API_KEY", API_KEY)
    monkeypatch.setenv("REFERENCE_WEBHOOK_TOKEN", WEBHOOK_TOKEN)


def _config(desk_a: FakeReference, desk_b: FakeReference, **shop: Any) -> dict[str, Any]:
    """`shop` on desk A falls back to desk B, then to the console's mysite-en."""
    return {
        "channels": {
            "shop": {
                "platform": "reference",
                "options": _options(desk_a),
                "fallback_channels": ["shop-b", "mysite-en"],
                **shop,
            },
            "shop-b": {"platform": "reference", "options": _options(desk_b)},
        },
        # Every question reaches the platform: the tests change its answer as they go.
        "availability": {"cache_seconds": 0},
    }


async def _start(database: Database, **config: Any) -> RunningBridge:
    return await start_bridge(make_settings(database, unused_port(), **config))


async def test_nobody_on_the_first_platform_lands_the_handoff_on_the_next(
    database: Database, bot: FakeBot, desk_a: FakeReference, desk_b: FakeReference
) -> None:
    desk_a.online = False
    bridge = await _start(database, **_config(desk_a, desk_b))
    try:
        # Asked first, nothing stored: where it would land, and who is there.
        status, answer = await bridge.post("/v1/availability", {"channel": "shop"})
        assert status == 200, answer
        assert (answer["channel"], answer["platform"], answer["moved_from"]) == (
            "shop-b",
            "reference",
            "shop",
        )
        assert (answer["available"], answer["source"], answer["platform_error"]) == (
            True,
            "platform",
            False,
        )
        assert (answer["open_now"], answer["next_opening"], answer["reason"]) == (True, None, None)
        assert answer["queue"] == {"waiting": 0, "estimated_wait_seconds": None}
        assert any("nobody available on 'shop'" in line for line in answer["route"]["trace"])
        status, outbox = await bridge.get("/v1/outbox")
        assert (status, outbox["items"]) == (200, [])

        # Explain shows the chain (a dry run asks no platform).
        status, explained = await bridge.post(
            "/v1/routing/explain", handoff_body(bot.url, channel="shop", region=None)
        )
        assert status == 200, explained
        assert (explained["channel"], explained["fallback_channels"]) == (
            "shop",
            ["shop-b", "mysite-en"],
        )
        assert "fallback channels 'shop-b', 'mysite-en'" in explained["trace"][-1]

        # The handoff itself lands on desk B, with its history, and the bot hears why.
        status, conversation = await bridge.post(
            "/v1/handoffs", handoff_body(bot.url, channel="shop", region=None)
        )
        assert status == 201, conversation
        assert (conversation["channel"], conversation["platform"]) == ("shop-b", "reference")
        assert any("fallback channel 'shop-b'" in line for line in conversation["route"]["trace"])
        await bot.wait_for(lambda b: len(b.of_type("conversation.transferred")) == 1)
        moved = bot.of_type("conversation.transferred")[0].data
        assert (moved["from"]["channel"], moved["to"]["channel"], moved["reason"]) == (
            "shop",
            "shop-b",
            "no_agents_online",
        )
        await desk_b.wait_for(lambda d: len(d.conversations) == 1)
        assert desk_b.texts() == ["Where is my order?", "Let me get a person."]
        assert desk_a.conversations == {}

        # Desk A is back: the next question lands there, and now one chat queues on B.
        desk_a.online = True
        status, answer = await bridge.post("/v1/availability", {"channel": "shop"})
        assert (answer["channel"], answer["moved_from"], answer["available"]) == (
            "shop",
            None,
            True,
        )
        status, answer = await bridge.post("/v1/availability", {"channel": "nowhere"})
        assert status == 422
        assert answer["error"]["fields"][0]["field"] == "channel"
    finally:
        await stop_bridge(bridge)


async def test_a_platform_error_is_answered_from_the_bridges_presence(
    database: Database, desk_a: FakeReference
) -> None:
    desk_a.script.extend([503] * 5)
    config = {
        "channels": {"err": {"platform": "reference", "options": _options(desk_a)}},
        "agents": [
            {"id": "ann", "name": "Ann", "teams": ["support"], "capacity": 1},
            {"id": "bob", "name": "Bob", "teams": ["support"], "capacity": 1},
        ],
        "teams": [{"id": "support"}],
        "availability": {"cache_seconds": 60},
    }
    config["channels"]["err"]["team_id"] = "support"
    bridge = await _start(database, **config)
    try:
        url = bridge.url("/v1/agents/ann/presence")
        async with bridge.http.put(url, json={"presence": "online"}) as response:
            assert response.status == 200
        status, answer = await bridge.post("/v1/availability", {"channel": "err"})
        assert status == 200, answer
        assert (answer["available"], answer["source"], answer["platform_error"]) == (
            True,
            "bridge",
            True,
        )
        assert answer["agents"] == {
            "counted": "offered",
            "total": 2,
            "online": 1,
            "with_capacity": 1,
        }
        # The answer is kept for cache_seconds: the platform was asked once.
        await bridge.post("/v1/availability", {"channel": "err"})
        asked = [c for c in desk_a.calls if c.path == "/agents/availability"]
        assert len(asked) == 1

        # Ann full, Bob away: nobody can take it, and the reason says why.
        body = handoff_body("http://127.0.0.1:9/cb", channel="err", region=None)
        status, taken = await bridge.post("/v1/handoffs", body)
        assert status == 201, taken
        status, _ = await bridge.post(
            f"/v1/conversations/{taken['id']}/assign", {"agent_id": "ann"}
        )
        assert status == 200
        status, answer = await bridge.post("/v1/availability", {"channel": "err"})
        assert (answer["available"], answer["reason"]) == (False, "capacity")
        assert answer["agents"]["with_capacity"] == 0
    finally:
        await stop_bridge(bridge)


async def test_a_chat_nobody_takes_moves_on_with_its_history(
    database: Database, bot: FakeBot, desk_a: FakeReference, desk_b: FakeReference
) -> None:
    bridge = await _start(database, **_config(desk_a, desk_b, fallback_after_seconds=0.3))
    try:
        status, conversation = await bridge.post(
            "/v1/handoffs", handoff_body(bot.url, channel="shop", region=None)
        )
        assert (status, conversation["channel"]) == (201, "shop"), conversation
        cid = conversation["id"]
        status, _ = await bridge.post(
            f"/v1/conversations/{cid}/messages", {"text": "Still there?", "id": "m-1"}
        )
        assert status == 201

        # Nobody takes it on desk A, then nobody on desk B: it ends up on the console.
        state = await bridge.get_until(
            f"/v1/conversations/{cid}", lambda c: c["channel"] == "mysite-en"
        )
        assert (state["status"], state["platform"]) == ("pending", "console")
        await bot.wait_for(lambda b: len(b.of_type("conversation.transferred")) == 2)
        moves = [
            (e.data["from"]["channel"], e.data["to"]["channel"], e.data["reason"])
            for e in bot.of_type("conversation.transferred")
        ]
        assert moves == [
            ("shop", "shop-b", "wait_timeout"),
            ("shop-b", "mysite-en", "wait_timeout"),
        ]
        assert any(
            "nobody took the chat on 'shop' within 0.3 s" in t for t in state["route"]["trace"]
        )

        # Each platform got the whole transcript, and each was told the chat left.
        everything = ["Where is my order?", "Let me get a person.", "Still there?"]
        await desk_b.wait_for(lambda d: any(c.closed_for for c in d.conversations.values()))
        assert desk_a.texts() == everything and desk_b.texts() == everything
        assert [c.closed_for for c in desk_a.conversations.values()] == [
            "moved to channel 'shop-b'"
        ]
        assert [c.closed_for for c in desk_b.conversations.values()] == [
            "moved to channel 'mysite-en'"
        ]
        # The last channel has no fallback after it: no timer is left.
        _, outbox = await bridge.get(f"/v1/outbox?conversation_id={cid}&status=pending")
        assert [i["kind"] for i in outbox["items"] if i["kind"] == "routing.fallback"] == []
    finally:
        await stop_bridge(bridge)


async def test_a_chat_taken_in_time_stays(
    database: Database, bot: FakeBot, desk_a: FakeReference, desk_b: FakeReference
) -> None:
    config = _config(desk_a, desk_b, fallback_after_seconds=0.3)
    config["agents"] = [{"id": "ann", "name": "Ann"}]
    bridge = await _start(database, **config)
    try:
        _, conversation = await bridge.post(
            "/v1/handoffs", handoff_body(bot.url, channel="shop", region=None)
        )
        cid = conversation["id"]
        status, _ = await bridge.post(f"/v1/conversations/{cid}/assign", {"agent_id": "ann"})
        assert status == 200

        def timer_ran(page: Any) -> bool:
            return any(
                i["kind"] == "routing.fallback" and i["status"] == "delivered"
                for i in page["items"]
            )

        await bridge.get_until(f"/v1/outbox?conversation_id={cid}", timer_ran)
        _, state = await bridge.get(f"/v1/conversations/{cid}")
        assert (state["channel"], state["status"]) == ("shop", "active")
        assert bot.of_type("conversation.transferred") == []
    finally:
        await stop_bridge(bridge)


def test_unknown_fallback_channels_stop_the_start(database: Database) -> None:
    base = {"channels": {"mysite": {"fallback_channels": ["mysite-en", "nowhere"]}}}
    settings = make_settings(database, unused_port(), **base)
    with pytest.raises(
        ConfigError, match=r"channels\.mysite\.fallback_channels\[1\]: no channel 'nowhere'"
    ):
        compile_table(settings)
    region = {"channels": {"mysite-es": {"fallback_channels": ["mysite-en"]}}}
    with pytest.raises(ConfigError, match="only a main channel has fallbacks"):
        compile_table(make_settings(database, unused_port(), **region))
    lonely = {"channels": {"mysite": {"fallback_after_seconds": 30}}}
    with pytest.raises(ConfigError, match="fallback_after_seconds: needs fallback_channels"):
        compile_table(make_settings(database, unused_port(), **lonely))
