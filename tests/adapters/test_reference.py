"""Reference Desk against its fake platform: both contract suites, then its own ways.

This is the test module docs/adapters.md holds up as the one a new platform needs: a
harness for each shared contract suite, and tests of what is the platform's own.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientSession

from adapters.reference import ReferenceAdapter, ReferenceBot
from bridge import errors
from bridge.models import CustomerMessageRequest, HandoffRequest
from bridge.ports.agent_side import ConversationRef, InboundRequest, OutboundMessage
from bridge.ports.context import AdapterContext
from bridge.ports.http import HttpClient
from tests.adapters.bot_contract import QUICK_RETRIES, BotHarness, BotSideContract
from tests.adapters.contract import SNAPSHOT, AgentSideContract, Harness
from tests.adapters.fake_reference import (
    API_KEY,
    BOT_EVENTS_PATH,
    TOKEN_HEADER,
    WEBHOOK_TOKEN,
    FakeReference,
)


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFERENCE_API_KEY", API_KEY)
    monkeypatch.setenv("REFERENCE_WEBHOOK_TOKEN", WEBHOOK_TOKEN)


def options(**extra: Any) -> dict[str, Any]:
    return {"api_key": "REFERENCE_API_KEY", "webhook_token": "REFERENCE_WEBHOOK_TOKEN", **extra}


def webhook(body: dict[str, Any], headers: dict[str, str]) -> InboundRequest:
    return InboundRequest("POST", headers, {}, json.dumps(body).encode())


@pytest.fixture
async def fake() -> AsyncIterator[FakeReference]:
    async with FakeReference() as platform:
        yield platform


@pytest.fixture
async def adapter(fake: FakeReference) -> AsyncIterator[ReferenceAdapter]:
    async with ClientSession() as session:
        # Two quick retries, as in production: a lost answer is retried inline.
        context = AdapterContext(HttpClient(session, timeout=5, quick_retries=2))
        yield ReferenceAdapter.from_settings("ref", options(base_url=fake.url), context)


# -- the shared contract ---------------------------------------------------------------------


@dataclasses.dataclass
class ReferenceHarness(Harness):
    """The adapter wired to a fake Reference Desk."""

    adapter: ReferenceAdapter  # type: ignore[misc]
    fake: FakeReference

    def sent_texts(self) -> list[str]:
        return self.fake.texts()

    def closed(self) -> bool:
        return any(c.closed_for for c in self.fake.conversations.values())

    def message_keys(self) -> list[str | None]:
        return self.fake.keys()

    def agent_message_webhook(
        self, external_ref: str, text: str, message_id: str
    ) -> InboundRequest:
        event = self.fake.agent_writes(external_ref, text, event_id=message_id)
        return webhook(event, self.fake.webhook_headers())

    def echo_webhook(self, external_ref: str, text: str) -> InboundRequest:
        return webhook(self.fake.echo(external_ref, text), self.fake.webhook_headers())

    def unauthenticated(self, request: InboundRequest) -> InboundRequest:
        return dataclasses.replace(request, headers=self.fake.webhook_headers("a-guessed-token"))


class TestReferenceContract(AgentSideContract):
    """The shared agent-side contract, against the fake Reference Desk."""

    @pytest.fixture
    def harness(self, adapter: ReferenceAdapter, fake: FakeReference) -> ReferenceHarness:
        return ReferenceHarness(adapter, fake)


# -- its own ways ----------------------------------------------------------------------------


def message(seq: int, text: str) -> OutboundMessage:
    return OutboundMessage(seq, "customer", text, "John Doe", datetime(2026, 11, 21, tzinfo=UTC))


async def opened(adapter: ReferenceAdapter) -> ConversationRef:
    result = await adapter.open_conversation(SNAPSHOT)
    return ConversationRef(SNAPSHOT.id, "ref", result.external_ref)


def test_a_bad_option_is_a_startup_error_naming_it(fake: FakeReference) -> None:
    context = AdapterContext(HttpClient(None, timeout=1, quick_retries=0))  # type: ignore[arg-type]
    with pytest.raises(errors.ConfigError, match=r"channels\.ref\.options\.base_url"):
        ReferenceAdapter.from_settings("ref", options(base_url="ftp://x"), context)
    with pytest.raises(errors.ConfigError, match=r"channels\.ref\.options\.api_keys"):
        ReferenceAdapter.from_settings("ref", options(api_keys="typo"), context)


async def test_the_open_carries_customer_metadata_and_a_join_link(
    adapter: ReferenceAdapter, fake: FakeReference
) -> None:
    result = await adapter.open_conversation(SNAPSHOT)
    [conversation] = fake.conversations.values()
    assert conversation.external_id == SNAPSHOT.id
    assert conversation.customer == {
        "id": "cust-1",
        "name": "John Doe",
        "email": SNAPSHOT.customer["email"],
    }
    assert conversation.metadata == SNAPSHOT.metadata
    assert result.join_url == fake.url_for(f"/desk/{conversation.id}")


async def test_an_open_retried_after_a_lost_answer_makes_one_conversation(
    adapter: ReferenceAdapter, fake: FakeReference
) -> None:
    fake.lost.lose_next()
    first = await adapter.open_conversation(SNAPSHOT)
    assert fake.lost.lost == 1 and fake.paths("POST") == ["/conversations"] * 2
    assert list(fake.conversations) == [first.external_ref]


async def test_a_post_retried_after_a_lost_answer_shows_once(
    adapter: ReferenceAdapter, fake: FakeReference
) -> None:
    ref = await opened(adapter)
    fake.lost.lose_next()
    await adapter.post_message(ref, message(3, "Any news?"))
    assert fake.lost.lost == 1
    assert fake.texts().count("Any news?") == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (503, errors.PlatformUnavailable),
        (429, errors.PlatformUnavailable),
        (400, errors.PlatformRejected),
    ],
)
async def test_failures_are_typed_for_the_relay(
    adapter: ReferenceAdapter, fake: FakeReference, status: int, error: type[Exception]
) -> None:
    ref = await opened(adapter)
    fake.script.extend([status] * 3)
    with pytest.raises(error) as raised:
        await adapter.post_message(ref, message(3, "Any news?"))
    assert str(raised.value) == f"HTTP {status}"
    if status == 400:
        assert not isinstance(raised.value, errors.PlatformUnavailable)


async def test_a_refused_key_is_an_auth_error_that_never_shows_the_key(
    adapter: ReferenceAdapter, fake: FakeReference
) -> None:
    fake.api_key = "rotated-on-the-platform"
    with pytest.raises(errors.PlatformAuthError) as raised:
        await adapter.open_conversation(SNAPSHOT)
    assert API_KEY not in str(raised.value)


async def test_availability_is_the_platforms_word(
    adapter: ReferenceAdapter, fake: FakeReference
) -> None:
    assert await adapter.check_availability() is True
    fake.online = False
    assert await adapter.check_availability() is False


async def test_a_webhook_needs_the_token_header(
    adapter: ReferenceAdapter, fake: FakeReference
) -> None:
    ref = await opened(adapter)
    assert ref.external_ref is not None
    event = fake.agent_writes(ref.external_ref, "Hi")
    for headers in ({}, {"X-Reference-Token": ""}, fake.webhook_headers(WEBHOOK_TOKEN + "x")):
        with pytest.raises(errors.InvalidSignature):
            adapter.verify_inbound(webhook(event, headers))
    adapter.verify_inbound(webhook(event, {"x-reference-token": WEBHOOK_TOKEN}))


async def test_joins_and_closes_become_events_and_other_types_none(
    adapter: ReferenceAdapter, fake: FakeReference
) -> None:
    ref = await opened(adapter)
    assert ref.external_ref is not None
    headers = fake.webhook_headers()
    [joined] = adapter.parse_inbound(webhook(fake.agent_joins(ref.external_ref), headers))
    assert (joined.kind, joined.agent_name, joined.conversation_id) == (
        "agent.joined",
        "Ana",
        SNAPSHOT.id,
    )
    [closed] = adapter.parse_inbound(webhook(fake.agent_closes(ref.external_ref), headers))
    assert closed.kind == "conversation.closed" and closed.external_ref == ref.external_ref
    typing = {"id": "evt-t", "type": "agent.typing", "conversation_id": ref.external_ref}
    [typed] = adapter.parse_inbound(webhook(typing, headers))
    assert (typed.kind, typed.external_ref) == ("agent.typing", ref.external_ref)
    other = {"id": "evt-x", "type": "agent.note", "conversation_id": ref.external_ref}
    assert adapter.parse_inbound(webhook(other, headers)) == []


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        {"id": "e", "type": "message.created", "conversation_id": "c", "message": {}},
        {"id": 7, "type": "agent.joined", "conversation_id": "c"},
    ],
    ids=["not-an-object", "no-text", "numeric-id"],
)
def test_a_webhook_not_of_the_documented_shape_is_malformed(
    adapter: ReferenceAdapter, body: Any
) -> None:
    with pytest.raises(errors.MalformedPayload):
        adapter.parse_inbound(webhook(body, {}))  # type: ignore[arg-type]


async def test_polling_reads_each_event_once(
    fake: FakeReference, adapter: ReferenceAdapter
) -> None:
    polling = ReferenceAdapter.from_settings(
        "ref", options(base_url=fake.url, poll_interval_seconds=5), adapter.context
    )
    assert adapter.poll_interval() is None and polling.poll_interval() == 5
    ref = await opened(polling)
    assert ref.external_ref is not None
    fake.agent_writes(ref.external_ref, "Hello from the desk")
    events, cursor = await polling.poll(None)
    assert [(e.kind, e.text) for e in events] == [("agent.message", "Hello from the desk")]
    assert await polling.poll(cursor) == ([], cursor)
    fake.agent_closes(ref.external_ref)
    fake.events.append({"id": "evt-bad", "type": "message.created", "message": {"text": 5}})
    events, _ = await polling.poll(cursor)
    # The unreadable event is skipped, so the cursor moves past it.
    assert [e.kind for e in events] == ["conversation.closed"]


# -- the bot side ----------------------------------------------------------------------------


@dataclasses.dataclass
class ReferenceBotHarness(BotHarness):
    """The bot adapter, delivering to the fake platform's events endpoint."""

    adapter: ReferenceBot  # type: ignore[assignment]
    fake: FakeReference
    target: str
    secrets: list[str]
    served: tuple[str, str] | None = ("POST", "messages")
    api_token: str | None = None

    def arrivals(self) -> Counter[str]:
        return self.fake.bot_arrivals()

    def script(self, *statuses: int) -> None:
        self.fake.script.extend(statuses)

    def request(
        self, path: str, method: str = "POST", *, right: bool = True
    ) -> tuple[str, InboundRequest]:
        # Its credential is a header, so the path is the call's alone.
        headers = {TOKEN_HEADER: WEBHOOK_TOKEN if right else "a-guessed-token"}
        return path, InboundRequest(method, headers, {}, b"{}")


