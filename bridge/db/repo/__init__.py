"""Repositories: the only place that writes SQL. One `Tx` is one database transaction.

A `Tx` is made of one part per aggregate (conversations, messages, the directory of agents
and teams, routers, the outbox, the queue, subscriptions, inbound bookkeeping, adapter
state, the supervisor's read-only views, the console's timeline), all sharing one
session, so a change and the deliveries it causes commit together.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.db.driver_errors import as_dbapi_error
from bridge.db.repo.adapter_state import AdapterStateQueries
from bridge.db.repo.conversations import ConversationQueries
from bridge.db.repo.delivery import DeliveryQueries
from bridge.db.repo.directory import DirectoryQueries
from bridge.db.repo.handling import HandlingQueries
from bridge.db.repo.inbound import InboundQueries
from bridge.db.repo.messages import MessageQueries
from bridge.db.repo.outbox import OutboxQueries
from bridge.db.repo.queue import QueueQueries
from bridge.db.repo.routers import RouterQueries
from bridge.db.repo.subscriptions import SubscriptionQueries
from bridge.db.repo.supervision import SupervisionQueries
from bridge.db.repo.timeline import TimelineQueries
from bridge.db.runner import UnitRunner, unit_runner
from bridge.db.units import Unit

__all__ = ["Store", "Tx"]

T = TypeVar("T")


class Tx(
    ConversationQueries,
    MessageQueries,
    DirectoryQueries,
    HandlingQueries,
    RouterQueries,
    OutboxQueries,
    DeliveryQueries,
    QueueQueries,
    SubscriptionQueries,
    InboundQueries,
    AdapterStateQueries,
    SupervisionQueries,
    TimelineQueries,
):
    """Queries and writes inside one transaction."""


class Store:
    """Opens transactions on the configured database."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._runner: UnitRunner | None = None

    async def run(self, unit: Unit[T]) -> T:
        """Run a unit of work (bridge/db/units.py) in a transaction of its own, without the ORM.

        On SQLite it shares one transaction with the units waiting at the same time
        (group commit); an exception it raises rolls back only what it wrote.
        """
        if self._runner is None:
            engine = self._sessionmaker.kw["bind"]
            self._runner = unit_runner(engine)
        try:
            return await self._runner.run(unit)
        except Exception as exc:
            translated = as_dbapi_error(exc)
            if translated is None:
                raise
            raise translated from exc

    async def close(self) -> None:
        """Let units already handed over finish; call before disposing of the engine."""
        if self._runner is not None:
            await self._runner.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A transaction that commits on success and rolls back on any error.

        Hooks registered with `Tx.after_commit` run after the commit, so what they wake
        (a background task) finds the change in the store.
        """
        async with self._sessionmaker() as session:
            tx = Tx(session)
            async with session.begin():
                yield tx
        for hook in tx.committed_hooks:
            hook()
