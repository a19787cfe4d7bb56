"""Business hours with fallbacks, and queue position and wait pushed to the bot."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import unused_port

from tests.conftest import Database, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body

NEVER_OPEN = {"timezone": "Europe/Berlin", "weekly": {}}
ALWAYS_OPEN = {
    "timezone": "Europe/Berlin",
    "weekly": {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
}


async def test_outside_hours_fails_with_reason_or_falls_back(
    database: Database, bot: FakeBot
) -> None:
    settings = make_settings(
        database,
        unused_port(),
        hours={"closed": NEVER_OPEN, "open": ALWAYS_OPEN},
        channels={
            "mysite-es": {"hours": "closed"},
            "mysite-de": {"hours": "closed", "outside_hours": {"channel": "mysite-en"}},
            "mysite-en": {"hours": "open"},
        },
    )
    bridge = await start_bridge(settings)
    try:
        status, failed = await bridge.post("/v1/handoffs", handoff_body(bot.url, region="es"))
        assert (status, failed["status"]) == (201, "failed"), failed
        assert "outside business hours" in failed["status_reason"]
        assert failed["join_url"] is None
        await bot.wait_for(lambda b: len(b.of_type("handoff.failed")) == 1)
        data = bot.of_type("handoff.failed")[0].data
        assert (data["reason"], data["next_opening"]) == ("outside_hours", None)
        assert "outside business hours" in data["detail"]

        # The customer is not blocked by the failed attempt; de falls back to en (open).
        status, moved = await bridge.post(
            "/v1/handoffs", handoff_body(bot.url, region="de", conversation_id="again")
        )
        assert (status, moved["status"], moved["channel"]) == (201, "pending", "mysite-en")
        assert any("outside hours of 'mysite-de'" in line for line in moved["route"]["trace"])
    finally:
        await stop_bridge(bridge)


async def test_queue_position_and_wait_reach_the_bot(database: Database, bot: FakeBot) -> None:
    bot.ignored = set()
    settings = make_settings(
        database,
        unused_port(),
        agents=[{"id": "ann", "name": "Ann", "teams": ["support"], "capacity": 5}],
        teams=[{"id": "support"}],
        channels={"mysite-es": {"team_id": "support"}},
    )
    bridge = await start_bridge(settings)
    try:
        ids: list[str] = []
        for i in range(3):
            status, conversation = await bridge.post(
                "/v1/handoffs",
                handoff_body(bot.url, region="es", conversation_id=f"q{i}", customer_id=f"q{i}"),
            )
            assert status == 201
            assert conversation["routing"]["queue_position"] == i + 1
            ids.append(conversation["id"])

        def positions(b: FakeBot) -> dict[str, Any]:
            latest: dict[str, Any] = {}
            for event in b.of_type("queue.updated"):
                latest[event.data["conversation_id"]] = event.data
            return latest

        await bot.wait_for(lambda b: len(positions(b)) == 3)
        assert [positions(bot)[cid]["position"] for cid in ids] == [1, 2, 3]
        # Nobody online in the team: the bot may tell the customer, or take the chat back.
        await bot.wait_for(lambda b: len(b.of_type("handoff.waiting")) == 3)
        waiting = bot.of_type("handoff.waiting")[0].data
        assert (waiting["reason"], waiting["options"]) == ("no_agents_online", ["wait", "release"])

        status, _ = await bridge.post(f"/v1/conversations/{ids[0]}/assign", {"agent_id": "ann"})
        assert status == 200
        # Each conversation's events travel in a lane of their own: either may come first.
        await bot.wait_for(
            lambda b: (positions(b)[ids[1]]["position"], positions(b)[ids[2]]["position"]) == (1, 2)
        )
        # One chat was served, so there is a typical wait to estimate from.
        assert positions(bot)[ids[1]]["estimated_wait_seconds"] is not None

        await bridge.post(f"/v1/conversations/{ids[1]}/release", {})
        await bot.wait_for(lambda b: positions(b)[ids[2]]["position"] == 1)
    finally:
        await stop_bridge(bridge)
