"""The queue of waiting chats: positions derived when read, and coalesced `queue.updated`.

A chat's position is never written to every waiting row when the queue changes: the
API counts it on the queue's index when it is asked (bounded by `queue.count_limit`),
and a change (a handoff, a take, a chat leaving the queue) only inserts a marker for
its channel. The announcer then tells the bots: for each marked channel it reads the
waiting chats in order once, compares each position with the one last announced, and
queues `queue.updated` for those that changed, in one transaction. A channel is
announced at most once per `queue.update_seconds`, by one replica at a time (a
conditional update on the channel's announcement time), so a bot hears at most once
per interval and the last event it received holds its current position.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.db.repo import Store, Tx
from bridge.db.repo.queue import Announced
from bridge.db.retry import run_again_on_conflict
from bridge.db.tables import ConversationRow
from bridge.domain.conversation import waiting_for_agent
from bridge.services.pending import Announcement, pending_rows

log = logging.getLogger(__name__)

# How long a stop waits for an announcing pass to finish before cancelling it.
STOP_GRACE_SECONDS = 5.0

# Recent waits used for the estimated wait of a queued chat.
WAIT_SAMPLE = 20
# Positions announced per channel in one pass, nearest the head first; the rest follow
# at the channel's next turn, so one pass never holds the store for long.
ANNOUNCE_BATCH = 500


@dataclass(frozen=True, slots=True)
class QueueSpot:
    """Where a waiting chat stands: its position (1 is next) and its estimated wait."""

    position: int | None = None
    estimated_wait_seconds: int | None = None


NOT_QUEUED = QueueSpot()


def estimate(typical_wait: float | None, position: int) -> int | None:
    """The estimated wait at `position`: the channel's typical wait times the position."""
    return round(typical_wait * position) if typical_wait is not None else None


async def typical_wait(tx: Tx, channel: str) -> float | None:
    """The median wait of the channel's latest assigned chats; None before there is one."""
    waits = await tx.recent_waits(channel, WAIT_SAMPLE)
    return statistics.median(waits) if waits else None


async def spot_of(tx: Tx, row: ConversationRow, count_limit: int) -> QueueSpot:
    """The chat's place in its channel's queue, counted now; NOT_QUEUED once it left it.

    Past `count_limit` chats ahead the count stops, and the position last announced
    to the bot stands in (at most one announcement interval old; None before the first).
    """
    if not waiting_for_agent(row.status, row.assignee_id):
        return NOT_QUEUED
    ahead = await tx.ahead_in_queue(row, count_limit)
    position = ahead + 1 if ahead is not None else row.queue_position
    if position is None:
        return QueueSpot()
    return QueueSpot(position, estimate(await typical_wait(tx, row.channel), position))


async def spots_in_order(
    tx: Tx, ordered: Sequence[ConversationRow], rows: Iterable[ConversationRow]
) -> dict[str, QueueSpot]:
    """Spots of `rows`, given every waiting chat of their channels in queue order."""
    positions: dict[str, int] = {}
    seen: dict[str, int] = {}
    for row in ordered:
        seen[row.channel] = seen.get(row.channel, 0) + 1
        positions[row.id] = seen[row.channel]
    wanted = list(rows)
    typical = {c: await typical_wait(tx, c) for c in {row.channel for row in wanted}}
    return {
        row.id: QueueSpot(positions[row.id], estimate(typical[row.channel], positions[row.id]))
        for row in wanted
        if row.id in positions
    }


async def queue_changed(tx: Tx, channel: str, now: datetime, wake: Callable[[], None]) -> None:
    """Mark the channel's queue as changed, in the change's transaction; wake the announcer
    once it has committed."""
    await tx.mark_queue_changed(channel, now)
    tx.after_commit(wake)


class QueueAnnouncer:
    """Sends each bot its new position, at most once per conversation per interval."""

    def __init__(
        self,
        store: Store,
        every_seconds: float,
        on_commit: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._every = timedelta(seconds=every_seconds)
        self._on_commit = on_commit
        self._clock = clock
        self._woken = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """A queue changed on this replica: announce it as soon as its channel's turn allows."""
        self._woken.set()

    def start(self) -> None:
        """Begin announcing in the background."""
        self._task = asyncio.create_task(self._loop(), name="queue-announcer")

    async def stop(self) -> None:
        """Stop announcing; what was not announced yet is still marked in the store."""
        if self._task is None:
            return
        self._stopping.set()
        self._woken.set()
        # A pass in progress is let finish: cancelling it mid-statement can leave its
        # pooled connection unusable for whoever takes it next (the relay, at shutdown).
        done, _ = await asyncio.wait({self._task}, timeout=STOP_GRACE_SECONDS)
        if not done:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def announce_due(self) -> float | None:
        """Announce every changed channel whose turn it is.

        Returns the seconds until the next channel's turn, or None when nothing is left.
        """
        async with self._store.transaction() as tx:
            channels = await tx.changed_queues()
        next_turn: datetime | None = None
        for channel in channels:
            turn = await run_again_on_conflict(functools.partial(self._announce, channel))
            if turn is not None and (next_turn is None or turn < next_turn):
                next_turn = turn
        if next_turn is None:
            return None
        return (next_turn - self._clock()).total_seconds()

    async def _announce(self, channel: str) -> datetime | None:
        """One channel's turn: None when announced, else when its turn comes."""
        now = self._clock()
        async with self._store.transaction() as tx:
            turn = await tx.claim_queue(channel, now, self._every)
            if turn is not None:
                return turn
            await tx.take_queue_changes(channel)
            typical = await typical_wait(tx, channel)
            changed: list[Announced] = []
            for position, waiting in enumerate(await tx.waiting_in_order(channel), start=1):
                eta = estimate(typical, position)
                if (waiting.announced_position, waiting.announced_eta) != (position, eta):
                    changed.append(Announced(waiting.id, position, eta))
            batch = changed[:ANNOUNCE_BATCH]
            if len(changed) > len(batch):
                # The rest at the channel's next turn, nearest the head first.
                await tx.mark_queue_changed(channel, now)
            announced = {a.id: a for a in batch}
            rows = await tx.set_announced(batch)
            subscriptions = await tx.subscriptions() if rows else []
            # Every event of the pass in one statement: hundreds of chats can be due at
            # once (a burst of handoffs), and an ORM object each held the store for long.
            outbox: list[dict[str, Any]] = []
            for row in sorted(rows, key=lambda r: announced[r.id].position):
                spot = announced[row.id]
                data = {"position": spot.position, "estimated_wait_seconds": spot.eta}
                event = Announcement("queue.updated", data, to_bot=True)
                values, timeline = pending_rows(row, [event], now, subscriptions)
                outbox.extend(values)
                for moment in timeline:
                    await tx.add_timeline(moment)
            await tx.enqueue_values(outbox)
        if batch:
            self._on_commit()
            log.info("queue.announced", extra={"channel": channel, "conversations": len(batch)})
        return None

    async def _loop(self) -> None:
        every = self._every.total_seconds()
        while not self._stopping.is_set():
            self._woken.clear()
            try:
                due = await self.announce_due()
            except Exception:
                log.exception("queue.announce_failed")
                due = every
            if self._stopping.is_set():
                return
            if due is None:
                # Nothing left here; changes made on other replicas are found on the timer.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), every)
            else:
                # Sleeps until the channel's turn, but a stop (which sets `_woken`) ends it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), min(max(due, 0.0), every))
