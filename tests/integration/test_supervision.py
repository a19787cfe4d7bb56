"""Supervisor views through the real app, on SQLite and on PostgreSQL: the conversation list
with each filter, its cursor pages, the queue per channel, and wrong parameters.

Ana and Ben serve mysite-es (team support); chats on other channels are offered to nobody.
"""

from __future__ import annotations

from collections import deque
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import unused_port

from bridge.settings import Settings
from tests.conftest import Database, RunningBridge, make_settings
from tests.fakes import FakeBot, handoff_body

# An urgent chat goes to mysite-es ahead of the others.
URGENT = {
    "name": "urgent",
    "when": [{"field": "metadata.urgent", "equals": True}],
    "then": {"channel": "mysite-es", "priority": 5},
}


@pytest.fixture
def bridge_settings(database: Database) -> Settings:
    """Two agents of team support, which gets every chat of channel mysite-es."""
    return make_settings(
        database,
        unused_port(),
        agents=[
            {"id": "ana", "name": "Ana", "teams": ["support"]},
            {"id": "ben", "name": "Ben", "teams": ["support"]},
        ],
        teams=[{"id": "support"}],
        channels={
            "mysite": {"rules": [URGENT]},
            "mysite-es": {"team_id": "support"},
        },
    )


async def hand_off(
    bridge: RunningBridge, callback: str, n: int, region: str | None, **extra: Any
) -> dict[str, Any]:
    """Hand off chat number `n` (its own bot conversation and customer)."""
    body = handoff_body(
        callback, conversation_id=f"bot-{n}", customer_id=f"cust-{n}", region=region, **extra
    )
    status, conversation = await bridge.post("/v1/handoffs", body)
    assert status == 201, conversation
    return dict(conversation)


async def listed(bridge: RunningBridge, path: str = "/v1/conversations", **query: Any) -> Any:
    """A list answer that must be 200 (`query` values may be lists: repeated parameters)."""
    status, answer = await bridge.get(f"{path}?{urlencode(query, doseq=True)}")
    assert status == 200, answer
    return answer


def ids(answer: Any) -> list[str]:
    return [item["id"] for item in answer["items"]]


async def test_the_list_filters_by_each_field(bridge: RunningBridge, bot: FakeBot) -> None:
    """Five chats: two waiting on mysite-es, one taken by Ana, one closed, one on mysite."""
    es = [await hand_off(bridge, bot.url, n, "es") for n in range(4)]
    main = await hand_off(bridge, bot.url, 4, None)
    status, taken = await bridge.post(
        f"/v1/conversations/{es[2]['id']}/assign", {"agent_id": "ana"}
    )
    assert status == 200, taken
    status, closed = await bridge.post(f"/v1/conversations/{es[3]['id']}/close", {})
    assert status == 200, closed
    every = [c["id"] for c in [*es, main]]

    everything = await listed(bridge)
    assert ids(everything) == every  # oldest first
    assert everything["next_cursor"] is None
    first = everything["items"][0]
    assert first["status"] == "pending" and first["channel"] == "mysite-es"
    assert first["customer"] == {"id": "cust-0", "name": "John Doe"}
    assert "email" not in str(everything), "a supervisor's list carries no contact details"
    assert first["team_id"] == "support" and first["offered_to"] == ["ana", "ben"]
    assert first["queue_position"] == 1 and everything["items"][1]["queue_position"] == 2
    assert main_item(everything, main["id"])["queue_position"] == 1  # its own channel's queue
    taken_item = everything["items"][2]
    assert taken_item["agent"] == {"id": "ana", "name": "Ana"}
    assert taken_item["assigned_at"] is not None and taken_item["queue_position"] is None
    assert everything["items"][3]["closed_at"] is not None

    assert ids(await listed(bridge, status="pending")) == [es[0]["id"], es[1]["id"], main["id"]]
    both = await listed(bridge, status=["active", "closed"])
    assert ids(both) == [es[2]["id"], es[3]["id"]]
    assert ids(await listed(bridge, channel="mysite")) == [main["id"]]
    assert ids(await listed(bridge, team="support")) == [c["id"] for c in es]
    assert ids(await listed(bridge, agent="ana")) == [es[2]["id"]]
    assert ids(await listed(bridge, agent="ben")) == []
    assert ids(await listed(bridge, waiting_longer_than=0)) == ids(
        await listed(bridge, status="pending")
    )
    assert ids(await listed(bridge, waiting_longer_than=3600)) == []

    middle = everything["items"][2]["created_at"]
    assert ids(await listed(bridge, created_from=middle)) == every[2:]
    assert ids(await listed(bridge, created_to=middle)) == every[:2]
    # A time without an offset is UTC.
    naive = middle.replace("+00:00", "")
    assert ids(await listed(bridge, created_from=naive)) == every[2:]
    narrow = await listed(bridge, created_from=middle, created_to=middle)
    assert ids(narrow) == []


