"""Accepting a message costs a fixed, small number of statements, whatever the store holds.

The message, its deliveries and the conversation's lock are written in one transaction of
at most three statements (plus PostgreSQL's NOTIFY), counted on the real SQLite file and
the real PostgreSQL: no locking read followed by an update, no read of the subscribers
when there are none, no re-read of the row just written, no second transaction for the
console's author. A repeated id still answers with the stored message and changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import event

from bridge.attachments import AttachmentCheck
from bridge.db.engine import create_engine, create_sessionmaker
from bridge.db.repo import Store
from bridge.db.units import Unit
from bridge.errors import ConversationNotFound
from bridge.models import AgentMessageRequest, CustomerMessageRequest
from bridge.services.messages import Messages
from bridge.settings.attachments import AttachmentSettings
from tests.conftest import RunningBridge
from tests.fakes import FakeBot, handoff_body

T = TypeVar("T")


class Counted:
    """The statements run while counting, through the ORM or as units' steps (NOTIFY apart:
    PostgreSQL only)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return sum(1 for s in self.statements if "pg_notify" not in s.lower())


class CountingStore(Store):
    """The real store, noting each statement its units run (as the engine's event does for
    the ORM's)."""

    counted: Counted | None = None

    async def run(self, unit: Unit[T]) -> T:
        return await super().run(self._noted(unit))

    def _noted(self, unit: Unit[T]) -> Unit[T]:
        try:
            step = next(unit)
            while True:
                if self.counted is not None:
                    self.counted.statements.append(step.sql.postgresql or step.sql.sqlite or "")
                step = unit.send((yield step))
        except StopIteration as stop:
            result: T = stop.value
            return result


@pytest.fixture
async def messages(bridge: RunningBridge) -> AsyncIterator[tuple[Messages, Any]]:
    """The message service on the bridge's own database, over an engine of its own."""
    engine = create_engine(bridge.settings.database)
    store = CountingStore(create_sessionmaker(engine))
    # No agent-side adapter known: customer messages are queued for the platform too.
    service = Messages(
        store, {}, lambda: None, lambda: datetime.now(UTC), AttachmentCheck(AttachmentSettings())
    )
    try:
        yield service, (engine, store)
    finally:
        await store.close()
        await engine.dispose()


@contextmanager
def counting(parts: Any) -> Iterator[Counted]:
    engine, store = parts
    counted = Counted()
    store.counted = counted

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counted.statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield counted
    finally:
        store.counted = None
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _joined(bridge: RunningBridge, bot: FakeBot, key: str) -> str:
    status, conversation = await bridge.post(
        "/v1/handoffs", handoff_body(bot.url, conversation_id=key, customer_id=key)
    )
    assert status == 201, conversation
    token = conversation["join_url"].rsplit("/", 1)[1]
    status, _ = await bridge.post(f"/console/api/{token}/join", {"name": "Ana"})
    assert status == 200
    return str(conversation["id"])


async def test_a_message_is_accepted_in_three_statements(
    bridge: RunningBridge, bot: FakeBot, messages: tuple[Messages, Any]
) -> None:
    service, engine = messages
    conversation = await _joined(bridge, bot, "few-statements")
    with counting(engine) as customer:
        stored, created = await service.customer_message(
            conversation, CustomerMessageRequest(text="Where is my parcel?", id="c-1")
        )
    assert created and stored.seq > 0
    # The conversation's lock and its columns, the message, its delivery to the platform.
    assert 0 < customer.count <= 3, customer.statements
    with counting(engine) as agent:
        reply, created = await service.agent_message(
            conversation,
            AgentMessageRequest(text="On its way.", client_id="a-1"),
            None,
            by_assignee=True,
        )
    assert created and reply.seq > stored.seq
    assert reply.author == "Ana"  # the assignee's name, read in the same statement
    assert 0 < agent.count <= 3, agent.statements
    status, page = await bridge.get(f"/v1/conversations/{conversation}/messages")
    assert status == 200
    texts = [(m["role"], m["text"], m["author"]) for m in page["messages"]]
    assert texts[-2:] == [
        ("customer", "Where is my parcel?", None),
        ("agent", "On its way.", "Ana"),
    ]


async def test_a_repeated_id_answers_the_stored_message_and_changes_nothing(
    bridge: RunningBridge, bot: FakeBot, messages: tuple[Messages, Any]
) -> None:
    service, _ = messages
    conversation = await _joined(bridge, bot, "repeated")
    first, created = await service.customer_message(
        conversation, CustomerMessageRequest(text="Hello", id="same")
    )
    assert created
    _, before = await bridge.get(f"/v1/conversations/{conversation}")
    again, created = await service.customer_message(
        conversation, CustomerMessageRequest(text="Hello", id="same")
    )
    assert not created
    assert (again.seq, again.text, again.external_id) == (first.seq, "Hello", "same")
    _, after = await bridge.get(f"/v1/conversations/{conversation}")
    assert after["updated_at"] == before["updated_at"]
    status, page = await bridge.get(f"/v1/conversations/{conversation}/messages")
    assert [m["id"] for m in page["messages"]].count("same") == 1
    # Over HTTP too: 201 once, then 200 with the same message.
    path = f"/v1/conversations/{conversation}/messages"
    status, body = await bridge.post(path, {"text": "Hi", "id": "http-1"})
    assert status == 201
    status, repeat = await bridge.post(path, {"text": "Hi", "id": "http-1"})
    assert (status, repeat["message"]["seq"]) == (200, body["message"]["seq"])


async def test_subscribers_still_hear_of_messages(
    bridge: RunningBridge, bot: FakeBot, messages: tuple[Messages, Any]
) -> None:
    service, _ = messages
    conversation = await _joined(bridge, bot, "subscribed")
    status, _ = await bridge.post(
        "/v1/subscriptions", {"url": bot.url, "events": ["customer.message"]}
    )
    assert status == 201
    await service.customer_message(conversation, CustomerMessageRequest(text="Hi", id="s-1"))
    status, page = await bridge.get(f"/v1/outbox?conversation_id={conversation}&limit=1000")
    assert status == 200
    assert "subscription.event" in {item["kind"] for item in page["items"]}


async def test_an_unknown_conversation_is_not_found(messages: tuple[Messages, Any]) -> None:
    service, _ = messages
    with pytest.raises(ConversationNotFound):
        await service.customer_message("no-such", CustomerMessageRequest(text="Hi", id="x"))
