"""Prunes what the store no longer needs: old finished deliveries, old inbound ids, and
early platform events whose conversation never became known.

Dead deliveries are never pruned: they wait for an operator. Several replicas pruning
at once only delete the same rows twice, which is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from bridge.db.repo import Store
from bridge.settings import RelaySettings

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 3600.0
# Parked events are kept minutes, not days: prune them about as often as they expire.
_MIN_INTERVAL_SECONDS = 60.0


class Pruned(NamedTuple):
    """How many rows one pruning removed."""

    deliveries: int
    inbound_ids: int
    parked_events: int


def interval_seconds(settings: RelaySettings) -> float:
    """How long to wait between prunings."""
    return min(INTERVAL_SECONDS, max(_MIN_INTERVAL_SECONDS, settings.keep_early_events_seconds))


async def prune_once(store: Store, settings: RelaySettings, now: datetime) -> Pruned:
    """Prune once; returns what was removed."""
    async with store.transaction() as tx:
        deliveries = await tx.prune_outbox(now - timedelta(days=settings.keep_delivered_days))
        inbound = await tx.prune_deliveries(now - timedelta(days=settings.keep_inbound_ids_days))
        parked = await tx.prune_parked_events(
            now - timedelta(seconds=settings.keep_early_events_seconds)
        )
    if parked:
        # Platform events about chats the bridge never learned of (or whose open never
        # finished); with them goes whatever they would have changed.
        log.info("inbound.parked_expired", extra={"events": parked})
    return Pruned(deliveries, inbound, parked)


class Housekeeper:
    """Runs prune_once in the background: hourly, or as often as parked events expire."""

    def __init__(self, store: Store, settings: RelaySettings) -> None:
        self._store = store
        self._settings = settings
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        """Begin pruning on a timer."""
        self._task = asyncio.create_task(self._loop(), name="housekeeping")

    async def stop(self) -> None:
        """Stop the timer; a prune in progress finishes first (it is one short transaction)."""
        if self._task is not None:
            # Not cancelled mid-statement: that can leave a pooled connection unusable.
            self._stopping.set()
            done, _ = await asyncio.wait({self._task}, timeout=5.0)
            if not done:  # stuck on the store: cancelled after all, as a last resort
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                removed = await prune_once(self._store, self._settings, datetime.now(UTC))
                if any(removed):
                    log.info("housekeeping.pruned", extra=removed._asdict())
            except Exception:
                log.exception("housekeeping.failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval_seconds(self._settings))
