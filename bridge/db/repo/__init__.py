"""Repositories: the only place that writes SQL. One `Tx` is one database transaction.

A `Tx` is made of one part per aggregate (conversations, messages, the directory of agents
and teams, routers, the outbox, the queue, subscriptions, inbound bookkeeping, adapter
state), all sharing one session, so a change and the deliveries it causes commit together.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.db.repo.adapter_state import AdapterStateQueries
from bridge.db.repo.conversations import ConversationQueries
from bridge.db.repo.delivery import DeliveryQueries
from bridge.db.repo.directory import DirectoryQueries
from bridge.db.repo.inbound import InboundQueries
from bridge.db.repo.messages import MessageQueries
from bridge.db.repo.outbox import OutboxQueries
from bridge.db.repo.queue import QueueQueries
from bridge.db.repo.routers import RouterQueries
from bridge.db.repo.subscriptions import SubscriptionQueries

__all__ = ["Store", "Tx"]


class Tx(
    ConversationQueries,
    MessageQueries,
    DirectoryQueries,
    RouterQueries,
    OutboxQueries,
    DeliveryQueries,
    QueueQueries,
    SubscriptionQueries,
    InboundQueries,
    AdapterStateQueries,
):
    """Queries and writes inside one transaction."""


class Store:
    """Opens transactions on the configured database."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

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