@pytest.fixture
async def bot(fake: FakeReference) -> AsyncIterator[ReferenceBot]:
    options = {
        "api_key": "REFERENCE_API_KEY",
        "webhook_token": "REFERENCE_WEBHOOK_TOKEN",
        "events_url": fake.url_for(BOT_EVENTS_PATH),
    }
    async with ClientSession() as session:
        context = AdapterContext(HttpClient(session, timeout=5, quick_retries=QUICK_RETRIES))
        yield ReferenceBot.from_settings("refbot", options, context)


class TestReferenceBotContract(BotSideContract):
    """The shared bot-side contract, against the fake platform's events endpoint."""

    @pytest.fixture
    def harness(self, bot: ReferenceBot, fake: FakeReference) -> ReferenceBotHarness:
        target = fake.url_for(BOT_EVENTS_PATH)
        return ReferenceBotHarness(bot, fake, target, [API_KEY, WEBHOOK_TOKEN])


@dataclasses.dataclass
class Row:
    id: str
    status: str = "pending"


@dataclasses.dataclass
class Stored:
    seq: int


@dataclasses.dataclass
class Gateway:
    """The calls the reference bot makes of the bridge, kept in memory."""

    opened: list[HandoffRequest] = dataclasses.field(default_factory=list)
    messages: list[tuple[str, CustomerMessageRequest]] = dataclasses.field(default_factory=list)

    async def open(self, request: HandoffRequest) -> tuple[Row, bool]:
        found = [r for r in self.opened if r.bot == request.bot]
        self.opened.append(request)
        return Row(f"conv-{len(self.opened)}"), not found

    async def find_by_bot_conversation(self, platform: str, conversation_id: str) -> Row | None:
        known = any(r.bot.platform == platform for r in self.opened)
        return Row("conv-1") if known and conversation_id == "bot-conv-1" else None

    async def customer_message(
        self, conversation_id: str, request: CustomerMessageRequest
    ) -> tuple[Stored, bool]:
        self.messages.append((conversation_id, request))
        return Stored(len(self.messages)), True


