"""Concurrent takes and handoffs, and the queue, through the real app on SQLite and PostgreSQL.

Many agents taking different chats at once, on one replica or two sharing one
PostgreSQL schema, all succeed: no deadlock, no 503, each chat assigned once and no
agent past capacity. Hundreds of concurrent handoffs are all created. Queue positions
are counted when read, and the bot hears of a new position at most once per interval.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from bridge.db.engine import create_engine, create_sessionmaker
from bridge.db.repo import Store
from bridge.settings import Settings
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, ReceivedEvent, handoff_body
from tests.kit.eventually import eventually

CHANNEL = "mysite-es"


def _settings(
    database: Database, agents: int, capacity: int, **extra: Any
) -> tuple[Settings, list[str]]:
    """Team support (the agents agent-0, agent-1, …) gets every chat of mysite-es."""
    ids = [f"agent-{i}" for i in range(agents)]
    settings = make_settings(
        database,
        unused_port(),
        agents=[{"id": a, "name": a, "teams": ["support"], "capacity": capacity} for a in ids],
        teams=[{"id": "support"}],
        channels={CHANNEL: {"team_id": "support"}},
        **extra,
    )
    return settings, ids


@asynccontextmanager
async def _bridges(settings: Settings, replicas: int) -> AsyncIterator[list[RunningBridge]]:
    """`replicas` apps on the same database, each on its own port, started one by one."""
    running: list[RunningBridge] = []
    try:
        for _ in range(replicas):
            port = unused_port()
            own = settings.model_copy(
                update={"server": settings.server.model_copy(update={"port": port})}
            )
            running.append(await start_bridge(own))
        yield running
    finally:
        for bridge in running:
            await stop_bridge(bridge)


async def _at_once(
    calls: Sequence[Callable[[aiohttp.ClientSession], Awaitable[tuple[int, Any]]]],
) -> list[tuple[int, Any]]:
    """Run every call concurrently, each on a connection of its own (so none waits for one)."""
    connector = aiohttp.TCPConnector(limit=len(calls))
    async with aiohttp.ClientSession(connector=connector) as session:
        return list(await asyncio.gather(*(call(session) for call in calls)))


def _post(
    bridge: RunningBridge, path: str, body: Any
) -> Callable[[aiohttp.ClientSession], Awaitable[tuple[int, Any]]]:
    async def call(session: aiohttp.ClientSession) -> tuple[int, Any]:
        async with session.post(bridge.url(path), json=body) as response:
            return response.status, await response.json()

    return call


def _get(
    bridge: RunningBridge, path: str
) -> Callable[[aiohttp.ClientSession], Awaitable[tuple[int, Any]]]:
    async def call(session: aiohttp.ClientSession) -> tuple[int, Any]:
        async with session.get(bridge.url(path)) as response:
            return response.status, await response.json()

    return call


async def _hand_off(bridge: RunningBridge, bot: FakeBot, count: int) -> list[str]:
    """`count` handoffs of different customers, all at once; their ids in request order."""
    answers = await _at_once(
        [
            _post(
                bridge,
                "/v1/handoffs",
                handoff_body(bot.url, region="es", conversation_id=f"c{i}", customer_id=f"c{i}"),
            )
            for i in range(count)
        ]
    )
    assert Counter(status for status, _ in answers) == {201: count}, answers
    return [body["id"] for _, body in answers]


async def _assignees(bridge: RunningBridge, ids: Sequence[str]) -> dict[str, str | None]:
    assignees: dict[str, str | None] = {}
    for cid in ids:
        status, conversation = await bridge.get(f"/v1/conversations/{cid}")
        assert status == 200, conversation
        assignees[cid] = conversation["routing"]["assignee_id"]
    return assignees


async def _active_chats(bridge: RunningBridge, agent_ids: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for agent_id in agent_ids:
        status, agent = await bridge.get(f"/v1/agents/{agent_id}")
        assert status == 200, agent
        counts[agent_id] = agent["active_chats"]
    return counts


async def _fifty_agents_take_fifty_chats(database: Database, bot: FakeBot, replicas: int) -> None:
    settings, agents = _settings(database, 50, 1)
    async with _bridges(settings, replicas) as bridges:
        chats = await _hand_off(bridges[0], bot, 50)
        # Agent i takes chat i, through replica i % replicas.
        answers = await _at_once(
            [
                _post(bridges[i % replicas], f"/v1/conversations/{cid}/assign", {"agent_id": a})
                for i, (cid, a) in enumerate(zip(chats, agents, strict=True))
            ]
        )
        assert [status for status, _ in answers] == [200] * 50, [
            body for status, body in answers if status != 200
        ]
        expected = dict(zip(chats, agents, strict=True))
        for bridge in bridges:
            assert await _assignees(bridge, chats) == expected
        assert await _active_chats(bridges[-1], agents) == dict.fromkeys(agents, 1)
        # Each bot heard of its agent once.
        await bot.wait_for(lambda b: len(b.of_type("agent.joined")) == 50)
        joined = Counter(e.data["conversation_id"] for e in bot.of_type("agent.joined"))
        assert joined == dict.fromkeys(chats, 1)


async def test_fifty_agents_take_fifty_different_chats_at_once(
    database: Database, bot: FakeBot
) -> None:
    await _fifty_agents_take_fifty_chats(database, bot, replicas=1)


async def test_fifty_agents_take_fifty_chats_across_two_replicas(
    database: Database, bot: FakeBot
) -> None:
    if database.backend == "sqlite":
        pytest.skip("SQLite serves one process; replicas share PostgreSQL (README, Scaling out)")
    await _fifty_agents_take_fifty_chats(database, bot, replicas=2)


async def test_two_hundred_concurrent_handoffs_are_all_created(
    database: Database, bot: FakeBot
) -> None:
    settings, _ = _settings(database, 1, 1)
    async with _bridges(settings, 1) as (bridge,):
        chats = await _hand_off(bridge, bot, 200)
        assert len(set(chats)) == 200
        engine = create_engine(settings.database)
        try:
            async with Store(create_sessionmaker(engine)).transaction() as tx:
                waiting = await tx.pending_conversations(CHANNEL)
        finally:
            await engine.dispose()
        assert sorted(row.id for row in waiting) == sorted(chats)

        # Every position from 1 to 200 once: the queue is consistent after the burst.
        # Past `queue.count_limit` (100) chats ahead, the position is the one announced.
        async def positions() -> list[int | None]:
            answers = await _at_once([_get(bridge, f"/v1/conversations/{c}") for c in chats])
            return [conversation["routing"]["queue_position"] for _, conversation in answers]

        await eventually(
            positions,
            lambda found: sorted(p or 0 for p in found) == list(range(1, 201)),
            what="positions 1 to 200",
        )


async def test_agents_racing_for_chats_never_pass_their_capacity(
    database: Database, bot: FakeBot
) -> None:
    settings, agents = _settings(database, 20, 2)
    async with _bridges(settings, 1) as (bridge,):
        chats = await _hand_off(bridge, bot, 60)
        taken: dict[str, list[str]] = defaultdict(list)
        answers: Counter[int] = Counter()

        async def keep_taking(session: aiohttp.ClientSession, agent_id: str, seed: int) -> None:
            # Three of these per agent run at once: the same agent races itself too.
            for cid in random.Random(seed).sample(chats, len(chats)):
                path = f"/v1/conversations/{cid}/assign"
                async with session.post(bridge.url(path), json={"agent_id": agent_id}) as r:
                    body = await r.json()
                    answers[r.status] += 1
                if r.status == 200:
                    taken[agent_id].append(cid)
                elif "at capacity" in body["error"]["message"]:
                    return

        connector = aiohttp.TCPConnector(limit=len(agents) * 3)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(
                *(keep_taking(session, a, seed) for a in agents for seed in range(3))
            )

        assert set(answers) <= {200, 409}, answers
        # Every agent kept taking until refused at capacity, and there were chats enough.
        assert {a: len(taken[a]) for a in agents} == dict.fromkeys(agents, 2)
        winners = [cid for cids in taken.values() for cid in cids]
        assert len(winners) == len(set(winners)) == 40
        assignees = await _assignees(bridge, chats)
        assert {cid: a for a, cids in taken.items() for cid in cids} == {
            cid: a for cid, a in assignees.items() if a is not None
        }
        assert await _active_chats(bridge, agents) == dict.fromkeys(agents, 2)


# ---- the queue --------------------------------------------------------------------------


def _queue_events(bot: FakeBot) -> dict[str, list[ReceivedEvent]]:
    by_conversation: dict[str, list[ReceivedEvent]] = defaultdict(list)
    for event in bot.of_type("queue.updated"):
        by_conversation[event.data["conversation_id"]].append(event)
    return by_conversation


async def _positions(bridge: RunningBridge, ids: Sequence[str]) -> list[int | None]:
    found = []
    for cid in ids:
        status, conversation = await bridge.get(f"/v1/conversations/{cid}")
        assert status == 200, conversation
        found.append(conversation["routing"]["queue_position"])
    return found


async def test_positions_are_counted_when_read_and_announced_once_per_interval(
    database: Database, bot: FakeBot
) -> None:
    bot.ignored = set()
    every = 1.0
    settings, (agent,) = _settings(database, 1, 5, queue={"update_seconds": every})
    async with _bridges(settings, 1) as (bridge,):
        ids = []
        for i in range(4):
            status, created = await bridge.post(
                "/v1/handoffs",
                handoff_body(bot.url, region="es", conversation_id=f"q{i}", customer_id=f"q{i}"),
            )
            assert (status, created["routing"]["queue_position"]) == (201, i + 1), created
            ids.append(created["id"])
        assert await _positions(bridge, ids) == [1, 2, 3, 4]

        def last_heard(b: FakeBot) -> dict[str, int]:
            return {cid: events[-1].data["position"] for cid, events in _queue_events(b).items()}

        await bot.wait_for(lambda b: last_heard(b) == dict(zip(ids, [1, 2, 3, 4], strict=True)))

        status, _ = await bridge.post(f"/v1/conversations/{ids[0]}/assign", {"agent_id": agent})
        assert status == 200
        # The others moved up at once in what the API reads...
        assert await _positions(bridge, ids[1:]) == [1, 2, 3]
        # ...and the bots hear it at the channel's next turn.
        await bot.wait_for(
            lambda b: (
                {c: last_heard(b).get(c) for c in ids[1:]}
                == dict(zip(ids[1:], [1, 2, 3], strict=True))
            )
        )

        # Never two announcements to one conversation within the interval.
        for events in _queue_events(bot).values():
            times = [datetime.fromisoformat(e.body["timestamp"]) for e in events]
            gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
            assert all(gap >= timedelta(seconds=every) for gap in gaps), times
        # Each event told its bot something new.
        for events in _queue_events(bot).values():
            spots = [(e.data["position"], e.data["estimated_wait_seconds"]) for e in events]
            assert all(a != b for a, b in itertools.pairwise(spots)), spots


async def test_a_position_past_the_count_limit_is_the_last_announced(
    database: Database, bot: FakeBot
) -> None:
    bot.ignored = set()
    # A long interval: after the first announcement, nothing more is announced here.
    settings, _ = _settings(database, 1, 1, queue={"count_limit": 2, "update_seconds": 3600})
    async with _bridges(settings, 1) as (bridge,):
        ids = []
        for i in range(4):
            status, created = await bridge.post(
                "/v1/handoffs",
                handoff_body(bot.url, region="es", conversation_id=f"l{i}", customer_id=f"l{i}"),
            )
            assert status == 201, created
            ids.append(created["id"])
            if i == 0:
                # The channel's turn is taken by the first handoff's announcement.
                await bot.wait_for(lambda b: ids[0] in _queue_events(b))
        # Three ahead is past the limit of two: not counted, and not announced yet.
        assert await _positions(bridge, ids) == [1, 2, 3, None]
        assert set(_queue_events(bot)) == {ids[0]}

    # The changes wait in the store: a restarted bridge whose turn has come announces them,
    # and the position past the limit is then the one announced.
    settings, _ = _settings(database, 1, 1, queue={"count_limit": 2})
    async with _bridges(settings, 1) as (bridge,):
        await bot.wait_for(lambda b: ids[3] in _queue_events(b))
        assert _queue_events(bot)[ids[3]][-1].data["position"] == 4
        assert await _positions(bridge, ids) == [1, 2, 3, 4]
