"""The claim takes only the heads of due lanes, once each, and a replayed dead row goes first.

On a SQLite file and on the real PostgreSQL (the `database` fixture), with the claim the
worker runs (a unit of work, bridge/db/steps.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from bridge.db import steps
from bridge.db.repo import Store
from bridge.db.repo.delivery import claim_sql, claim_timers_sql
from bridge.db.tables import TIMER_KINDS, ConversationRow, OutboxRow
from bridge.db.units import Unit, single
from bridge.domain.status import Status
from bridge.relay.jobs import AcceptTimeout, BotEvent, EvaluateRouting
from bridge.relay.jobs.moves import FallbackTimer
from tests.conftest import Database, make_settings
from tests.kit.store import migrated

LEASE = timedelta(seconds=15)


@pytest.fixture
async def store(database: Database) -> AsyncIterator[Store]:
    """A migrated store on the test's database."""
    async with migrated(make_settings(database, 0)) as migrated_store:
        yield migrated_store


async def _queue(store: Store, conversation: str, count: int, now: datetime) -> list[int]:
    """`count` bot events in one lane (their conversation's bot lane), in order."""
    rows = [
        BotEvent.about(conversation, "http://bot.test/cb", "agent.message", {"n": n}, now).to_row(
            now
        )
        for n in range(count)
    ]
    async with store.transaction() as tx:
        await tx.enqueue(rows)
    return [row.id for row in rows]


async def _claim(store: Store, now: datetime, limit: int = 100, **kw: Any) -> list[int]:
    """The claim the worker runs (a unit of work), as row ids in id order."""
    rows = await store.run(single(steps.claim_heads(now, limit, now + LEASE, **kw)))
    return [row.id for row in steps.outbox_rows(rows)]


async def _renew(store: Store, row_ids: list[int], now: datetime, until: datetime) -> set[int]:
    renewed = await store.run(single(steps.renew_leases(row_ids, now, until)))
    return {row["id"] for row in renewed}


async def test_only_the_head_of_each_due_lane_is_claimed(store: Store) -> None:
    now = datetime.now(UTC)
    a = await _queue(store, "conv-a", 50, now)
    b = await _queue(store, "conv-b", 3, now)
    assert await _claim(store, now) == [a[0], b[0]]
    # Leased heads hold their lanes: nothing behind them is claimed, however many wait.
    assert await _claim(store, now) == []
    async with store.transaction() as tx:
        await tx.finish_delivered([a[0]], now)
        await tx.finish_retries([(b[0], now + timedelta(hours=1), "HTTP 503")])
    # The next of lane a; lane b waits for its head's retry, holding back only itself.
    assert await _claim(store, now) == [a[1]]
    async with store.transaction() as tx:
        await tx.finish_delivered([a[1]], now)
    assert await _claim(store, now + timedelta(hours=2)) == [a[2], b[0]]


async def test_a_replayed_dead_row_is_delivered_before_later_pending_ones(
    store: Store,
) -> None:
    now = datetime.now(UTC)
    first, second, third = await _queue(store, "conv-r", 3, now)
    assert await _claim(store, now) == [first]
    async with store.transaction() as tx:
        await tx.finish_dead([(first, "HTTP 400")])
    # A dead row stops holding back its lane.
    assert await _claim(store, now) == [second]
    async with store.transaction() as tx:
        await tx.finish_retries([(second, now, "HTTP 503")])
        assert await tx.requeue(first, now)
    # Back in line at its own place: ahead of every row of its lane still pending.
    order = []
    for _ in range(3):
        claimed = await _claim(store, now)
        assert len(claimed) == 1, claimed
        order += claimed
        async with store.transaction() as tx:
            await tx.finish_delivered(claimed, now)
    assert order == [first, second, third]


async def test_the_walk_goes_round_from_where_it_stopped(store: Store) -> None:
    now = datetime.now(UTC)
    heads = {lane: (await _queue(store, lane, 2, now))[0] for lane in ("l1", "l2", "l3", "l4")}
    assert await _claim(store, now, 2, after_lane="l2:bot") == [heads["l3"], heads["l4"]]
    assert await _claim(store, now, 5, upto_lane="l1:bot") == [heads["l1"]]
    assert await _claim(store, now, 5) == [heads["l2"]]


