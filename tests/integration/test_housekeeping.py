"""Old finished deliveries and inbound ids are pruned; dead deliveries and fresh rows stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.db.engine import create_engine, create_sessionmaker
from bridge.db.migrate import upgrade
from bridge.db.repo import Store
from bridge.relay import outbox
from bridge.relay.housekeeping import prune_once
from tests.conftest import Database, make_settings


async def test_prune_keeps_dead_and_recent(database: Database, tmp_path: Path) -> None:
    settings = make_settings(database, 0)
    engine = create_engine(settings.database)
    try:
        await upgrade(engine, settings.database)
        store = Store(create_sessionmaker(engine))
        now = datetime.now(UTC)
        old = now - timedelta(days=settings.relay.keep_delivered_days + 1)
        rows = [
            outbox.bot_event(f"c{i}", "http://bot/cb", "agent.message", {}, when)
            for i, when in enumerate((old, old, old, now))
        ]
        async with store.transaction() as tx:
            await tx.enqueue(rows)
            await tx.mark_delivered(rows[0].id, old)
            await tx.mark_dead(rows[1].id, "400")
            await tx.mark_delivered(rows[3].id, now)
            await tx.record_delivery("msg_old", now - timedelta(days=31))
            await tx.record_delivery("msg_new", now)
        assert await prune_once(store, settings.relay, now) == (1, 1)
        async with store.transaction() as tx:
            left = await tx.list_outbox(status=None, conversation_id=None, after_id=0, limit=10)
            assert sorted(r.status for r in left) == ["dead", "delivered", "pending"]
            assert await tx.record_delivery("msg_old", now)  # forgotten, so new again
            assert not await tx.record_delivery("msg_new", now)
    finally:
        await engine.dispose()
