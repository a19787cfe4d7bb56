"""Typed outbox jobs: each survives its row, keeps the stored form of earlier versions, and
has exactly one handler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from bridge.db.engine import create_engine, create_sessionmaker
from bridge.db.repo import Store
from bridge.db.tables import MessageRow, OutboxRow
from bridge.domain.status import Status
from bridge.errors import PlatformRejected
from bridge.ports.http import HttpClient
from bridge.relay.delivery import DeliveryResult
from bridge.relay.handlers import Deliveries, job_registry
from bridge.relay.jobs import (
    AcceptTimeout,
    BotEvent,
    CloseConversation,
    DeliveryStatus,
    EvaluateRouting,
    FallbackTimer,
    Job,
    Message,
    OpenConversation,
    PostMessage,
    ReplayInbound,
    SubscriberEvent,
    WithdrawConversation,
    job_types,
)
from bridge.relay.registry import JobRegistry
from bridge.views import message_view
from tests.conftest import Database, make_settings

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
SENT = "2026-11-21T09:58:00+00:00"
MESSAGE = Message(3, "customer", "hello", "Eve", "m-1", datetime.fromisoformat(SENT))
CID = "0b6d5a3e-1c1f-4d0a-9a57-5d3c8f2f0e11"

EXAMPLES: list[Job] = [
    OpenConversation(
        conversation_id=CID,
        channel="mysite-en",
        main_channel="mysite",
        region="GB",
        customer={"id": "c-1", "name": "Eve"},
        metadata={"plan": "gold"},
        settings={"language": "en"},
        history=(MESSAGE,),
    ),
    PostMessage(CID, "mysite-en", MESSAGE),
    CloseConversation(CID, "mysite-en", "closed by the bot", Status.CLOSED),
    BotEvent.about(CID, "http://bot/cb", "agent.joined", {"agent": "Ana"}, NOW, "tovie"),
    BotEvent.for_bot_conversation("jivo", "chat-9", "jivo:", "customer.message", {}, NOW),
    SubscriberEvent("sub-1", CID, "handoff.routed", '{"type":"handoff.routed"}'),
    EvaluateRouting(CID),
    ReplayInbound(CID),
    WithdrawConversation(CID, "mysite-en", "platform-42", "moved to channel 'mysite-es'"),
    FallbackTimer(CID, "mysite-en"),
    AcceptTimeout(CID, 3),
    AcceptTimeout(CID, 3, away=True),
]


@pytest.mark.parametrize("job", EXAMPLES, ids=lambda job: type(job).__name__)
def test_each_job_comes_back_from_its_row_unchanged(job: Job) -> None:
    row = job.to_row(NOW)
    assert (row.kind, row.status, row.attempts) == (job.kind, "pending", 0)
    assert type(job).from_row(row) == job


def test_the_examples_cover_every_job_type() -> None:
    assert {type(job) for job in EXAMPLES} == set(job_types())


def test_kind_strings_are_those_rows_have_always_had() -> None:
    # Rows already in a database are found by these strings: they never change.
    assert {job_type.__name__: job_type.kind for job_type in job_types()} == {
        "OpenConversation": "agent.open",
        "PostMessage": "agent.message",
        "CloseConversation": "agent.close",
        "BotEvent": "bot.event",
        "SubscriberEvent": "subscription.event",
        "EvaluateRouting": "routing.evaluate",
        "ReplayInbound": "inbound.replay",
        "WithdrawConversation": "agent.withdraw",
        "FallbackTimer": "routing.fallback",
        "AcceptTimeout": "routing.accept_timeout",
    }


def _stored(job: Job, due: datetime = NOW) -> tuple[str, str | None, str, dict[str, Any], str]:
    row = job.to_row(NOW, due=due)
    return row.lane, row.conversation_id, row.target, row.payload, row.idempotency_key[:4]


STORED_MESSAGE = {
    "seq": 3,
    "role": "customer",
    "text": "hello",
    "author": "Eve",
    "id": "m-1",
    "sent_at": SENT,
}


def test_rows_are_written_as_earlier_versions_wrote_them() -> None:
    opening, post, close, bot, relayed, subscriber, evaluate, replay = EXAMPLES[:8]
    assert _stored(opening) == (
        f"{CID}:agent",
        CID,
        "mysite-en",
        {
            "conversation": {
                "id": CID,
                "channel": "mysite-en",
                "main_channel": "mysite",
                "region": "GB",
                "customer": {"id": "c-1", "name": "Eve"},
                "metadata": {"plan": "gold"},
                "settings": {"language": "en"},
            },
            "history": [STORED_MESSAGE],
        },
        "msg_",
    )
    assert _stored(post) == (f"{CID}:agent", CID, "mysite-en", {"message": STORED_MESSAGE}, "msg_")
    assert _stored(close) == (
        f"{CID}:agent",
        CID,
        "mysite-en",
        {"reason": "closed by the bot", "status": "closed"},
        "msg_",
    )
    body = '{"type":"agent.joined","timestamp":"2026-11-21T10:00:00+00:00","data":{"agent":"Ana"}}'
    assert _stored(bot) == (
        f"{CID}:bot",
        CID,
        "http://bot/cb",
        {"type": "agent.joined", "body": body, "bot": "tovie"},
        "msg_",
    )
    lane, conversation, target, payload, _ = _stored(relayed)
    assert (lane[:4], len(lane), conversation, target) == ("bot:", 52, None, "jivo:")
    assert payload["bot"] == "jivo"
    assert _stored(subscriber) == (
        f"{CID}:s:sub-1",
        CID,
        "sub-1",
        {"type": "handoff.routed", "body": '{"type":"handoff.routed"}'},
        "msg_",
    )
    later = NOW + timedelta(minutes=5)
    assert _stored(evaluate, later) == (f"{CID}:routing", CID, CID, {}, "job_")
    assert evaluate.to_row(NOW, due=later).next_attempt_at == later
    assert _stored(replay) == (f"{CID}:inbound", CID, CID, {}, "job_")


def _old_row(kind: str, payload: dict[str, Any], target: str = "mysite-en") -> OutboxRow:
    return OutboxRow(
        lane=f"{CID}:agent",
        conversation_id=CID,
        kind=kind,
        target=target,
        idempotency_key="msg_0",
        payload=payload,
    )


def test_rows_of_earlier_versions_read_into_their_jobs() -> None:
    # Written before bot-side adapters existed: no "bot", delivered by the webhook bot.
    bot = BotEvent.from_row(_old_row("bot.event", {"type": "t", "body": "{}"}, "http://bot/cb"))
    assert (bot.callback_url, bot.event_type, bot.body, bot.bot) == (
        "http://bot/cb",
        "t",
        "{}",
        None,
    )
    # An open without history, a message without an author or id.
    message = {"seq": 1, "role": "bot", "text": "hi", "sent_at": SENT}
    conversation = {
        "id": CID,
        "channel": "mysite-en",
        "main_channel": "mysite",
        "customer": {},
        "metadata": {},
        "settings": {},
    }
    opening = OpenConversation.from_row(_old_row("agent.open", {"conversation": conversation}))
    assert (opening.region, opening.history) == (None, ())
    post = PostMessage.from_row(_old_row("agent.message", {"message": message}))
    assert (post.message.author, post.message.external_id, post.message.text) == (None, None, "hi")
    close = CloseConversation.from_row(_old_row("agent.close", {"status": "released"}))
    assert (close.reason, close.status) == (None, Status.RELEASED)


def test_a_stored_message_is_the_transcript_as_the_api_shows_it() -> None:
    row = MessageRow(
        conversation_id=CID,
        seq=7,
        role="agent",
        text="On it",
        author="Ana",
        external_id="a-7",
        sent_at=datetime.fromisoformat(SENT),
    )
    assert Message.of(row).to_json() == message_view(row)
    outbound = Message.of(row).outbound()
    assert (outbound.seq, outbound.text, outbound.sent_at) == (7, "On it", row.sent_at)


def test_outbox_statuses_are_the_stored_strings() -> None:
    assert [status.value for status in DeliveryStatus] == [
        "pending",
        "delivered",
        "dead",
        "cancelled",
    ]


# -- the registry -----------------------------------------------------------------------


@pytest.fixture
async def deliveries(tmp_path: Path) -> AsyncIterator[Deliveries]:
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    engine = create_engine(make_settings(database, 0).database)
    async with ClientSession() as session:
        http = HttpClient(session, timeout=1, quick_retries=0)
        yield Deliveries(Store(create_sessionmaker(engine)), {}, {}, http)
    await engine.dispose()


async def _nothing(conversation_id: str) -> None:
    return None


async def _stay(conversation_id: str, channel: str) -> None:
    return None


async def _timed_out(timer: AcceptTimeout) -> None:
    return None


def test_an_accept_timer_has_a_lane_per_round_and_kind() -> None:
    """A later round's timer, or an away check, never waits behind an earlier timer."""
    timer, away = AcceptTimeout(CID, 3), AcceptTimeout(CID, 3, away=True)
    assert _stored(timer) == (f"{CID}:accept:3", CID, CID, {"round": 3, "away": False}, "job_")
    assert _stored(away) == (f"{CID}:away:3", CID, CID, {"round": 3, "away": True}, "job_")


