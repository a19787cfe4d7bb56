"""The VivoChat adapter: options, the two hooks' payloads and replies, and the contract."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses

from adapters.registry import AGENT_SIDE, build_agent_adapters, build_bot_adapters
from adapters.vivochat import VivoChatAdapter, render_transcript
from bridge.errors import ConfigError, InvalidSignature, MalformedPayload
from bridge.ports.agent_side import (
    ConversationInfo,
    ConversationRef,
    InboundEvent,
    InboundRequest,
    OutboundMessage,
)
from bridge.ports.context import AdapterContext
from bridge.ports.http import HttpClient
from bridge.settings import load_settings
from tests.adapters.contract import HISTORY, SNAPSHOT, AgentSideContract, Harness
from tests.adapters.fake_vivochat import Delivery, FakeVivoChat, chat_accepted, fixture

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "examples" / "vivochat.yaml"
TOKEN_ENV = "VIVOCHAT_TEST_WEBHOOK_TOKEN"
TOKEN = "vc-hook-3f9a1c7e52b84d06"
CHANNEL_ID = "1CafijNcdgYtDhS3vg9b1V"
CUSTOMER = "cust-7f3c9a1e5b2d4c68"
TRANSCRIPT_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d UTC\] [^:]+: (.*)$")


@pytest.fixture(autouse=True)
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with aiohttp.ClientSession() as session:
        yield HttpClient(session, timeout=5, quick_retries=2)


def make_adapter(http: HttpClient, **options: Any) -> VivoChatAdapter:
    raw = {"webhook_token": TOKEN_ENV, "channel_id": CHANNEL_ID, **options}
    return VivoChatAdapter.from_settings("mysite-es", raw, AdapterContext(http))


def webhook(body: Any, token: str | None = TOKEN) -> InboundRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboundRequest("POST", {"Content-Type": "application/json"}, {}, raw, token)


def info(
    history: tuple[OutboundMessage, ...] = HISTORY, customer_id: str = CUSTOMER
) -> ConversationInfo:
    return ConversationInfo(
        id=SNAPSHOT.id,
        status="active",
        channel="mysite-es",
        external_ref=customer_id,
        customer={**SNAPSHOT.customer, "id": customer_id},
        metadata=dict(SNAPSHOT.metadata),
        history=history,
    )


class Reader:
    """A ConversationReader over a fixed set of active conversations."""

    def __init__(self, *conversations: ConversationInfo) -> None:
        self.conversations = list(conversations)
        self.asked: list[tuple[str, str | None, str | None]] = []

    async def find_active(
        self, channel: str, *, external_ref: str | None = None, customer_id: str | None = None
    ) -> ConversationInfo | None:
        self.asked.append((channel, external_ref, customer_id))
        return next(
            (c for c in self.conversations if customer_id and c.customer["id"] == customer_id),
            None,
        )


def transcript_texts(reply: dict[str, Any], title: str = "Bot conversation") -> list[str]:
    """The message texts of the transcript entry in a chat_accepted reply."""
    texts: list[str] = []
    for entry in reply.get("customData", []):
        if entry["title"] == title:
            for line in entry["content"].splitlines():
                match = TRANSCRIPT_LINE.match(line)
                if match:
                    texts.append(match.group(1))
    return texts


# -- options --------------------------------------------------------------------------------


def test_registered_as_vivochat() -> None:
    assert AGENT_SIDE["vivochat"] is VivoChatAdapter


async def test_missing_channel_id_is_named(http: HttpClient) -> None:
    with pytest.raises(ConfigError, match=r"channels\.mysite-es\.options\.channel_id: Field"):
        VivoChatAdapter.from_settings(
            "mysite-es", {"webhook_token": TOKEN_ENV}, AdapterContext(http)
        )


async def test_unset_token_variable_is_named(
    http: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(ConfigError, match=rf"options\.webhook_token: .*{TOKEN_ENV} is not set"):
        make_adapter(http)


async def test_short_token_is_refused(http: HttpClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "short")
    with pytest.raises(ConfigError, match=r"options\.webhook_token: .*at least 16"):
        make_adapter(http)


async def test_unknown_option_is_named(http: HttpClient) -> None:
    with pytest.raises(ConfigError, match=r"options\.api_url: Extra inputs are not permitted"):
        make_adapter(http, api_url="https://api.vivochat.ai")


async def test_transcript_limit_is_bounded(http: HttpClient) -> None:
    with pytest.raises(ConfigError, match=r"options\.transcript_max_chars"):
        make_adapter(http, transcript_max_chars=10)


# -- outbound: nothing to call --------------------------------------------------------------


async def test_open_returns_the_customer_id_and_calls_nothing(http: HttpClient) -> None:
    adapter = make_adapter(http)
    with aioresponses() as mocked:
        opened = await adapter.open_conversation(
            dataclasses.replace(SNAPSHOT, customer={**SNAPSHOT.customer, "id": CUSTOMER})
        )
        ref = ConversationRef(SNAPSHOT.id, "mysite-es", opened.external_ref)
        await adapter.post_message(ref, HISTORY[0])
        await adapter.close_conversation(ref, "closed by the bot")
        assert mocked.requests == {}
    assert (opened.external_ref, opened.join_url) == (CUSTOMER, None)
    assert adapter.join_url(ref) is None
    assert await adapter.check_availability() is None


async def test_close_and_message_say_why_nothing_happened(
    http: HttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = make_adapter(http)
    ref = ConversationRef(SNAPSHOT.id, "mysite-es", CUSTOMER)
    with caplog.at_level(logging.INFO, logger="adapters.vivochat"):
        await adapter.post_message(ref, HISTORY[0])
        await adapter.close_conversation(ref, "closed by the bot")
    assert [r.message for r in caplog.records] == [
        "vivochat.message_not_relayed",
        "vivochat.close_not_supported",
    ]


def test_capabilities_tell_the_bridge_not_to_relay() -> None:
    caps = VivoChatAdapter.capabilities
    assert (caps.history, caps.messages, caps.join_url, caps.inbound) == (True, False, False, True)


# -- inbound: verification and parsing ------------------------------------------------------


async def test_url_token_is_checked(http: HttpClient) -> None:
    adapter = make_adapter(http)
    body = fixture("chat_accepted")
    adapter.verify_inbound(webhook(body))
    for wrong in ("vc-hook-3f9a1c7e52b84d07", "", None):
        with pytest.raises(InvalidSignature):
            adapter.verify_inbound(webhook(body, token=wrong))


async def test_chat_accepted_is_an_agent_join_with_a_stable_id(http: HttpClient) -> None:
    adapter = make_adapter(http)
    request = webhook(fixture("chat_accepted"))
    events = adapter.parse_inbound(request)
    assert events == [
        InboundEvent(
            kind="agent.joined",
            event_id="2c9c6f9e-2f47-4b85-9a59-3a59e2d87f9d",
            customer_id=CUSTOMER,
            agent_name="VivoChat operator",
        )
    ]
    assert adapter.parse_inbound(request) == events


async def test_anonymous_chat_and_token_check_are_no_events(http: HttpClient) -> None:
    adapter = make_adapter(http)
    assert adapter.parse_inbound(webhook(fixture("chat_accepted_anonymous"))) == []
    assert adapter.parse_inbound(webhook({**fixture("chat_accepted"), "userToken": " "})) == []
    assert adapter.parse_inbound(webhook(fixture("client_check_token"))) == []


async def test_chat_on_another_channel_is_logged_and_still_applied(
    http: HttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = make_adapter(http)
    body = chat_accepted(CUSTOMER, "5f0e8a1c-0000-4000-8000-00000000000a", "OtherChannel")
    with caplog.at_level(logging.WARNING, logger="adapters.vivochat"):
        events = adapter.parse_inbound(webhook(body))
    assert [e.customer_id for e in events] == [CUSTOMER]
    assert [r.message for r in caplog.records] == ["vivochat.channel_mismatch"]
    # The userToken is the customer's credential: it never reaches the logs.
    assert all(CUSTOMER not in str(vars(record)) for record in caplog.records)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not valid JSON"),
        ([{"type": "chat_accepted"}], "must be a JSON object"),
        ({"type": "chat_finished", "chatId": "x"}, "unknown VivoChat event 'chat_finished'"),
        ({"chatId": "x"}, "unknown VivoChat event None"),
        ({**fixture("chat_accepted"), "chatId": None}, "chatId"),
        ({k: v for k, v in fixture("chat_accepted").items() if k != "channel"}, "channel"),
        ({**fixture("chat_accepted"), "channel": {"type": "widget"}}, "channel.id"),
    ],
)
async def test_payloads_not_of_the_documented_shape(
    http: HttpClient, body: Any, problem: str
) -> None:
    adapter = make_adapter(http)
    with pytest.raises(MalformedPayload, match=re.escape(problem)):
        adapter.parse_inbound(webhook(body))


# -- inbound: replies -------------------------------------------------------------------------


async def test_chat_accepted_reply_carries_metadata_history_and_contacts(
    http: HttpClient,
) -> None:
    adapter = make_adapter(http)
    request = webhook(fixture("chat_accepted"))
    reader = Reader(info())
    reply = await adapter.reply_inbound(request, adapter.parse_inbound(request), reader)
    assert reply.status == 200
    assert reply.body == {
        "result": "ok",
        "customData": [
            {"title": "plan", "content": "vip"},
            {"title": "order", "content": "42"},
            {"title": "Labels", "content": "vip"},
            {
                "title": "Bot conversation",
                "content": "[2026-11-21 10:00 UTC] Customer (John Doe): Where is my order?\n"
                "[2026-11-21 10:00 UTC] Bot: Let me get a person.",
            },
            {"title": "Handoff ID", "content": SNAPSHOT.id},
        ],
        "contactInfo": {"name": "John Doe", "email": "john@example.com"},
    }
    assert reader.asked == [("mysite-es", None, CUSTOMER)]


async def test_titles_are_options(http: HttpClient) -> None:
    adapter = make_adapter(
        http, transcript_title="Conversación", labels_title="Etiquetas", reference_title="Ref"
    )
    reply = await adapter.reply_inbound(webhook(fixture("chat_accepted")), [], Reader(info()))
    titles = [entry["title"] for entry in reply.body["customData"]]
    assert titles == ["plan", "order", "Etiquetas", "Conversación", "Ref"]


async def test_chat_accepted_for_nobody_known_is_a_plain_ok(http: HttpClient) -> None:
    adapter = make_adapter(http)
    for name in ("chat_accepted", "chat_accepted_anonymous"):
        reply = await adapter.reply_inbound(webhook(fixture(name)), [], Reader())
        assert (reply.status, reply.body) == (200, {"result": "ok"})


async def test_token_check_answers_known_and_refuses_unknown(http: HttpClient) -> None:
    adapter = make_adapter(http)
    request = webhook(fixture("client_check_token"))
    known = await adapter.reply_inbound(request, [], Reader(info()))
    assert known.body == {
        "result": "ok",
        "clientId": CUSTOMER,
        "contactInfo": {"name": "John Doe", "email": "john@example.com"},
    }
    unknown = await adapter.reply_inbound(request, [], Reader(info(customer_id="someone-else")))
    assert unknown.body["result"] != "ok"
    assert "clientId" not in unknown.body and "contactInfo" not in unknown.body


async def test_customer_without_contacts_gets_no_contact_info(http: HttpClient) -> None:
    adapter = make_adapter(http)
    bare = dataclasses.replace(info(history=()), customer={"id": CUSTOMER, "labels": []})
    reply = await adapter.reply_inbound(webhook(fixture("chat_accepted")), [], Reader(bare))
    assert "contactInfo" not in reply.body
    assert [e["title"] for e in reply.body["customData"]] == ["plan", "order", "Handoff ID"]


def test_long_transcript_keeps_the_newest_messages() -> None:
    start = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    history = tuple(
        OutboundMessage(i, "customer", f"message {i:03d} " + "x" * 80, None, start)
        for i in range(1, 201)
    )
    text = render_transcript(history, 2000)
    lines = text.splitlines()
    assert len(text) <= 2000
    assert lines[0].startswith("… ") and "earlier message(s) not shown" in lines[0]
    assert lines[-1].startswith("[2026-11-21 10:00 UTC] Customer: message 200 ")
    omitted = int(lines[0].split()[1])
    assert omitted + len(lines) - 1 == 200


def test_transcript_keeps_multiline_messages_readable() -> None:
    when = datetime(2026, 11, 21, 12, 30, tzinfo=UTC) + timedelta(hours=1)
    message = OutboundMessage(1, "agent", "line one\nline two", "Ana", when)
    assert render_transcript((message,), 8000) == (
        "[2026-11-21 13:30 UTC] Agent (Ana): line one\n    line two"
    )


def test_one_huge_message_is_cut_not_dropped() -> None:
    when = datetime(2026, 11, 21, tzinfo=UTC)
    text = render_transcript((OutboundMessage(1, "bot", "y" * 5000, None, when),), 1000)
    assert text.startswith("[2026-11-21 00:00 UTC] Bot: yyy") and text.endswith("…")
    assert len(text) <= 1000


# -- the example configuration --------------------------------------------------------------


async def test_example_config_loads_and_builds(
    http: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIVOCHAT_WEBHOOK_TOKEN", "example-secret-0123456789abcdef")
    settings = load_settings(EXAMPLE)
    context = AdapterContext(http)
    adapters = build_agent_adapters(settings, context)
    assert build_bot_adapters(settings, context)
    vivochat = {name: a for name, a in adapters.items() if isinstance(a, VivoChatAdapter)}
    assert vivochat and any(a.platform == "console" for a in adapters.values())
    ids = [a.options.channel_id for a in vivochat.values()]
    assert len(set(ids)) == len(ids), "each bridge channel stands for its own VivoChat channel"
    regions = settings.channels[settings.default_channel or ""].regions
    assert any(target in vivochat for target in regions.values())


# -- the shared contract, against the fake VivoChat -----------------------------------------


class AdapterEndpoint:
    """Stands in for the bridge's `/webhooks/{channel}/{token}`: verify, parse, reply."""

    def __init__(self, adapter: VivoChatAdapter, reader: Reader) -> None:
        self.adapter = adapter
        self.reader = reader
        self.events: list[InboundEvent] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        token = request.match_info["token"]
        inbound = InboundRequest(request.method, request.headers, request.query, body, token)
        try:
            self.adapter.verify_inbound(inbound)
            events = self.adapter.parse_inbound(inbound)
        except (InvalidSignature, MalformedPayload) as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        self.events.extend(events)
        reply = await self.adapter.reply_inbound(inbound, events, self.reader)
        return web.json_response(reply.body, status=reply.status)


