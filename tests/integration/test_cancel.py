"""The bot cancels a waiting handoff: handoff.cancelled, the offer gone, 409 once it is taken."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import unused_port

from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body


def _settings(database: Database) -> Any:
    return make_settings(
        database,
        unused_port(),
        agents=[{"id": "ann", "name": "Ann", "teams": ["support"], "capacity": 2}],
        teams=[{"id": "support"}],
        channels={"mysite-es": {"team_id": "support"}},
    )


async def _offers(bridge: RunningBridge, agent_id: str) -> list[str]:
    """The chats on the agent's desk, as the desk page reads them."""
    status, link = await bridge.get(f"/v1/agents/{agent_id}/desk_link")
    assert status == 200, link
    token = link["url"].rsplit("/", 1)[-1]
    status, state = await bridge.get(f"/console/desk-api/{token}/state")
    assert status == 200, state
    return [offer["id"] for offer in state["offers"]]


async def _outbox_kinds(bridge: RunningBridge, cid: str) -> list[str]:
    status, page = await bridge.get(f"/v1/outbox?conversation_id={cid}")
    assert status == 200
    return [item["kind"] for item in page["items"]]


async def test_a_waiting_handoff_is_cancelled_and_everyone_hears(
    database: Database, bot: FakeBot
) -> None:
    bridge = await start_bridge(_settings(database))
    try:
        status, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url))
        assert (status, conversation["status"]) == (201, "pending"), conversation
        cid = conversation["id"]
        assert await _offers(bridge, "ann") == [cid]

        status, cancelled = await bridge.post(
            f"/v1/conversations/{cid}/cancel", {"reason": "customer found the answer"}
        )
        assert status == 200, cancelled
        assert (cancelled["status"], cancelled["status_reason"]) == (
            "released",
            "customer found the answer",
        )
        assert cancelled["join_url"] is None
        await bot.wait_for(lambda b: len(b.of_type("handoff.cancelled")) == 1)
        data = bot.of_type("handoff.cancelled")[0].data
        assert (data["conversation_id"], data["by"], data["reason"]) == (
            cid,
            "bot",
            "customer found the answer",
        )
        # The agent side is told (the console's offer disappears from the desk).
        assert "agent.close" in await _outbox_kinds(bridge, cid)
        assert await _offers(bridge, "ann") == []

        # Cancelled once: a second cancel is refused and says why.
        status, again = await bridge.post(f"/v1/conversations/{cid}/cancel")
        assert status == 409, again
        assert again["error"]["code"] == "invalid_state"
        assert again["error"]["message"] == f"cannot cancel conversation '{cid}': it is released"
        assert len(bot.of_type("handoff.cancelled")) == 1

        # The customer may hand off again at once.
        status, second = await bridge.post("/v1/handoffs", handoff_body(bot.url))
        assert (status, second["status"]) == (201, "pending")
        assert second["id"] != cid
    finally:
        await stop_bridge(bridge)


async def test_a_taken_handoff_cannot_be_cancelled(database: Database, bot: FakeBot) -> None:
    bridge = await start_bridge(_settings(database))
    try:
        _, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url))
        cid = conversation["id"]
        status, taken = await bridge.post(f"/v1/conversations/{cid}/assign", {"agent_id": "ann"})
        assert (status, taken["status"]) == (200, "active")

        status, refused = await bridge.post(f"/v1/conversations/{cid}/cancel", {})
        assert status == 409, refused
        assert refused["error"]["message"] == f"cannot cancel conversation '{cid}': it is active"
        assert refused["error"]["fields"] == [
            {"field": "status", "problem": "is active; cancel is not allowed"}
        ]
        _, state = await bridge.get(f"/v1/conversations/{cid}")
        assert state["status"] == "active"
        assert bot.of_type("handoff.cancelled") == []

        status, missing = await bridge.post("/v1/conversations/nope/cancel")
        assert (status, missing["error"]["code"]) == (404, "conversation_not_found")
        status, bad = await bridge.post(f"/v1/conversations/{cid}/cancel", {"reason": 7})
        assert (status, bad["error"]["fields"][0]["field"]) == (422, "reason")
    finally:
        await stop_bridge(bridge)
