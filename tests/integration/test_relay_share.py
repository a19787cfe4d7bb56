"""Heads a claim finds beyond their destination's share wait in the worker, leased, and take
its next free slot without another claim; beyond one share of them they are given back, and
a stop gives back those still waiting.

On a SQLite file and on the real PostgreSQL (the `database` fixture), with the worker's own
claim and a deliverer that holds each attempt until the test lets it go.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bridge.db.repo import Store, Tx
from bridge.db.tables import OutboxRow
from bridge.db.units import Unit
from bridge.relay.delivery import DeliveryResult
from bridge.relay.jobs import BotEvent
from bridge.relay.worker import RelayWorker
from bridge.settings import Settings
from tests.conftest import Database, make_settings
from tests.kit.store import migrated

SHARE = 2
LANES = 6  # one share running, one share waiting, the rest given back
CALLBACK = "http://bot.test/cb"  # every lane's one destination


class GatedDeliverer:
    """Holds each attempt until `let_go`; notes the rows attempted, in order."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self._gates: dict[int, asyncio.Event] = {}
        self._changed = asyncio.Event()

    async def deliver(self, row: OutboxRow) -> DeliveryResult:
        gate = self._gates.setdefault(row.id, asyncio.Event())
        self.started.append(row.id)
        self._changed.set()
        await gate.wait()
        return DeliveryResult()

    def let_go(self, row_id: int) -> None:
        self._gates.setdefault(row_id, asyncio.Event()).set()

    async def wait_started(self, count: int) -> None:
        while len(self.started) < count:
            self._changed.clear()
            await self._changed.wait()


class NoHooks:
    """Plain deliveries need no lifecycle hook."""

    def delivered(self, row: OutboxRow, result: DeliveryResult) -> Unit[None]:
        return None
        yield  # a unit of work with no step

    async def dead(self, tx: Tx, row: OutboxRow, error: str) -> None:
        return None


@pytest.fixture
def settings(database: Database) -> Settings:
    relay = {"max_in_flight": 16, "max_in_flight_per_destination": SHARE}
    return make_settings(database, 0, relay=relay)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    async with migrated(settings) as migrated_store:
        yield migrated_store


async def _queue_heads(store: Store) -> list[int]:
    """One event in each of LANES lanes, all to the same bot."""
    now = datetime.now(UTC)
    rows = [
        BotEvent.about(f"conv-{n}", CALLBACK, "agent.message", {"n": n}, now).to_row(now)
        for n in range(LANES)
    ]
    async with store.transaction() as tx:
        await tx.enqueue(rows)
    return [row.id for row in rows]


async def _rows(store: Store) -> dict[int, OutboxRow]:
    async with store.transaction() as tx:
        rows = await tx.list_outbox(status=None, conversation_id=None, after_id=0, limit=100)
    return {row.id: row for row in rows}


async def test_heads_over_the_share_wait_leased_and_take_the_next_slot(
    store: Store, settings: Settings
) -> None:
    queued = await _queue_heads(store)
    deliverer = GatedDeliverer()
    worker = RelayWorker(store, deliverer, NoHooks(), settings.relay)

    assert await worker.run_once() == 2 * SHARE  # one share running, one waiting
    await deliverer.wait_started(SHARE)
    rows = await _rows(store)
    leased = {row_id for row_id in queued if rows[row_id].lease_until is not None}
    running = set(deliverer.started)
    assert len(leased) == 2 * SHARE and running < leased
    waiting = leased - running

    # An attempt ends: a waiting head takes its slot at once, with no claim in between
    # (the heads given back are still not leased by anyone).
    deliverer.let_go(deliverer.started[0])
    await deliverer.wait_started(SHARE + 1)
    assert deliverer.started[SHARE] in waiting
    rows = await _rows(store)
    assert {row_id for row_id in queued if rows[row_id].lease_until is not None} <= leased

    # Everything claimed is delivered; the heads given back go with the next claim.
    for row_id in queued:
        deliverer.let_go(row_id)
    await worker.drain()
    rows = await _rows(store)
    assert {row_id for row_id in queued if rows[row_id].status == "delivered"} == leased
    assert await worker.run_once() == LANES - 2 * SHARE
    await worker.drain()
    rows = await _rows(store)
    assert all(rows[row_id].status == "delivered" for row_id in queued)
    assert sorted(deliverer.started) == sorted(queued)  # each attempted once


