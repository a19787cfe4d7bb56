"""Runs units of work (bridge/db/units.py) on the configured database, without the ORM.

SQLite: group commit. Units wait in a queue; one writer takes every unit waiting and runs
them in the driver's own thread, in one transaction, each under a savepoint, and commits
once: one thread hop and one fsync for the batch instead of one per statement and per
request (aiosqlite hops threads on every statement). Units queued while a batch runs form
the next batch, so batches grow with the load and a lone request waits for nobody. The
connection is the engine's single pooled one, so ORM transactions and batches take turns
on it as they always did.

PostgreSQL: each unit runs in its own transaction on a pooled asyncpg connection,
statement by statement with no ORM in between; concurrent units commit independently
(PostgreSQL groups their WAL flushes itself), and no transaction ever holds two
conversations' locks for another unit's sake. A connection a unit used is kept for the
next unit for a moment (HOLD_SECONDS) before it goes back to the pool: taking one from the
pool (a ping, a greenlet, a pool lock) cost as much as a message's own statements.
"""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.db.units import (
    PLAIN,
    Row,
    Step,
    Unit,
    postgres_value,
    read_postgres_row,
    read_sqlite_row,
    sqlite_value,
)

T = TypeVar("T")

# At most this many units share one SQLite transaction: a batch that large already costs
# each of them little, and a rollback of the whole (a failed commit) stays bounded.
MAX_BATCH = 256
# How long the writer keeps the pooled connection while units keep coming.
HOLD_SECONDS = 0.05

# A unit waiting for the writer: its caller's future, and its caller's context.
_Waiting = tuple[Unit[Any], "asyncio.Future[Any]", contextvars.Context]


class UnitRunner(Protocol):
    """Runs one unit of work in a transaction and answers its result (or raises its error)."""

    async def run(self, unit: Unit[T]) -> T: ...

    async def close(self) -> None:
        """Wait for the units already handed over (before the engine is disposed)."""


def _drive_sync(unit: Unit[T], execute: Callable[[Step], Any]) -> T:
    """Run a unit to its end, executing each step as it asks."""
    try:
        step = next(unit)
        while True:
            step = unit.send(execute(step))
    except StopIteration as stop:
        result: T = stop.value
        return result


