"""Outbox rows queued by an earlier version run after an upgrade; a kind no job has is dead."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bridge.db.tables import OutboxRow
from bridge.typedefs import STORE, WORKER
from tests.conftest import RunningBridge
from tests.fakes import FakeBot


async def _queue(bridge: RunningBridge, kind: str, target: str, payload: dict[str, Any]) -> str:
    """Write a row as an earlier version wrote it, straight into the store."""
    now = datetime.now(UTC)
    key = f"msg_{kind.replace('.', '_')}_earlier"
    row = OutboxRow(
        lane="conv-earlier:bot",
        conversation_id="conv-earlier",
        kind=kind,
        target=target,
        idempotency_key=key,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    async with bridge.server.app[STORE].transaction() as tx:
        await tx.enqueue([row])
    bridge.server.app[WORKER].wake()
    return key


async def test_a_bot_event_from_before_bot_side_adapters_is_delivered(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    data = {"conversation_id": "conv-earlier", "agent": {"name": "Ana"}}
    body = json.dumps(
        {"type": "agent.joined", "timestamp": "2026-11-21T10:00:00+00:00", "data": data}
    )
    # Rows of that version named no bot: the plain webhook bot delivers them.
    key = await _queue(bridge, "bot.event", bot.url, {"type": "agent.joined", "body": body})
    await bot.wait_for(lambda b: len(b.events) == 1)
    assert (bot.events[0].webhook_id, bot.events[0].data) == (key, data)
    listing = await bridge.get_until(
        "/v1/outbox?conversation_id=conv-earlier",
        lambda answer: answer["items"][0]["status"] == "delivered",
    )
    assert listing["items"][0]["event_type"] == "agent.joined"


async def test_a_row_of_a_kind_no_job_has_is_dead_with_the_reason(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    await _queue(bridge, "agent.typing", bot.url, {})
    listing = await bridge.get_until(
        "/v1/outbox?status=dead", lambda answer: len(answer["items"]) == 1
    )
    dead = listing["items"][0]
    assert (dead["kind"], dead["attempts"]) == ("agent.typing", 1)
    assert dead["last_error"] == "unknown delivery kind 'agent.typing'"
    assert bot.events == []
