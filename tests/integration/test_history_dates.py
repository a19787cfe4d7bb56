"""A handoff's history may leave out `sent_at`: those messages are dated at the receipt,
in the order given, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import RunningBridge
from tests.fakes import FakeBot, handoff_body


async def test_history_without_sent_at_is_dated_at_receipt_in_order(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    history = [
        {"role": "customer", "text": "Where is my order?"},
        {"role": "bot", "text": "Let me look.", "sent_at": "2026-11-21T10:00:02Z"},
        {"role": "bot", "text": "Let me get a person."},
        {"role": "customer", "text": "Thanks"},
    ]
    before = datetime.now(UTC)
    status, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url, history=history))
    after = datetime.now(UTC)
    assert status == 201, conversation

    status, answer = await bridge.get(f"/v1/conversations/{conversation['id']}/messages")
    assert status == 200, answer
    messages = answer["messages"]
    assert [m["text"] for m in messages] == [m["text"] for m in history]
    times = [datetime.fromisoformat(m["sent_at"]) for m in messages]
    assert times[1] == datetime(2026, 11, 21, 10, 0, 2, tzinfo=UTC)
    undated = [times[0], times[2], times[3]]
    assert all(before <= when <= after for when in undated), undated
    # Strictly increasing as stored and read back: the store keeps the microseconds.
    assert undated == sorted(set(undated)), undated
