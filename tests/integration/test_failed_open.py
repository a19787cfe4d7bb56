"""When the agent side cannot be opened, the handoff fails and the bot is told why."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import ClientSession

from adapters.webhook import StandardWebhooksBot
from bridge.db.engine import create_engine, create_sessionmaker
from bridge.db.migrate import upgrade
from bridge.db.repo import Store
from bridge.errors import PlatformRejected, PlatformUnavailable
from bridge.models import CustomerMessageRequest, HandoffRequest
from bridge.ports.agent_side import (
    AgentSideAdapter,
    ConversationRef,
    ConversationSnapshot,
    OpenResult,
    OutboundMessage,
)
from bridge.ports.context import AdapterContext
from bridge.ports.http import HttpClient
from bridge.ports.links import JoinLinks
from bridge.relay.handlers import Deliveries, job_registry
from bridge.relay.worker import RelayWorker
from bridge.services.assignment import Assignment
from bridge.services.handoff import HandoffService
from bridge.services.inbound.service import InboundService
from bridge.services.routing_state import RoutingState
from bridge.services.timeouts import AcceptTimeouts, AcceptTimes
from tests.conftest import Database, make_settings
from tests.fakes import WEBHOOK_SECRET, handoff_body


class UnreachablePlatform(AgentSideAdapter):
    """A platform that refuses (or cannot take) every conversation."""

    platform = "unreachable"

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.opened = 0

    async def open_conversation(self, conversation: ConversationSnapshot) -> OpenResult:
        self.opened += 1
        raise self.error

    async def post_message(self, conversation: ConversationRef, message: OutboundMessage) -> None:
        raise AssertionError("no message may follow a failed open")

    async def close_conversation(self, conversation: ConversationRef, reason: str) -> None:
        raise AssertionError("nothing to close")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'failed.db'}")
    settings = make_settings(database, 0)
    engine = create_engine(settings.database)
    await upgrade(engine, settings.database)
    yield Store(create_sessionmaker(engine))
    await engine.dispose()


@pytest.mark.parametrize(
    ("error", "attempts"),
    [
        (PlatformRejected("400 bad group", status=400), 1),
        (PlatformUnavailable("503 down", status=503), 5),
    ],
)
async def test_dead_open_fails_the_handoff_and_frees_the_customer(
    store: Store, error: Exception, attempts: int
) -> None:
    settings = make_settings(Database("sqlite", "sqlite+aiosqlite:///unused.db"), 0)
    platform = UnreachablePlatform(error)
    adapters = {name: platform for name in settings.channels}
    links = JoinLinks("secret", "http://bridge.test", 3600)
    routing = RoutingState(settings, store)
    assignment = Assignment(store, routing)
    service = HandoffService(store, routing, assignment, "mysite", adapters, links)
    async with ClientSession() as session:
        http = HttpClient(session, timeout=1, quick_retries=0)
        context = AdapterContext(http, webhook_secret=WEBHOOK_SECRET)
        bots = {"webhook": StandardWebhooksBot.from_settings("webhook", {}, context)}
        inbound = InboundService(store, service, assignment, adapters, {})
        jobs = job_registry(
            Deliveries(store, adapters, bots, http),
            evaluate_routing=assignment.evaluate,
            replay_inbound=inbound.replay,
            move_on=service.live.move_on,
            accept_timeout=AcceptTimeouts(
                store, routing, AcceptTimes(), lambda: None, lambda: datetime.now(UTC)
            ).fire,
        )
        worker = RelayWorker(store, jobs, service, settings.relay)
        request = HandoffRequest.model_validate(handoff_body("http://127.0.0.1:9/cb"))
        conversation, created = await service.open(request)
        assert created
        await service.customer_message(conversation.id, CustomerMessageRequest(text="hello?"))

        for _ in range(attempts):
            async with store.transaction() as tx:
                # Make the backoff due at once; the schedule itself is unit-tested.
                rows = await tx.list_outbox(
                    status="pending", conversation_id=None, after_id=0, limit=10
                )
                for row in rows:
                    await tx.session.execute(
                        row.__table__.update()
                        .where(row.__table__.c.id == row.id)
                        .values(next_attempt_at=row.created_at)
                    )
            claimed = await worker.run_once()
            assert claimed >= 1
            await worker.drain()

    assert platform.opened == attempts
    failed = await service.get(conversation.id)
    assert failed.status == "failed"
    assert "could not be reached" in (failed.status_reason or "")
    assert service.join_url(failed) is None
    async with store.transaction() as tx:
        rows = await tx.list_outbox(
            status=None, conversation_id=conversation.id, after_id=0, limit=10
        )
    by_kind = [
        (row.kind, row.status, row.payload.get("type"))
        for row in rows
        if row.payload.get("type") != "queue.updated"
    ]
    # This platform cannot import history, so the two history messages were queued as
    # replays behind the open, then the customer's message; all are dropped with it.
    assert by_kind == [
        ("agent.open", "dead", None),
        ("agent.message", "cancelled", None),
        ("agent.message", "cancelled", None),
        ("agent.message", "cancelled", None),
        ("bot.event", "pending", "handoff.failed"),
    ]
    event = json.loads(rows[-1].payload["body"])["data"]
    assert (event["reason"], event["detail"]) == ("platform_error", failed.status_reason)
    # The customer is free for a new handoff.
    again, created = await service.open(request)
    assert created and again.id != conversation.id


def test_adapter_options_are_validated_per_channel() -> None:
    from pydantic import BaseModel

    from bridge.errors import ConfigError

    class Options(BaseModel):
        api_key: str

    class NeedsKey(UnreachablePlatform):
        options_model = Options

    with pytest.raises(ConfigError, match=r"channels\.mysite-en\.options\.api_key"):
        NeedsKey.from_settings("mysite-en", {}, AdapterContext(http=None))  # type: ignore[arg-type]
