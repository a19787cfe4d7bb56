"""Units of work on the real SQLite file and the real PostgreSQL: what they write reads back
through the ORM unchanged (and the other way round), a failing unit leaves nothing behind
while the others commit, and concurrent units on SQLite share one transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from bridge.db import steps
from bridge.db.repo import Store
from bridge.db.runner import SqliteGroupCommit
from bridge.db.tables import MessageRow
from bridge.db.units import Unit
from tests.conftest import Database, make_settings
from tests.kit.store import migrated


class Boom(Exception):
    """A unit's own error, raised after it wrote."""


@pytest.fixture
async def store(database: Database) -> AsyncIterator[Store]:
    async with migrated(make_settings(database, 0)) as store:
        yield store


def _message(conversation_id: str, external_id: str | None, text: str = "hello") -> MessageRow:
    # Microseconds and a non-UTC offset on purpose: both must survive the round trip.
    sent = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC).astimezone()
    return MessageRow(
        conversation_id=conversation_id,
        role="customer",
        text=text,
        author=None,
        external_id=external_id,
        sent_at=sent,
        created_at=datetime(2026, 3, 1, 12, 30, 6, tzinfo=UTC),
    )


def _outbox(conversation_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    now = datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC)
    return {
        "lane": f"{conversation_id}:agent",
        "conversation_id": conversation_id,
        "kind": "agent.message",
        "target": "console",
        "idempotency_key": "msg_" + uuid.uuid4().hex,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now + timedelta(seconds=3),
        "created_at": now,
        "traceparent": None,
    }


def _write(message: MessageRow, outbox: dict[str, Any], fail: bool = False) -> Unit[int]:
    seq = yield steps.append_message(message)
    yield steps.enqueue(outbox)
    if fail:
        raise Boom(seq)
    return int(seq)


async def test_what_a_unit_writes_reads_back_through_the_orm(store: Store) -> None:
    conversation = str(uuid.uuid4())
    message = _message(conversation, "m-1", "héllo ✓")
    payload = {"text": "ünïcode", "nested": {"list": [1, 2.5, None, True]}}
    outbox = _outbox(conversation, payload)
    seq = await store.run(_write(message, outbox))
    async with store.transaction() as tx:
        stored = await tx.messages(conversation)
        rows = await tx.list_outbox(status=None, conversation_id=conversation, after_id=0, limit=10)
    assert [m.seq for m in stored] == [seq]
    assert stored[0].text == "héllo ✓"
    assert stored[0].sent_at == message.sent_at
    assert stored[0].created_at == message.created_at
    assert len(rows) == 1
    assert rows[0].payload == payload
    assert rows[0].next_attempt_at == outbox["next_attempt_at"]
    assert rows[0].created_at == outbox["created_at"]
    assert rows[0].status == "pending" and rows[0].attempts == 0


async def test_a_row_made_without_the_constructor_is_written_and_read_alike(
    store: Store,
) -> None:
    """`steps.orm_row` makes what the message path writes: the same columns as the
    constructor's row, attached to no session, and a value set later is kept."""
    conversation = str(uuid.uuid4())
    built = _message(conversation, "m-3", "made")
    columns = ["conversation_id", "role", "text", "author", "external_id", "sent_at", "created_at"]
    made = steps.orm_row(MessageRow, **{name: getattr(built, name) for name in columns})
    assert {name: getattr(made, name) for name in columns} == {
        name: getattr(built, name) for name in columns
    }
    assert made.attachments is None and made.seq is None
    made.seq = await store.run(_write(made, _outbox(conversation, {})))
    async with store.transaction() as tx:
        [stored] = await tx.messages(conversation)
    assert stored.seq == made.seq
    assert {name: getattr(stored, name) for name in columns} == {
        name: getattr(made, name) for name in columns
    }


async def test_what_the_orm_writes_reads_back_through_a_unit(store: Store) -> None:
    conversation = str(uuid.uuid4())
    message = _message(conversation, "m-2")
    async with store.transaction() as tx:
        await tx.add_messages([message])

    def find() -> Unit[dict[str, Any] | None]:
        found = yield steps.find_message(conversation, "customer", "m-2")
        return found  # type: ignore[no-any-return]

    found = await store.run(find())
    assert found is not None
    assert found["sent_at"] == _message(conversation, "m-2").sent_at
    assert found["created_at"] == message.created_at
    assert found["text"] == "hello"


async def test_a_repeated_sender_id_is_skipped_in_the_statement(store: Store) -> None:
    conversation = str(uuid.uuid4())

    def twice() -> Unit[tuple[Any, Any]]:
        first = yield steps.append_message(_message(conversation, "same"))
        second = yield steps.append_message(_message(conversation, "same"))
        return first, second

    first, second = await store.run(twice())
    assert isinstance(first, int)
    assert second is None


async def test_a_failing_unit_leaves_nothing_while_the_others_commit(store: Store) -> None:
    conversation = str(uuid.uuid4())
    units = [
        _write(_message(conversation, f"m-{i}"), _outbox(conversation, {"i": i}), fail=i == 3)
        for i in range(8)
    ]
    outcomes = await asyncio.gather(*(store.run(unit) for unit in units), return_exceptions=True)
    assert isinstance(outcomes[3], Boom)
    assert all(isinstance(value, int) for i, value in enumerate(outcomes) if i != 3)
    async with store.transaction() as tx:
        stored = await tx.messages(conversation)
        rows = await tx.list_outbox(status=None, conversation_id=conversation, after_id=0, limit=50)
    assert sorted(m.external_id or "" for m in stored) == sorted(
        f"m-{i}" for i in range(8) if i != 3
    )
    assert sorted(row.payload["i"] for row in rows) == [0, 1, 2, 4, 5, 6, 7]


async def test_concurrent_units_on_sqlite_share_a_transaction(
    store: Store, database: Database
) -> None:
    if database.backend != "sqlite":
        pytest.skip("group commit is SQLite's; PostgreSQL runs a transaction per unit")
    conversation = str(uuid.uuid4())
    await store.run(_write(_message(conversation, "warm"), _outbox(conversation, {})))
    runner = store._runner
    assert isinstance(runner, SqliteGroupCommit)
    before = runner.batches
    units = [
        _write(_message(conversation, f"c-{i}"), _outbox(conversation, {"i": i})) for i in range(50)
    ]
    seqs = await asyncio.gather(*(store.run(unit) for unit in units))
    assert len(set(seqs)) == 50
    # All 50 were waiting when the writer started: far fewer transactions than units.
    assert runner.batches - before < 10


async def test_units_fail_instead_of_waiting_when_there_is_no_database(tmp_path: Path) -> None:
    """The group-commit writer cannot open the database: its callers get the error."""
    missing = tmp_path / "not-a-directory"
    missing.write_text("a file where the database's folder should be")
    engine = create_async_engine(f"sqlite+aiosqlite:///{missing}/bridge.db")
    runner = SqliteGroupCommit(engine)
    conversation = str(uuid.uuid4())
    try:
        outcomes = await asyncio.gather(
            *(
                runner.run(_write(_message(conversation, f"x-{i}"), _outbox(conversation, {})))
                for i in range(3)
            ),
            return_exceptions=True,
        )
    finally:
        await engine.dispose()
    assert all(isinstance(outcome, Exception) for outcome in outcomes), outcomes