async def test_a_stop_gives_back_the_heads_still_waiting(store: Store, settings: Settings) -> None:
    queued = await _queue_heads(store)
    deliverer = GatedDeliverer()
    worker = RelayWorker(store, deliverer, NoHooks(), settings.relay)
    assert await worker.run_once() == 2 * SHARE
    await deliverer.wait_started(SHARE)

    await worker.stop(grace_seconds=0)
    rows = await _rows(store)
    # The running attempts were cut off and the waiting heads never started: every lease
    # is given back, so another worker takes them over at once, and nothing was lost.
    assert all(rows[row_id].lease_until is None for row_id in queued)
    assert all(rows[row_id].status == "pending" for row_id in queued)
    assert len(deliverer.started) == SHARE


async def test_no_more_attempts_run_than_the_worker_has_slots(
    store: Store, database: Database
) -> None:
    """Whatever a claim answers, at most `max_in_flight` attempts run; heads beyond wait,
    leased, and every row is delivered once."""
    now = datetime.now(UTC)
    rows = [
        BotEvent.about(f"lane-{n}", f"http://bot-{n}.test/cb", "agent.message", {}, now).to_row(now)
        for n in range(4)
    ]
    async with store.transaction() as tx:
        await tx.enqueue(rows)
    settings = make_settings(database, 0, relay={"max_in_flight": 2})
    deliverer = GatedDeliverer()
    worker = RelayWorker(store, deliverer, NoHooks(), settings.relay)
    assert await worker.run_once() >= 2
    await deliverer.wait_started(2)
    # Let the event loop run whatever else was started, then count.
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(deliverer.started) == 2
    for row in rows:
        deliverer.let_go(row.id)
    while await worker.run_once() or len(deliverer.started) < len(rows):
        await worker.drain()
    await worker.drain()
    assert len(deliverer.started) == len(set(deliverer.started)) == len(rows)


class InstantDeliverer:
    """Delivers at once; notes the lanes attempted, in order."""

    def __init__(self) -> None:
        self.lanes: list[str] = []

    async def deliver(self, row: OutboxRow) -> DeliveryResult:
        self.lanes.append(row.lane)
        return DeliveryResult()


async def test_every_lane_gets_its_turn_when_there_are_fewer_slots_than_lanes(
    store: Store, database: Database
) -> None:
    """The walk goes on from where the last full claim stopped, and round to the start; once
    a claim finds fewer heads than it asks for, the next walks every lane from the start."""
    now = datetime.now(UTC)
    lanes = ["a", "b", "c"]
    rows = [
        BotEvent.about(lane, f"http://bot-{lane}.test/cb", "agent.message", {"n": n}, now)
        for n in range(3)
        for lane in lanes
    ]
    async with store.transaction() as tx:
        await tx.enqueue([job.to_row(now) for job in rows])
    settings = make_settings(database, 0, relay={"max_in_flight": 2})
    deliverer = InstantDeliverer()
    worker = RelayWorker(store, deliverer, NoHooks(), settings.relay)
    rounds = []
    while claimed := await worker.run_once():
        await worker.drain()
        rounds.append(sorted(lane.split(":")[0] for lane in deliverer.lanes[-claimed:]))
    # Two slots, three lanes of three rows: each claim walks on after the last lane it
    # took, round to the start, so no lane with a row due waits more than one round.
    assert rounds == [["a", "b"], ["a", "c"], ["a", "b"], ["b", "c"], ["c"]]
    assert len(deliverer.lanes) == 9