def _sqlite_execute(connection: sqlite3.Connection, step: Step) -> Any:
    """One step on a sqlite3 connection, answering what its statement fetches."""
    sql = step.sql
    if sql.sqlite is None:
        return None
    if step.many is not None:
        rows = [
            {name: v if v.__class__ in PLAIN else sqlite_value(v) for name, v in values.items()}
            for values in step.many
        ]
        cursor = connection.executemany(sql.sqlite, rows)
        return cursor.rowcount
    # Most values are text, numbers or NULL: they go to the driver as they are.
    values = {
        name: v if v.__class__ in PLAIN else sqlite_value(v) for name, v in step.values.items()
    }
    cursor = connection.execute(sql.sqlite, values)
    if sql.fetch == "none":
        return None
    if sql.fetch == "count":
        return cursor.rowcount
    names = [column[0] for column in cursor.description or ()]
    if sql.fetch == "scalar":
        first = cursor.fetchone()
        cursor.fetchall()  # a RETURNING statement finishes only once read to its end
        return None if first is None else first[0]
    if sql.fetch == "row":
        first = cursor.fetchone()
        cursor.fetchall()
        return None if first is None else read_sqlite_row(sql, dict(zip(names, first, strict=True)))
    return [read_sqlite_row(sql, dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


def _sqlite_batch(
    connection: sqlite3.Connection, units: list[tuple[Unit[Any], contextvars.Context]]
) -> list[tuple[bool, Any]]:
    """Run `units` in one transaction (in the driver's thread); each outcome in order.

    Each unit runs in the context of the task that handed it over, so what it reads of
    its request (the trace a delivery continues) is that request's, not the thread's.
    """
    if connection.in_transaction:
        # A transaction left open on the pooled connection would swallow this batch's.
        connection.rollback()
    outcomes: list[tuple[bool, Any]] = []
    connection.execute("BEGIN IMMEDIATE")
    try:
        for unit, context in units:
            connection.execute("SAVEPOINT unit")
            try:
                value = context.run(
                    _drive_sync, unit, lambda step: _sqlite_execute(connection, step)
                )
            except Exception as exc:
                connection.execute("ROLLBACK TO unit")
                connection.execute("RELEASE unit")
                outcomes.append((False, exc))
                continue
            connection.execute("RELEASE unit")
            outcomes.append((True, value))
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.rollback()
        raise
    return outcomes


class SqliteGroupCommit:
    """Batches units into one transaction on the engine's one SQLite connection."""

    def __init__(self, engine: AsyncEngine, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._waiting: deque[_Waiting] = deque()
        self._writer: asyncio.Task[None] | None = None
        # Transactions committed or attempted so far (operators' and tests' view of batching).
        self.batches = 0

    async def run(self, unit: Unit[T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((unit, future, contextvars.copy_context()))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="sqlite-group-commit")
        return await future

    async def close(self) -> None:
        # The writer is not cancelled: a batch cut off mid-way would leave its pooled
        # connection unusable, and its callers without an answer.
        writer = self._writer
        if writer is not None and not writer.done():
            await asyncio.shield(writer)

    async def _write(self) -> None:
        """Run batches until nothing waits (the next unit starts a writer again).

        The pooled connection is kept across consecutive batches for a short while, then
        given back, so the ORM's transactions (which share it) take their turn too.
        """
        loop = asyncio.get_running_loop()
        while self._waiting:
            try:
                async with self._engine.connect() as connection:
                    raw = await connection.get_raw_connection()
                    driver: Any = raw.driver_connection
                    give_back_at = loop.time() + HOLD_SECONDS
                    while self._waiting and loop.time() < give_back_at:
                        batch = self._take()
                        if batch and not await self._run_batch(driver, batch):
                            break  # the connection may be broken: take a fresh one
            except Exception as exc:
                # No connection to be had (or giving it back failed): the units waiting
                # fail with the error rather than wait for a writer that is gone.
                self._fail_waiting(exc)

    def _fail_waiting(self, exc: Exception) -> None:
        while self._waiting:
            unit, future, _ = self._waiting.popleft()
            unit.close()
            if not future.done():
                future.set_exception(exc)

    def _take(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        while self._waiting and len(batch) < self._max_batch:
            unit, future, context = self._waiting.popleft()
            if future.cancelled():
                # Its caller is gone before anything ran: nothing to write for it.
                unit.close()
                continue
            batch.append((unit, future, context))
        return batch

    async def _run_batch(self, driver: Any, batch: list[_Waiting]) -> bool:
        """Run one batch and settle its callers' futures; whether it committed."""
        self.batches += 1
        try:
            # aiosqlite runs every call in its connection's thread; the whole batch is one
            # such call, so its statements run back to back with no hop in between.
            outcomes: list[tuple[bool, Any]] = await driver._execute(
                _sqlite_batch, driver._conn, [(unit, context) for unit, _, context in batch]
            )
        except Exception as exc:
            # The batch did not commit: every unit in it failed with the same error.
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return False
        for (_, future, _), (ok, value) in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        return True


# At most this many connections wait between units (and never more than the pool keeps);
# more go back to the pool at once.
MAX_IDLE = 8


class PostgresUnits:
    """Runs each unit in its own transaction on a pooled asyncpg connection."""

    def __init__(self, engine: AsyncEngine, hold_seconds: float = HOLD_SECONDS) -> None:
        self._engine = engine
        self._hold = hold_seconds
        pool_size = getattr(engine.pool, "size", None)
        self._max_idle = min(MAX_IDLE, pool_size()) if callable(pool_size) else MAX_IDLE
        # Connections kept between units, the last used last, each with when it was.
        self._idle: list[tuple[AsyncConnection, Any, float]] = []
        self._sweeper: asyncio.Task[None] | None = None
        # Units take turns, first come first served, for the pool's connections but a few
        # left for the ORM's transactions (the pool lends its size again as overflow, see
        # bridge/db/engine.py). Without the turns, a unit arriving just as another
        # finished took the kept connection, and units queued in the pool's own wait could
        # wait seconds under load (handoffs: p50 83 ms but p90 1.0 s, max 2.0 s; with the
        # turns p50 255, p90 321, max 463 ms at the same rate).
        size = pool_size() if callable(pool_size) else MAX_IDLE
        self._turns = asyncio.Semaphore(max(1, 2 * size - min(4, size)))

    async def close(self) -> None:
        """Give the connections kept between units back to the pool."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        idle, self._idle = self._idle, []
        for connection, _, _ in idle:
            await self._give_back(connection)

    async def run(self, unit: Unit[T]) -> T:
        async with self._turns:
            return await self._run(unit)

    async def _run(self, unit: Unit[T]) -> T:
        connection, driver, kept = await self._take()
        transaction = driver.transaction()
        try:
            await transaction.start()
        except Exception:
            await self._drop(connection)
            if not kept:
                raise
            # A kept connection that went away meanwhile (what the pool's ping is for; its
            # error depends on when the server's goodbye arrived): nothing was written, so
            # the unit starts on a fresh one from the pool.
            connection, driver, _ = await self._take(fresh=True)
            transaction = driver.transaction()
            try:
                await transaction.start()
            except BaseException:
                await self._drop(connection)
                raise
        except BaseException:
            await self._drop(connection)
            raise
        try:
            try:
                step = next(unit)
                while True:
                    step = unit.send(await self._execute(driver, step))
            except StopIteration as stop:
                result: T = stop.value
        except BaseException:
            # The unit's own error, the database's, or a cancel: nothing of it stays.
            try:
                await transaction.rollback()
            except BaseException:
                await self._drop(connection)
                raise
            await self._keep(connection, driver)
            raise
        try:
            await transaction.commit()
        except BaseException:
            await self._drop(connection)
            raise
        await self._keep(connection, driver)
        return result

    async def _take(self, *, fresh: bool = False) -> tuple[AsyncConnection, Any, bool]:
        """A connection kept from the last units (and whether it was), else one from the
        pool, which pings it first."""
        if not fresh:
            while self._idle:
                connection, driver, _ = self._idle.pop()
                if not driver.is_closed():
                    return connection, driver, True
                await self._drop(connection)
        connection = await self._engine.connect()
        try:
            raw = await connection.get_raw_connection()
        except BaseException:
            await self._drop(connection)
            raise
        return connection, raw.driver_connection, False

    async def _keep(self, connection: AsyncConnection, driver: Any) -> None:
        """Keep a connection for the next unit; the sweeper gives it back if none comes."""
        loop = asyncio.get_running_loop()
        if driver.is_closed() or driver.is_in_transaction():
            await self._drop(connection)
            return
        if len(self._idle) >= self._max_idle:
            await self._give_back(connection)
            return
        self._idle.append((connection, driver, loop.time()))
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = loop.create_task(self._sweep(), name="postgres-units-sweeper")

    async def _sweep(self) -> None:
        """Give back the connections no unit took within the hold time."""
        loop = asyncio.get_running_loop()
        while self._idle:
            await asyncio.sleep(self._hold)
            cutoff = loop.time() - self._hold
            stale = [entry for entry in self._idle if entry[2] <= cutoff]
            self._idle = [entry for entry in self._idle if entry[2] > cutoff]
            for connection, _, _ in stale:
                await self._give_back(connection)

    @staticmethod
    async def _give_back(connection: AsyncConnection) -> None:
        """Back to the pool (shielded: a cancelled caller must not leave it checked out)."""
        await asyncio.shield(connection.close())

    @staticmethod
    async def _drop(connection: AsyncConnection) -> None:
        """A connection in an unknown state: the pool drops it rather than lend it again."""

        async def drop() -> None:
            await connection.invalidate()
            await connection.close()

        await asyncio.shield(drop())

    @staticmethod
    async def _execute(driver: Any, step: Step) -> Any:
        sql = step.sql
        assert sql.numbered is not None
        text, names = sql.numbered
        if step.many is not None:
            rows = [[postgres_value(values[name]) for name in names] for values in step.many]
            await driver.executemany(text, rows)
            return len(rows)
        values = step.values
        arguments = [postgres_value(values[name]) for name in names]
        if sql.fetch == "none":
            await driver.execute(text, *arguments)
            return None
        if sql.fetch == "count":
            status: str = await driver.execute(text, *arguments)
            return int(status.rsplit(" ", 1)[-1])
        if sql.fetch == "scalar":
            return await driver.fetchval(text, *arguments)
        if sql.fetch == "row":
            record = await driver.fetchrow(text, *arguments)
            return None if record is None else read_postgres_row(sql, dict(record))
        records = await driver.fetch(text, *arguments)
        return [read_postgres_row(sql, dict(record)) for record in records]


def unit_runner(engine: AsyncEngine) -> UnitRunner:
    """The runner for the engine's backend."""
    if engine.dialect.name == "sqlite":
        return SqliteGroupCommit(engine)
    return PostgresUnits(engine)


__all__ = ["PostgresUnits", "Row", "SqliteGroupCommit", "UnitRunner", "unit_runner"]