async def test_only_leases_still_held_are_renewed(store: Store) -> None:
    now = datetime.now(UTC)
    held = await _queue(store, "conv-h", 1, now)
    lapsed = await _queue(store, "conv-l", 1, now)
    assert await _claim(store, now) == [held[0], lapsed[0]]
    later = now + LEASE + timedelta(seconds=1)
    # conv-l's lease ran out at `later`; conv-h's is renewed just before it does.
    assert await _renew(store, held, now + LEASE / 2, later + LEASE) == {held[0]}
    assert await _renew(store, lapsed, later, later + LEASE) == set()
    # The lapsed row may be taken over; the renewed one may not.
    assert await _claim(store, later) == [lapsed[0]]


async def test_concurrent_claims_take_each_lane_once(store: Store) -> None:
    """Many workers claiming at once (replicas on PostgreSQL) never share a lane's head."""
    now = datetime.now(UTC)
    for lane in range(20):
        await _queue(store, f"conv-{lane:02d}", 5, now)
    claimed: list[int] = []
    while True:
        # A claim passes over heads another one is taking (SKIP LOCKED on PostgreSQL),
        # so it may find fewer than it could: the next round finds the rest.
        claims = await asyncio.gather(*(_claim(store, now, 4) for _ in range(10)))
        found = [row_id for claim in claims for row_id in claim]
        if not found:
            break
        claimed += found
    async with store.transaction() as tx:
        rows = await tx.list_outbox(status=None, conversation_id=None, after_id=0, limit=200)
    lane_of = {row.id: row.lane for row in rows}
    per_lane = Counter(lane_of[row_id] for row_id in claimed)
    assert set(per_lane.values()) == {1}
    assert len(per_lane) == 20


async def _stored_conversation(store: Store, cid: str, external_ref: str | None) -> None:
    now = datetime.now(UTC)
    row = ConversationRow(
        id=cid,
        status=Status.ACTIVE,
        main_channel="site",
        channel="kommunicate-eu",
        platform="kommunicate",
        region=None,
        route_rule="region_missing",
        route_trace=[],
        bot_platform="webhook",
        bot_conversation_id=f"bot-{cid}",
        callback_url="http://bot.test/cb",
        customer_id=f"customer-{cid}",
        customer={"id": f"customer-{cid}"},
        conversation_metadata={},
        settings={},
        agent=None,
        external_ref=external_ref,
        created_at=now,
        updated_at=now,
    )
    async with store.transaction() as tx:
        await tx.insert_conversation(row)


async def test_the_worker_s_claim_reads_each_conversation_s_platform_ref(store: Store) -> None:
    """The claim the worker runs (a unit of work) answers where each row's conversation is
    on its platform, so posting a message needs no read of its own."""
    now = datetime.now(UTC)
    await _stored_conversation(store, "opened", "group-42")
    await _stored_conversation(store, "not-yet", None)
    opened = await _queue(store, "opened", 2, now)
    not_yet = await _queue(store, "not-yet", 1, now)
    orphan = await _queue(store, "gone", 1, now)

    def claim() -> Unit[list[steps.Claimed]]:
        rows = steps.outbox_rows((yield steps.claim_heads(now, 10, now + LEASE)))
        ids = [row.conversation_id for row in rows if row.conversation_id]
        return steps.claimed(rows, (yield steps.platform_refs(ids)))

    found = {c.row.id: (c.channel, c.external_ref) for c in await store.run(claim())}
    assert found == {
        opened[0]: ("kommunicate-eu", "group-42"),
        not_yet[0]: ("kommunicate-eu", None),
        orphan[0]: (None, None),
    }
    # The same lane rules as the store's claim: the next of a lane waits for its head.
    assert await store.run(single(steps.claim_heads(now, 10, now + LEASE))) == []


async def test_a_claimed_row_reads_as_the_orm_reads_it(store: Store) -> None:
    """The worker's rows are made without the ORM's constructor: every column reads back as
    it does through the ORM (with the lease the claim took)."""
    now = datetime.now(UTC)
    [queued] = await _queue(store, "conv-columns", 1, now)
    [claimed] = steps.outbox_rows(await store.run(single(steps.claim_heads(now, 10, now + LEASE))))
    async with store.transaction() as tx:
        [loaded] = await tx.list_outbox(
            status=None, conversation_id="conv-columns", after_id=0, limit=10
        )
    columns = [column.key for column in OutboxRow.__table__.columns]
    assert claimed.id == queued
    assert {key: getattr(claimed, key) for key in columns} == {
        key: getattr(loaded, key) for key in columns
    }
    assert claimed.lease_until == now + LEASE


