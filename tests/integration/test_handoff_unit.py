"""A new handoff's unit of work on the real SQLite file and the real PostgreSQL: the row it
writes is stored exactly as the ORM stores one (JSON nulls, times, defaults), a repeat
finds the active conversation through the partial unique indexes, and a refused
duplicate is told apart from other errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from bridge.db import handoff_steps as hs
from bridge.db.repo import Store
from bridge.db.retry import unique_violation
from bridge.db.tables import ConversationRow
from bridge.db.units import Sql, Unit, run, single
from bridge.domain.status import Status
from tests.conftest import Database, make_settings
from tests.kit.store import migrated


@pytest.fixture
async def store(database: Database) -> AsyncIterator[Store]:
    async with migrated(make_settings(database, 0)) as store:
        yield store


def _conversation(customer: str) -> ConversationRow:
    # Microseconds and a non-UTC offset on purpose: both must be stored as the ORM does.
    now = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC).astimezone()
    return ConversationRow(
        id=str(uuid.uuid4()),
        status=Status.PENDING,
        main_channel="mysite",
        channel="mysite-en",
        platform="console",
        region="en",
        route_rule="region",
        route_trace=["region 'en' → 'mysite-en'", "ünïcode ✓"],
        bot_platform="webhook",
        bot_conversation_id=f"bot-{customer}",
        callback_url="http://127.0.0.1:9/callback",
        customer_id=customer,
        customer={"id": customer, "name": "Ana", "extra": {"tags": [1, None, True]}},
        conversation_metadata={"plan": "gold"},
        settings={},
        agent=None,
        external_ref=None,
        platform_join_url=None,
        status_reason=None,
        organization_id=None,
        created_at=now,
        updated_at=now,
        closed_at=None,
        offered_to=["ana"],
        routing_progress=[],
        priority=2,
        accept_round=0,
        passed_over=[],
    )


async def _raw(store: Store, conversation_id: str) -> dict[str, Any]:
    async with store.transaction() as tx:
        result = await tx.session.execute(
            text("SELECT * FROM conversations WHERE id = :id"), {"id": conversation_id}
        )
        return dict(result.mappings().one())


async def test_the_unit_stores_a_conversation_exactly_as_the_orm_does(store: Store) -> None:
    by_orm, by_unit = _conversation("orm"), _conversation("unit")
    async with store.transaction() as tx:
        await tx.insert_conversation(by_orm)
    await store.run(single(hs.insert_conversation(by_unit)))

    orm, unit = await _raw(store, by_orm.id), await _raw(store, by_unit.id)
    differ = {"id", "customer_id", "bot_conversation_id", "customer"}
    assert {k: v for k, v in unit.items() if k not in differ} == {
        k: v for k, v in orm.items() if k not in differ
    }
    async with store.transaction() as tx:
        read = await tx.get_conversation(by_unit.id)
    assert read is not None
    assert read.customer == by_unit.customer
    assert read.created_at == by_unit.created_at
    assert read.agent is None and read.handback is None
    assert read.status == Status.PENDING


async def test_the_active_conversation_is_found_by_bot_conversation_or_customer(
    store: Store,
) -> None:
    row = _conversation("finder")
    await store.run(single(hs.insert_conversation(row)))

    def find(bot_conversation: str, customer: str) -> Unit[Any]:
        found = yield hs.find_active("webhook", bot_conversation, "mysite", customer)
        assert not found["has_subscribers"]
        return found["existing"]

    assert await store.run(find("bot-finder", "someone-else")) == row.id
    assert await store.run(find("another-bot-conversation", "finder")) == row.id
    assert await store.run(find("another-bot-conversation", "someone-else")) is None
    async with store.transaction() as tx:
        found = await tx.find_active("webhook", "x", "mysite", "finder")
    assert found is not None and found.id == row.id


async def test_the_active_lookup_reads_the_unique_indexes_not_the_queue(
    store: Store, database: Database
) -> None:
    if database.backend != "sqlite":
        pytest.skip("SQLite's planner; PostgreSQL plans by its statistics of the table")
    async with store.transaction() as tx:
        plan = await tx.session.execute(
            text("EXPLAIN QUERY PLAN " + hs.FIND_ACTIVE_SQL),
            {
                "bot_platform": "b",
                "bot_conversation_id": "c",
                "main_channel": "m",
                "customer_id": "x",
            },
        )
        details = " ".join(str(row[-1]) for row in plan)
    assert "uq_conversations_active_bot" in details
    assert "uq_conversations_active_customer" in details


async def test_a_duplicate_active_conversation_is_refused_as_such(store: Store) -> None:
    row = _conversation("twice")
    await store.run(single(hs.insert_conversation(row)))
    again = _conversation("twice")
    with pytest.raises(Exception) as refused:
        await store.run(single(hs.insert_conversation(again)))
    # The driver's own error, read as the ORM's: the API answers it 409, as it would.
    assert isinstance(refused.value, IntegrityError)
    assert unique_violation(refused.value)
    assert not unique_violation(ValueError("UNIQUE"))


async def test_a_units_other_driver_errors_read_as_the_orms(
    store: Store, database: Database
) -> None:
    missing = Sql.of("INSERT INTO queue_changes (channel, changed_at) VALUES (NULL, NULL)")
    with pytest.raises(IntegrityError):
        await store.run(single(run(missing)))
    broken = Sql.of("SELECT no_such_column FROM conversations")
    with pytest.raises(DBAPIError) as refused:
        await store.run(single(run(broken)))
    assert not isinstance(refused.value, IntegrityError | DataError)
    if database.backend == "postgres":  # SQLite keeps any length in a VARCHAR
        too_long = Sql.of("INSERT INTO queue_changes (channel, changed_at) VALUES (:c, now())")
        with pytest.raises(DataError):
            await store.run(single(run(too_long, {"c": "x" * 300})))
