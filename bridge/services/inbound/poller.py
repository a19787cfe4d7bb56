"""Polls platforms whose webhooks are not set up, feeding events to the inbound service.

The cursor of each channel is kept in the store, so a restart resumes where it was.
Applying an event is idempotent (see service.py beside this module), so two replicas
polling the same platform, or a poll overlapping a webhook, apply each event once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from bridge.db.repo import Store
from bridge.ports.agent_side import AgentSideAdapter
from bridge.services.inbound.limits import storable_events
from bridge.services.inbound.service import InboundService

log = logging.getLogger(__name__)
_CURSOR = "poll_cursor"


class Poller:
    """One background loop per polled channel."""

    def __init__(
        self, store: Store, inbound: InboundService, adapters: Mapping[str, AgentSideAdapter]
    ) -> None:
        self._store = store
        self._inbound = inbound
        self._polled = {
            channel: adapter
            for channel, adapter in adapters.items()
            if adapter.capabilities.polling and adapter.poll_interval()
        }
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start polling every channel that asks for it."""
        for channel, adapter in self._polled.items():
            self._tasks.append(
                asyncio.create_task(self._loop(channel, adapter), name=f"poll-{channel}")
            )

    async def stop(self) -> None:
        """Stop polling (a poll in progress is abandoned; its cursor was not yet moved)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def poll_once(self, channel: str) -> int:
        """Fetch and apply one batch for `channel`; returns how many events it had."""
        adapter = self._polled[channel]
        async with self._store.transaction() as tx:
            cursor = await tx.get_state(channel, _CURSOR)
        events, next_cursor = await adapter.poll(cursor)
        for event in storable_events(channel, events):
            await self._inbound.apply(channel, adapter, event)
        if next_cursor is not None and next_cursor != cursor:
            async with self._store.transaction() as tx:
                await tx.put_state(channel, _CURSOR, next_cursor, datetime.now(UTC))
        return len(events)

    async def _loop(self, channel: str, adapter: AgentSideAdapter) -> None:
        interval = adapter.poll_interval() or 30.0
        while True:
            try:
                await self.poll_once(channel)
            except Exception:
                # A platform outage must not end polling; the next round tries again.
                log.exception("poll.failed", extra={"channel": channel})
            await asyncio.sleep(interval)
