"""Old finished deliveries, inbound ids and parked events are pruned; dead and fresh stay."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.ports.agent_side import InboundEvent
from bridge.relay.housekeeping import prune_once
from bridge.relay.jobs import BotEvent
from bridge.services.inbound.early_events import parked_row
from tests.conftest import Database, make_settings
from tests.kit.store import migrated


async def test_prune_keeps_dead_and_recent(database: Database, tmp_path: Path) -> None:
    settings = make_settings(database, 0)
    async with migrated(settings) as store:
        now = datetime.now(UTC)
        old = now - timedelta(days=settings.relay.keep_delivered_days + 1)
        rows = [
            BotEvent.about(f"c{i}", "http://bot/cb", "agent.message", {}, when).to_row(when)
            for i, when in enumerate((old, old, old, now))
        ]
        async with store.transaction() as tx:
            await tx.enqueue(rows)
            await tx.mark_delivered(rows[0].id, old)
            await tx.mark_dead(rows[1].id, "400")
            await tx.mark_delivered(rows[3].id, now)
            await tx.record_delivery("msg_old", now - timedelta(days=31))
            await tx.record_delivery("msg_new", now)
        assert await prune_once(store, settings.relay, now) == (1, 1, 0)
        async with store.transaction() as tx:
            left = await tx.list_outbox(status=None, conversation_id=None, after_id=0, limit=10)
            assert sorted(r.status for r in left) == ["dead", "delivered", "pending"]
            assert await tx.record_delivery("msg_old", now)  # forgotten, so new again
            assert not await tx.record_delivery("msg_new", now)


async def test_prune_drops_early_events_whose_conversation_never_came(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bridge")
    settings = make_settings(database, 0)
    async with migrated(settings) as store:
        now = datetime.now(UTC)
        waited = now - timedelta(seconds=settings.relay.keep_early_events_seconds + 1)
        old = InboundEvent(kind="conversation.closed", event_id="done-1", external_ref="cv-1")
        new = InboundEvent(kind="conversation.closed", event_id="done-2", external_ref="cv-2")
        async with store.transaction() as tx:
            assert await tx.park_event(parked_row("chatvisor", old, waited))
            # The platform's retry while the first copy waits is not kept twice.
            assert not await tx.park_event(parked_row("chatvisor", old, now))
            assert await tx.park_event(parked_row("chatvisor", new, now))
        assert await prune_once(store, settings.relay, now) == (0, 0, 1)
        async with store.transaction() as tx:
            assert not await tx.has_parked_events("chatvisor", "cv-1")
            assert [e.event_id for e in await tx.parked_events("chatvisor", "cv-2")] == ["done-2"]
        expired = [r for r in caplog.records if r.getMessage() == "inbound.parked_expired"]
        assert [r.events for r in expired] == [1]  # type: ignore[attr-defined]