async def test_the_registry_has_a_handler_for_every_job_type(deliveries: Deliveries) -> None:
    registry = job_registry(
        deliveries,
        evaluate_routing=_nothing,
        replay_inbound=_nothing,
        move_on=_stay,
        accept_timeout=_timed_out,
    )
    assert registry.missing() == []


def test_a_job_type_without_a_handler_stops_the_start() -> None:
    registry = JobRegistry()
    for job_type in job_types():
        if job_type is not ReplayInbound:
            registry.register(job_type, _Recorder([]))
    assert registry.missing() == [ReplayInbound]
    with pytest.raises(TypeError, match="no handler for ReplayInbound"):
        registry.require_every_job()


class _Recorder:
    """A handler that keeps what it was given."""

    def __init__(self, seen: list[tuple[Job, str]]) -> None:
        self.seen = seen

    async def __call__(self, job: Job, key: str) -> DeliveryResult | None:
        self.seen.append((job, key))
        return DeliveryResult(external_ref="ref-1") if isinstance(job, OpenConversation) else None


async def test_the_registry_hands_each_row_to_its_handler_as_its_job() -> None:
    seen: list[tuple[Job, str]] = []
    registry = JobRegistry()
    for job_type in job_types():
        registry.register(job_type, _Recorder(seen))
    rows = [job.to_row(NOW) for job in EXAMPLES]
    results = [await registry.deliver(row) for row in rows]
    assert seen == [(job, row.idempotency_key) for job, row in zip(EXAMPLES, rows, strict=True)]
    assert results[0] == DeliveryResult(external_ref="ref-1")
    assert set(results[1:]) == {DeliveryResult()}


async def test_unknown_kinds_and_unreadable_rows_are_refused_not_retried() -> None:
    registry = JobRegistry()
    for job_type in job_types():
        registry.register(job_type, _Recorder([]))
    refused = [
        (_old_row("agent.typing", {}), "unknown delivery kind 'agent.typing'"),
        (_old_row("agent.message", {}), "the agent.message payload has no 'message'"),
        (
            _old_row("agent.close", {"status": "archived"}),
            "the agent.close payload cannot be read (ValueError)",
        ),
    ]
    for row, why in refused:
        with pytest.raises(PlatformRejected) as caught:
            await registry.deliver(row)
        # Dead at once: no later attempt can read a kind or a payload this one cannot.
        assert (str(caught.value), caught.value.retryable) == (why, False)