class VivoChatHarness(Harness):
    """The adapter behind a stand-in webhook route, and the fake VivoChat calling it."""

    def __init__(self, adapter: VivoChatAdapter, fake: FakeVivoChat, reader: Reader) -> None:
        self.adapter = adapter
        self.fake = fake
        self.reader = reader

    async def accept(self, ref: ConversationRef) -> Delivery:
        """The page runs the widget with the ref as userToken; an operator accepts."""
        assert ref.external_ref is not None
        self.reader.conversations.append(info(customer_id=ref.external_ref))
        dialog = await self.fake.run_widget(ref.external_ref, SNAPSHOT.region)
        return await self.fake.accept(dialog["chatId"])

    def sent_texts(self) -> list[str]:
        """History reaches VivoChat in the chat_accepted replies' transcript."""
        return [
            t for reply in self.fake.replies_of("chat_accepted") for t in transcript_texts(reply)
        ]

    def closed(self) -> bool:
        """VivoChat has no close API: the platform never sees a close from the bridge."""
        return False

    def message_keys(self) -> None:
        """The bridge posts no messages to VivoChat (the customer talks in its widget)."""
        return None

    def agent_message_webhook(
        self, external_ref: str, text: str, message_id: str
    ) -> InboundRequest:
        """VivoChat sends no agent messages; its one agent webhook is chat_accepted."""
        return webhook(chat_accepted(external_ref, message_id, CHANNEL_ID))

    def echo_webhook(self, external_ref: str, text: str) -> InboundRequest:
        """There are no message webhooks to echo; the closest is a chat_accepted."""
        return webhook(chat_accepted(external_ref, "echo", CHANNEL_ID))

    def unauthenticated(self, request: InboundRequest) -> InboundRequest:
        return dataclasses.replace(request, path_token="not-the-" + TOKEN)


