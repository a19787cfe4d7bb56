"""PostgreSQL's unit runner keeps a connection for the next unit instead of going back to
the pool after each one; a kept connection that went away is replaced unseen, a unit's
error leaves nothing and the connection usable, and closing gives every one back.

Runs on the real PostgreSQL only (the `database` fixture's SQLite runs are skipped: SQLite
batches units on its one connection, see test_units.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.db import steps
from bridge.db.engine import create_engine
from bridge.db.migrate import upgrade
from bridge.db.runner import PostgresUnits
from bridge.db.units import Sql, Unit, run, single
from tests.conftest import Database, make_settings

_BACKEND = Sql.of(None, "scalar", postgresql="SELECT pg_backend_pid()")
_COUNT = Sql.of(None, "scalar", postgresql="SELECT count(*) FROM outbox WHERE lane = :lane")


class Boom(Exception):
    """A unit's own error, raised after it wrote."""


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    if database.backend != "postgres":
        pytest.skip("PostgreSQL's runner; SQLite batches units on its one connection")
    settings = make_settings(database, 0)
    engine = create_engine(settings.database)
    await upgrade(engine, settings.database)
    try:
        yield engine
    finally:
        await engine.dispose()


def _enqueue(lane: str, fail: bool = False) -> Unit[int]:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    yield steps.enqueue(
        {
            "lane": lane,
            "conversation_id": None,
            "kind": "bot.event",
            "target": "http://bot.test/cb",
            "idempotency_key": "k_" + uuid.uuid4().hex,
            "payload": {},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now + timedelta(seconds=1),
            "created_at": now,
            "traceparent": None,
        }
    )
    if fail:
        raise Boom(lane)
    backend: int = yield run(_BACKEND)
    return backend


async def _count(units: PostgresUnits, lane: str) -> Any:
    return await units.run(single(run(_COUNT, {"lane": lane})))


async def test_units_one_after_the_other_share_a_connection(engine: AsyncEngine) -> None:
    units = PostgresUnits(engine, hold_seconds=3600)
    lane = uuid.uuid4().hex
    first = await units.run(_enqueue(lane))
    second = await units.run(_enqueue(lane))
    assert first == second
    assert await _count(units, lane) == 2
    assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    await units.close()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_kept_connection_that_went_away_is_replaced(
    engine: AsyncEngine, database: Database
) -> None:
    units = PostgresUnits(engine, hold_seconds=3600)
    lane = uuid.uuid4().hex
    first = await units.run(_enqueue(lane))
    # The server ends the kept connection (a restart, an idle timeout, an operator).
    killer = await asyncpg.connect(database.url.replace("+asyncpg", ""))
    try:
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", first)
    finally:
        await killer.close()
    second = await units.run(_enqueue(lane))
    assert second != first
    assert await _count(units, lane) == 2
    await units.close()


async def test_a_failing_unit_leaves_nothing_and_its_connection_serves_the_next(
    engine: AsyncEngine,
) -> None:
    units = PostgresUnits(engine, hold_seconds=3600)
    lane = uuid.uuid4().hex
    first = await units.run(_enqueue(lane))
    with pytest.raises(Boom):
        await units.run(_enqueue(lane, fail=True))
    assert await units.run(_enqueue(lane)) == first
    assert await _count(units, lane) == 2
    await units.close()


_SLEEP = Sql.of(None, "none", postgresql="SELECT pg_sleep(0.01)")


async def test_units_waiting_for_a_connection_take_turns_in_arrival_order(
    database: Database,
) -> None:
    """With every connection busy, units run in the order they came: none is overtaken by
    one that came later and took a connection just given back, while it waited (a pool of
    one lends one connection and one overflow, one of which stays for the ORM: one unit
    at a time). Each unit that finishes brings a new one, as a busy service's would."""
    if database.backend != "postgres":
        pytest.skip("PostgreSQL's runner; SQLite batches units on its one connection")
    settings = make_settings(database, 0)
    engine = create_engine(settings.database.model_copy(update={"pool_size": 1}))
    runner = PostgresUnits(engine)
    finished: list[int] = []
    tasks: list[asyncio.Task[None]] = []

    def start(n: int) -> None:
        tasks.append(asyncio.create_task(runner.run(unit(n))))

    def unit(n: int) -> Unit[None]:
        yield run(_SLEEP)
        finished.append(n)
        if n + 6 < 18:
            start(n + 6)

    try:
        for n in range(6):
            start(n)
        while len(finished) < 18:
            await asyncio.gather(*tasks)
    finally:
        await runner.close()
        await engine.dispose()
    assert finished == list(range(18))