async def _timers(store: Store, due: list[datetime], now: datetime) -> list[int]:
    """Accept timers of fresh conversations, one lane each, due at the given times."""
    rows = [
        AcceptTimeout(f"timed-{i}-{uuid.uuid4().hex[:8]}", 1).to_row(now, due=at)
        for i, at in enumerate(due)
    ]
    async with store.transaction() as tx:
        await tx.enqueue(rows)
    return [row.id for row in rows]


async def _claim_timers(store: Store, now: datetime, limit: int = 100) -> list[int]:
    rows = await store.run(single(steps.claim_timers(now, limit, now + LEASE)))
    return [row.id for row in steps.outbox_rows(rows)]


async def test_timers_are_claimed_by_time_and_never_by_the_walk(store: Store) -> None:
    """Chats waiting on a timer leave the lanes' walk alone: it finds only the others."""
    now = datetime.now(UTC)
    later = await _timers(store, [now + timedelta(hours=1)] * 50, now)
    due = await _timers(store, [now - timedelta(seconds=3), now - timedelta(seconds=9)], now)
    lane = await _queue(store, "walked", 2, now)

    assert await _claim(store, now) == [lane[0]]
    # Oldest due first, each once; the ones due later wait.
    assert await _claim_timers(store, now, limit=1) == [due[1]]
    assert await _claim_timers(store, now) == [due[0]]
    assert await _claim_timers(store, now) == []
    # Later on, those due later are due; the first two's leases have run out, unfinished.
    assert await _claim_timers(store, now + timedelta(hours=2)) == sorted([*later, *due])


async def test_a_timer_waits_for_the_one_before_it_in_its_lane(store: Store) -> None:
    now = datetime.now(UTC)
    first = FallbackTimer("moved-twice", "mysite-en").to_row(now, due=now + timedelta(hours=1))
    second = FallbackTimer("moved-twice", "mysite-de").to_row(now, due=now - timedelta(seconds=1))
    async with store.transaction() as tx:
        await tx.enqueue([first, second])
    assert await _claim_timers(store, now) == []
    assert await _claim_timers(store, now + timedelta(hours=2)) == [first.id]


async def test_the_claims_read_their_partial_indexes(store: Store, database: Database) -> None:
    """What keeps a claim's cost to what is due (the partial indexes of migration 0013)."""
    if database.backend != "sqlite":
        pytest.skip("SQLite's planner; PostgreSQL plans by its statistics of the table")
    async with store.transaction() as tx:
        for sql, index in (
            (claim_sql("sqlite", 0, False), "ix_outbox_pending_lanes"),
            (claim_timers_sql("sqlite", 0), "ix_outbox_pending_timers"),
        ):
            values = {"now": "x", "until": "y", "limit": 5, "after": ""}
            plan = await tx.session.execute(text("EXPLAIN QUERY PLAN " + sql), values)
            assert index in " ".join(str(row[-1]) for row in plan)


def test_timer_kinds_are_the_timer_jobs() -> None:
    """The claim's list of timer kinds is every job that waits for a time in a lane of its own."""
    assert set(TIMER_KINDS) == {AcceptTimeout.kind, FallbackTimer.kind, EvaluateRouting.kind}
    for job in (AcceptTimeout("c", 1), FallbackTimer("c", "x"), EvaluateRouting("c")):
        assert job.place().lane.startswith("c:")
        assert job.place().lane.split(":")[1] in {"accept", "fallback", "routing"}


async def test_a_claim_leases_no_more_than_its_limit(store: Store) -> None:
    """On PostgreSQL too, where the rows to lease are picked once (a CTE, not a subquery
    that may run again and lease more)."""
    now = datetime.now(UTC)
    for n in range(6):
        await _queue(store, f"limited-{n}", 2, now)
    for limit in (1, 2, 3):
        claimed = await _claim(store, now, limit=limit)
        assert len(claimed) == limit, claimed
    await _timers(store, [now - timedelta(seconds=1)] * 5, now)
    assert len(await _claim_timers(store, now, limit=2)) == 2
