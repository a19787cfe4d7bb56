"""Replicas on one PostgreSQL database: they wake each other, and keep each lane in `seq` order.

Two apps share one database and schema, as two replicas behind a load balancer would.
SQLite serves one process, so these run on PostgreSQL only.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import unused_port

from bridge.db.notify import PostgresWake
from bridge.settings import Settings
from bridge.typedefs import WORKER
from tests.conftest import (
    PG_DSN,
    Database,
    RunningBridge,
    make_settings,
    start_bridge,
    stop_bridge,
)
from tests.fakes import FakeBot, handoff_body
from tests.kit.eventually import eventually

CONVERSATIONS = 10
MESSAGES_EACH = 20
# Far longer than any wait below: a delivery that arrives in time was woken, not polled.
NEVER_POLLS = {"relay": {"poll_interval_seconds": 600}}


def _postgres_only(database: Database) -> None:
    if database.backend != "postgres":
        pytest.skip("SQLite serves one process; replicas share PostgreSQL (README, Scaling out)")


@asynccontextmanager
async def _replicas(settings: Settings) -> AsyncIterator[tuple[RunningBridge, RunningBridge]]:
    """Two apps on the same database, each on a port of its own."""
    first = await start_bridge(settings)
    try:
        server = settings.server.model_copy(update={"port": unused_port()})
        second = await start_bridge(settings.model_copy(update={"server": server}))
        try:
            yield first, second
        finally:
            await stop_bridge(second)
    finally:
        await stop_bridge(first)


async def _joined(bridge: RunningBridge, bot: FakeBot, n: int) -> tuple[str, str]:
    """A conversation an agent joined through the console: (its id, the console token)."""
    body = handoff_body(bot.url, conversation_id=f"order-{n}", customer_id=f"cust-{n}")
    status, conversation = await bridge.post("/v1/handoffs", body)
    assert status == 201, conversation
    token = conversation["join_url"].rsplit("/", 1)[1]
    status, joined = await bridge.post(f"/console/api/{token}/join", {"name": "Ana"})
    assert status == 200, joined
    return conversation["id"], token


async def test_one_conversation_written_through_two_replicas_reaches_the_bot_in_seq_order(
    database: Database, bot: FakeBot
) -> None:
    _postgres_only(database)
    async with _replicas(make_settings(database, unused_port())) as (a, b):
        conversations = [await _joined(a, bot, n) for n in range(CONVERSATIONS)]
        # Every message of every conversation at once, alternately through each replica.
        sends = [
            (a, b)[i % 2].post(
                f"/console/api/{token}/messages", {"text": f"{cid} {i}", "client_id": f"m{i}"}
            )
            for cid, token in conversations
            for i in range(MESSAGES_EACH)
        ]
        answers = await asyncio.gather(*sends)
        assert [status for status, _ in answers] == [201] * len(sends), answers
        total = CONVERSATIONS * MESSAGES_EACH
        await bot.wait_for(lambda fake: len(fake.of_type("agent.message")) == total)

    received: defaultdict[str, list[int]] = defaultdict(list)
    for event in bot.of_type("agent.message"):
        received[event.data["conversation_id"]].append(event.data["message"]["seq"])
    stored: defaultdict[str, list[int]] = defaultdict(list)
    for _, body in answers:
        message: dict[str, Any] = body["message"]
        stored[message["text"].split()[0]].append(message["seq"])
    for cid, _ in conversations:
        # Each message once, and in the order of its seq (the transcript's order).
        assert received[cid] == sorted(stored[cid]), cid
    assert bot.duplicates == 0


async def test_a_message_taken_by_one_replica_is_delivered_by_the_other_without_a_poll(
    database: Database, bot: FakeBot
) -> None:
    _postgres_only(database)
    settings = make_settings(database, unused_port(), **NEVER_POLLS)
    async with _replicas(settings) as (a, _b):
        cid, token = await _joined(a, bot, 0)
        await bot.wait_for(lambda fake: fake.of_type("agent.joined"))
        # Replica A stores the next message but can no longer deliver: only B can, and
        # B's worker polls every 600 s, so only A's notification can wake it in time.
        await a.server.app[WORKER].stop(0)
        status, _ = await a.post(f"/console/api/{token}/messages", {"text": "via A"})
        assert status == 201
        await bot.wait_for(lambda fake: fake.of_type("agent.message"))
    assert [e.data["message"]["text"] for e in bot.of_type("agent.message")] == ["via A"]
    assert bot.of_type("agent.message")[0].data["conversation_id"] == cid


async def test_the_listener_reconnects_when_its_connection_is_cut(database: Database) -> None:
    _postgres_only(database)
    assert database.pg_schema is not None
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{database.pg_schema}"')
        settings = make_settings(database, unused_port()).database
        woken: list[str] = []
        bus = PostgresWake(settings, retry_initial_seconds=0.05)
        bus.on_outbox(lambda: woken.append("outbox"))
        bus.on_conversation(lambda cid: woken.append(f"conversation {cid}"))
        await bus.start()
        try:
            assert bus.listening.is_set()
            first_pid = bus.server_pid
            await admin.execute("SELECT pg_terminate_backend($1)", first_pid)
            await eventually(lambda: bus.listening.is_set() and bus.server_pid != first_pid)
            woken.clear()
            # Another replica commits deliveries (the store's own notification, same schema).
            await admin.execute(f'SET search_path TO "{database.pg_schema}"')
            await admin.execute("SELECT pg_notify('bridge_outbox_' || current_schema(), '')")
            await admin.execute(
                "SELECT pg_notify('bridge_conversation_' || current_schema(), 'c-1')"
            )
            await eventually(lambda: woken, lambda seen: len(seen) == 2)
            assert woken == ["outbox", "conversation c-1"]
        finally:
            await bus.stop()
    finally:
        await admin.close()


async def test_bridges_in_other_schemas_are_not_woken(database: Database) -> None:
    _postgres_only(database)
    assert database.pg_schema is not None
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{database.pg_schema}"')
        woken: list[str | None] = []
        bus = PostgresWake(make_settings(database, unused_port()).database)
        bus.on_conversation(woken.append)
        await bus.start()
        try:
            await eventually(lambda: woken)  # the look after connecting: None, "anything"
            woken.clear()
            await admin.execute("SELECT pg_notify('bridge_conversation_public', 'other')")
            # Sent after the other schema's, on the same connection, so it arrives after
            # it: once it is here, the other one would have been too.
            await admin.execute(
                "SELECT pg_notify($1, 'mine')", f"bridge_conversation_{database.pg_schema}"
            )
            await eventually(lambda: "mine" in woken)
            assert woken == ["mine"]
        finally:
            await bus.stop()
    finally:
        await admin.close()


async def test_a_replicas_commits_wake_the_others_but_not_itself(database: Database) -> None:
    """The message path tells the other replicas after its commit (one NOTIFY for many)."""
    _postgres_only(database)
    assert database.pg_schema is not None
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{database.pg_schema}"')
        settings = make_settings(database, unused_port()).database
        woken: list[str] = []
        sender, other = PostgresWake(settings), PostgresWake(settings)
        sender.on_outbox(lambda: woken.append("sender"))
        other.on_outbox(lambda: woken.append("other"))
        await sender.start()
        await other.start()
        try:
            # Each looks once on connecting.
            await eventually(lambda: woken, lambda seen: sorted(seen) == ["other", "sender"])
            woken.clear()
            for _ in range(5):
                sender.outbox_changed()
            await eventually(lambda: woken)
            # A conversation notice sent after it on the same connection arrives after it:
            # once that is here, any second outbox wake-up would have been too.
            seen: list[str | None] = []
            other.on_conversation(seen.append)
            sender.conversation_changed("c-after")
            await eventually(lambda: "c-after" in seen)
            assert woken == ["other"]
        finally:
            await sender.stop()
            await other.stop()
    finally:
        await admin.close()