def main_item(answer: Any, conversation_id: str) -> Any:
    (item,) = [i for i in answer["items"] if i["id"] == conversation_id]
    return item


async def test_cursor_pages_neither_repeat_nor_skip_while_chats_arrive(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    made = [(await hand_off(bridge, bot.url, n, "es"))["id"] for n in range(5)]

    first = await listed(bridge, limit=2)
    assert ids(first) == made[:2] and first["next_cursor"]
    # Chats handed off meanwhile come at the end of the oldest-first order, once.
    made += [(await hand_off(bridge, bot.url, n, "en"))["id"] for n in range(5, 7)]
    seen = ids(first)
    cursor = first["next_cursor"]
    while cursor:
        page = await listed(bridge, limit=2, cursor=cursor)
        assert len(page["items"]) <= 2
        seen += ids(page)
        cursor = page["next_cursor"]
    assert seen == made

    newest = await listed(bridge, order="-created_at", limit=3)
    assert ids(newest) == made[::-1][:3]
    rest = await listed(bridge, order="-created_at", limit=10, cursor=newest["next_cursor"])
    assert ids(rest) == made[::-1][3:] and rest["next_cursor"] is None
    # A page exactly as long as what is left ends the list.
    assert (await listed(bridge, limit=len(made)))["next_cursor"] is None


async def test_stuck_deliveries_are_counted_per_conversation(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    async with FakeBot(script=deque([410] * 20)) as refusing:
        dead = await hand_off(bridge, refusing.url, 1, "es")
        fine = await hand_off(bridge, bot.url, 2, "es")

        def counted(answer: Any) -> bool:
            return bool(main_item(answer, dead["id"])["deliveries"]["dead"] >= 1)

        await bridge.get_until("/v1/conversations", counted)
        quiet = await bridge.get_until(
            "/v1/conversations",
            lambda a: main_item(a, fine["id"])["deliveries"] == {"pending": 0, "dead": 0},
        )
        assert main_item(quiet, dead["id"])["deliveries"]["dead"] >= 1

        # A delivery in flight (the bot holds its answer) is pending.
        bot.hold()
        try:
            await bridge.post(f"/v1/conversations/{fine['id']}/assign", {"agent_id": "ben"})
            await bridge.get_until(
                "/v1/conversations",
                lambda a: main_item(a, fine["id"])["deliveries"]["pending"] >= 1,
            )
        finally:
            bot.release()


async def test_the_queue_per_channel(bridge: RunningBridge, bot: FakeBot) -> None:
    es = [await hand_off(bridge, bot.url, n, "es") for n in range(3)]
    main = await hand_off(bridge, bot.url, 3, None)
    vip = await hand_off(bridge, bot.url, 4, "es", metadata={"urgent": True})
    await bridge.post(f"/v1/conversations/{es[0]['id']}/assign", {"agent_id": "ana"})

    queue = await listed(bridge, "/v1/queue")
    channels = {c["channel"]: c for c in queue["channels"]}
    # Every configured channel is shown, an empty one too.
    assert {"mysite", "mysite-en", "mysite-es", "mysite-de"} <= set(channels)
    assert channels["mysite-de"]["length"] == 0 and channels["mysite-de"]["waiting"] == []
    assert channels["mysite-de"]["oldest_wait_seconds"] is None
    spanish = channels["mysite-es"]
    assert spanish["length"] == 3 and spanish["platform"] == "console"
    # Higher priority first, then oldest first; the taken chat left the queue.
    assert [w["id"] for w in spanish["waiting"]] == [vip["id"], es[1]["id"], es[2]["id"]]
    assert [w["position"] for w in spanish["waiting"]] == [1, 2, 3]
    head = spanish["waiting"][1]
    assert head["customer"] == {"id": "cust-1", "name": "John Doe"}
    assert head["offered_to"] == ["ana", "ben"] and head["wait_seconds"] >= 0
    assert spanish["oldest_wait_seconds"] >= head["wait_seconds"]
    assert [w["id"] for w in channels["mysite"]["waiting"]] == [main["id"]]
    # The positions agree with the conversation's own answer.
    status, one = await bridge.get(f"/v1/conversations/{es[2]['id']}")
    assert status == 200 and one["routing"]["queue_position"] == 3

    only = await listed(bridge, "/v1/queue", channel="mysite-es", limit=1)
    assert [c["channel"] for c in only["channels"]] == ["mysite-es"]
    assert only["channels"][0]["length"] == 3
    assert [w["id"] for w in only["channels"][0]["waiting"]] == [vip["id"]]


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/v1/conversations", "status=waiting", "status[0]"),
        ("/v1/conversations", "limit=0", "limit"),
        ("/v1/conversations", "limit=201", "limit"),
        ("/v1/conversations", "limit=ten", "limit"),
        ("/v1/conversations", "waiting_longer_than=-1", "waiting_longer_than"),
        ("/v1/conversations", "created_from=yesterday", "created_from"),
        ("/v1/conversations", "created_to=1700000000", "created_to"),
        ("/v1/conversations", "created_from=0001-01-01T00:00:00%2B01:00", "created_from"),
        ("/v1/conversations", "created_to=9999-12-31T23:59:59-01:00", "created_to"),
        (
            "/v1/conversations",
            "created_from=2026-01-02T00:00:00Z&created_to=2026-01-01T00:00:00Z",
            "created_to",
        ),
        ("/v1/conversations", "order=sideways", "order"),
        ("/v1/conversations", "cursor=not-a-cursor", "cursor"),
        ("/v1/conversations", "channel=", "channel"),
        ("/v1/conversations", f"agent={'a' * 129}", "agent"),
        ("/v1/conversations", "channel=a&channel=b", "channel"),
        ("/v1/conversations", "chanel=mysite", "chanel"),
        ("/v1/conversations", "team=%00", "team"),
        ("/v1/queue", "limit=0", "limit"),
        ("/v1/queue", "limit=501", "limit"),
        ("/v1/queue", "status=pending", "status"),
        ("/v1/supervisor_link", "organization_id=", "organization_id"),
    ],
)
async def test_a_wrong_parameter_is_a_422_naming_it(
    bridge: RunningBridge, path: str, query: str, field: str
) -> None:
    status, answer = await bridge.get(f"{path}?{query}")
    assert status == 422, answer
    assert answer["error"]["code"] == "invalid_input"
    assert field in [f["field"] for f in answer["error"]["fields"]], answer


async def test_a_cursor_is_bound_to_its_order(bridge: RunningBridge, bot: FakeBot) -> None:
    for n in range(3):
        await hand_off(bridge, bot.url, n, "es")
    page = await listed(bridge, limit=1)
    status, answer = await bridge.get(
        f"/v1/conversations?order=-created_at&cursor={page['next_cursor']}"
    )
    assert status == 422, answer
    assert answer["error"]["fields"][0]["field"] == "cursor"
    assert "order" in answer["error"]["fields"][0]["problem"]