@pytest.fixture
async def fake_vivochat() -> AsyncIterator[FakeVivoChat]:
    async with FakeVivoChat(
        widget_id="w-test", main_channel_id="MainChannel", regions={"en": CHANNEL_ID}
    ) as fake:
        yield fake


class TestVivoChatContract(AgentSideContract):
    """The shared contract; history is checked where VivoChat receives it (the accept reply)."""

    @pytest.fixture
    async def harness(
        self, http: HttpClient, fake_vivochat: FakeVivoChat
    ) -> AsyncIterator[VivoChatHarness]:
        reader = Reader()
        adapter = make_adapter(http)
        endpoint = AdapterEndpoint(adapter, reader)
        app = web.Application()
        app.router.add_post("/webhooks/{channel}/{token}", endpoint.handle)
        server = TestServer(app, port=0)
        await server.start_server()
        hook = str(server.make_url(f"/webhooks/mysite-es/{TOKEN}"))
        fake_vivochat.webhooks[CHANNEL_ID] = hook
        fake_vivochat.verification_url = hook
        try:
            yield VivoChatHarness(adapter, fake_vivochat, reader)
        finally:
            await server.close()

    async def _open(self, harness: Harness) -> ConversationRef:
        # Opening on VivoChat completes when an operator accepts the widget's dialog:
        # that is when the platform receives the history.
        ref = await super()._open(harness)
        assert isinstance(harness, VivoChatHarness)
        delivery = await harness.accept(ref)
        assert delivery.status == 200, delivery
        return ref

    async def test_close(self, harness: Harness) -> None:
        """Overrides the shared check: VivoChat has no close API, so close must be harmless.

        It must neither fail (a failure would be retried for a call that cannot exist)
        nor call anything; the operator ends the dialog in VivoChat.
        """
        assert isinstance(harness, VivoChatHarness)
        ref = await self._open(harness)
        before = len(harness.fake.deliveries)
        with aioresponses() as mocked:
            await harness.adapter.close_conversation(ref, "closed by the bot")
            assert mocked.requests == {}
        assert len(harness.fake.deliveries) == before and harness.fake.unexpected == []

    async def test_the_widget_is_verified_and_routed(self, harness: Harness) -> None:
        assert isinstance(harness, VivoChatHarness)
        await self._open(harness)
        check, accepted = harness.fake.deliveries
        assert check.payload == {"type": "client_check_token", "userToken": "cust-1"}
        assert (check.reply["result"], check.reply["clientId"]) == ("ok", "cust-1")
        assert accepted.payload["channel"] == {"type": "widget", "id": CHANNEL_ID}
        assert harness.fake.unexpected == []


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (ROOT / "tests/adapters/fixtures/vivochat").glob("*.json"))
)
async def test_every_fixture_parses(http: HttpClient, name: str) -> None:
    adapter = make_adapter(http)
    request = webhook(fixture(name))
    adapter.verify_inbound(request)
    adapter.parse_inbound(request)
