"""Prunes what the store no longer needs: old finished deliveries and old inbound ids.

Dead deliveries are never pruned: they wait for an operator. Several replicas pruning
at once only delete the same rows twice, which is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from bridge.db.repo import Store
from bridge.settings import RelaySettings

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 3600.0


async def prune_once(store: Store, settings: RelaySettings, now: datetime) -> tuple[int, int]:
    """Prune once; returns (deliveries, inbound ids) removed."""
    async with store.transaction() as tx:
        deliveries = await tx.prune_outbox(now - timedelta(days=settings.keep_delivered_days))
        inbound = await tx.prune_deliveries(now - timedelta(days=settings.keep_inbound_ids_days))
    return deliveries, inbound


class Housekeeper:
    """Runs prune_once every hour in the background."""

    def __init__(self, store: Store, settings: RelaySettings) -> None:
        self._store = store
        self._settings = settings
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin pruning on a timer."""
        self._task = asyncio.create_task(self._loop(), name="housekeeping")

    async def stop(self) -> None:
        """Stop the timer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                removed = await prune_once(self._store, self._settings, datetime.now(UTC))
                if any(removed):
                    log.info(
                        "housekeeping.pruned",
                        extra={"deliveries": removed[0], "inbound_ids": removed[1]},
                    )
            except Exception:
                log.exception("housekeeping.failed")
            await asyncio.sleep(INTERVAL_SECONDS)
