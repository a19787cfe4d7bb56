"""A receiver that hangs holds back only its own lanes: healthy conversations keep flowing.

Runs on a SQLite file and on the real PostgreSQL (the `database` fixture).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import unused_port

from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body
from tests.kit.fake_platform import Call

SLOW = 40
HEALTHY = 10
# Every attempt to the hanging bot waits for this long; the healthy deliveries must all
# be done well before the first of them could time out and free its slot.
REQUEST_TIMEOUT = 15.0
RELAY = {
    "request_timeout_seconds": REQUEST_TIMEOUT,
    "quick_retries": 0,
    "max_in_flight": 32,
    "max_in_flight_per_destination": 8,
}


def _under_test(call: Call) -> bool:
    # Queue updates pass: only the events the test is about are held.
    return isinstance(call.body, dict) and call.body.get("type") == "agent.joined"


@pytest.fixture
async def hanging_bot() -> AsyncIterator[FakeBot]:
    """A bot that never answers an agent.joined until released (on exit)."""
    async with FakeBot() as fake:
        fake.hold(_under_test)
        yield fake


@pytest.fixture
async def isolated_bridge(database: Database) -> AsyncIterator[RunningBridge]:
    """The bridge with a small pool of delivery slots, a share of them per destination."""
    running = await start_bridge(make_settings(database, unused_port(), relay=RELAY))
    try:
        yield running
    finally:
        await stop_bridge(running)


async def _join(bridge: RunningBridge, bot: FakeBot, name: str) -> None:
    status, conversation = await bridge.post(
        "/v1/handoffs", handoff_body(bot.url, conversation_id=name, customer_id=f"cust-{name}")
    )
    assert status == 201, conversation
    token = conversation["join_url"].rsplit("/", 1)[1]
    status, joined = await bridge.post(f"/console/api/{token}/join", {"name": "Ana"})
    assert status == 200, joined


def _arrivals(bot: FakeBot) -> Counter[str]:
    """Requests per webhook-id as they arrived, held ones included."""
    return Counter(call.headers.get("webhook-id", "") for call in bot.calls if _under_test(call))


async def test_hanging_bot_does_not_delay_healthy_conversations(
    isolated_bridge: RunningBridge, hanging_bot: FakeBot, bot: FakeBot
) -> None:
    """40 conversations whose bot hangs, then 10 healthy ones: the 10 are delivered at once."""
    bridge = isolated_bridge
    for i in range(SLOW):
        await _join(bridge, hanging_bot, f"slow-{i}")
    # The hanging bot holds as many deliveries as its destination may have in flight.
    await hanging_bot.wait_for(lambda b: len(b.held) >= RELAY["max_in_flight_per_destination"])

    for i in range(HEALTHY):
        await _join(bridge, bot, f"healthy-{i}")
    # Bounded below the request timeout: no held request can have timed out and given
    # its slot back, so the healthy deliveries did not wait for one.
    await bot.wait_for(
        lambda b: len(b.of_type("agent.joined")) == HEALTHY, within=REQUEST_TIMEOUT * 2 / 3
    )

    # Causal order: every healthy delivery arrived while every hanging one was still
    # held, none answered, none timed out and sent again.
    assert hanging_bot.holding
    assert hanging_bot.events == []
    arrivals = _arrivals(hanging_bot)
    assert arrivals and set(arrivals.values()) == {1}, arrivals
    assert len(hanging_bot.held) <= RELAY["max_in_flight_per_destination"]
    held_bodies = [json.dumps(call.body) for call in hanging_bot.held]
    assert all("slow-" in body for body in held_bodies)
    assert {e.data["bot_conversation_id"] for e in bot.of_type("agent.joined")} == {
        f"healthy-{i}" for i in range(HEALTHY)
    }