def bot_call(body: dict[str, Any]) -> InboundRequest:
    return InboundRequest("POST", {TOKEN_HEADER: WEBHOOK_TOKEN}, {}, json.dumps(body).encode())


async def test_a_handoff_opens_in_this_bots_name_with_its_events_url(
    bot: ReferenceBot, fake: FakeReference
) -> None:
    gateway = Gateway()
    handoff = {"conversation_id": "bot-conv-1", "customer": {"id": "cust-1"}, "region": "es"}
    reply = await bot.handle_request("handoffs", bot_call(handoff), gateway)  # type: ignore[arg-type]
    assert (reply.status, reply.body["id"]) == (201, "conv-1")
    [opened] = gateway.opened
    assert (opened.bot.platform, opened.bot.conversation_id) == ("refbot", "bot-conv-1")
    assert str(opened.callback_url) == fake.url_for(BOT_EVENTS_PATH)
    again = await bot.handle_request("handoffs", bot_call(handoff), gateway)  # type: ignore[arg-type]
    assert again.status == 200


async def test_a_customer_message_reaches_the_handed_off_conversation(bot: ReferenceBot) -> None:
    gateway = Gateway()
    opening = {"conversation_id": "bot-conv-1", "customer": {"id": "cust-1"}}
    await bot.handle_request("handoffs", bot_call(opening), gateway)  # type: ignore[arg-type]
    sent = {"conversation_id": "bot-conv-1", "text": "Any news?", "id": "m-1"}
    reply = await bot.handle_request("messages", bot_call(sent), gateway)  # type: ignore[arg-type]
    assert reply.status == 202
    assert [(c, m.text, m.id) for c, m in gateway.messages] == [("conv-1", "Any news?", "m-1")]
    with pytest.raises(errors.NotFound) as unknown:
        stranger = {**sent, "conversation_id": "bot-conv-9"}
        await bot.handle_request("messages", bot_call(stranger), gateway)  # type: ignore[arg-type]
    assert [f.field for f in unknown.value.fields] == ["conversation_id"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("handoffs", {"customer": {"id": "c"}}, "conversation_id"),
        ("handoffs", {"conversation_id": "b", "customer": {}}, "customer.id"),
        ("messages", {"conversation_id": "b"}, "text"),
    ],
)
async def test_a_bad_call_is_a_422_naming_the_field(
    bot: ReferenceBot, path: str, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(errors.InvalidInput) as raised:
        await bot.handle_request(path, bot_call(body), Gateway())  # type: ignore[arg-type]
    assert field in [f.field for f in raised.value.fields]


async def test_an_event_reaches_the_bot_with_its_id(bot: ReferenceBot, fake: FakeReference) -> None:
    body = {"type": "agent.joined", "timestamp": "t", "data": {"agent": {"name": "Ana"}}}
    await bot.deliver_event(fake.url_for(BOT_EVENTS_PATH), "msg_1", json.dumps(body))
    assert fake.bot_events == [{"id": "msg_1", **body}]
