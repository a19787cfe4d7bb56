"""Tovie (bot side): the Operator API the bridge serves, and the events it posts back.

The Operator API is exercised against an in-memory gateway (the calls HandoffService
offers a bot-side adapter); events go out through the real HttpClient, with aioresponses
answering as Tovie's webhook. Payloads are the documented shapes, kept under fixtures/.
The whole flow through the real app is in tests/integration/test_platform_tovie.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses

from adapters.registry import build_agent_adapters, build_bot_adapters
from adapters.tovie import TovieBot
from bridge.errors import (
    ConfigError,
    Conflict,
    FieldProblem,
    InvalidInput,
    InvalidSignature,
    MalformedPayload,
    NotFound,
    PlatformRejected,
    PlatformUnavailable,
)
from bridge.models import CustomerMessageRequest, HandoffRequest
from bridge.ports.agent_side import InboundRequest
from bridge.ports.context import AdapterContext
from bridge.ports.http import HttpClient
from bridge.relay.jobs import BotEvent
from bridge.settings import load_settings
from tests.adapters.mocking import CompatResponse

ROOT = Path(__file__).resolve().parents[2]
# The attachment fixtures/tovie/send_file.json becomes (its type guessed from the name).
RECEIPT = {
    "url": "https://files.tovie.ai/uploads/7f3e/receipt.pdf",
    "name": "receipt.pdf",
    "mime_type": "application/pdf",
    "size": 48213,
}
FIXTURES = Path(__file__).parent / "fixtures" / "tovie"
TOKEN = "t0vie-apiurl-secret-9f2c"
WEBHOOK = "https://app.tovie.ai/chatadapter/chatapi/webhook/operatorapi/8d2c41a7e0b94f3c"
USER = "a1f0c3e2-7d1b-4c55-9e0a-5b6f7c8d9e01"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def call(body: Any = None, method: str = "POST") -> InboundRequest:
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return InboundRequest(method=method, headers={}, query={}, body=raw)


@dataclass
class Row:
    """The parts of a stored conversation the adapter reads."""

    id: str
    status: str
    channel: str


@dataclass
class FakeGateway:
    """The bridge as a bot-side adapter sees it, in memory."""

    state: dict[tuple[str, str], str] = field(default_factory=dict)
    opened: list[HandoffRequest] = field(default_factory=list)
    rows: dict[str, Row] = field(default_factory=dict)
    messages: list[tuple[str, str]] = field(default_factory=list)
    files: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    # Attachments the bridge refuses (its limits or its URL policy), by URL.
    refused_urls: set[str] = field(default_factory=set)
    closes: list[tuple[str, str, str | None]] = field(default_factory=list)

    async def open(self, request: HandoffRequest) -> tuple[Row, bool]:
        for index, message in enumerate(request.history):
            if any(a.url in self.refused_urls for a in message.attachments):
                field = f"history[{index}].attachments[0].url"
                problem = FieldProblem(field, "may not be passed on")
                raise InvalidInput("the history has attachments the bridge refuses", [problem])
        row = self.rows.get(request.bot.conversation_id)
        if row is not None and row.status in ("pending", "active"):
            return row, False
        self.opened.append(request)
        row = Row(f"conv-{len(self.opened)}", "pending", request.channel or "mysite")
        self.rows[request.bot.conversation_id] = row
        return row, True

    async def customer_message(
        self, conversation_id: str, request: CustomerMessageRequest
    ) -> tuple[Any, bool]:
        refused = [a for a in request.attachments if a.url in self.refused_urls]
        if refused:
            problem = FieldProblem("attachments[0].url", "may not be passed on")
            raise InvalidInput("the request has attachments the bridge may not pass on", [problem])
        self.messages.append((conversation_id, request.text))
        if request.attachments:
            self.files.append((conversation_id, [a.model_dump() for a in request.attachments]))
        return None, True

    async def close(self, conversation_id: str, by: str, reason: str | None) -> Any:
        self.closes.append((conversation_id, by, reason))
        for row in self.rows.values():
            if row.id == conversation_id:
                row.status = "closed"

    async def release(self, conversation_id: str, by: str, reason: str | None) -> Any:
        raise AssertionError("Tovie never releases")

    async def find_by_bot_conversation(self, bot_platform: str, conversation_id: str) -> Row | None:
        assert bot_platform == "tovie"
        return self.rows.get(conversation_id)

    async def destinations(self) -> list[dict[str, Any]]:
        return [
            {"channel": "mysite", "regions": ["en", "es"]},
            {"channel": "shop", "regions": []},
        ]

    async def put_state(self, adapter: str, key: str, value: str) -> None:
        self.state[(adapter, key)] = value

    async def get_state(self, adapter: str, key: str) -> str | None:
        return self.state.get((adapter, key))

    def history_lines(self) -> list[str]:
        """Every pre-handoff line the adapter keeps, over all users."""
        return [
            line["text"]
            for (_, key), value in self.state.items()
            if key.startswith("history:")
            for line in json.loads(value)
        ]


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with aiohttp.ClientSession() as session:
        yield HttpClient(session, timeout=5, quick_retries=2)


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOVIE_TEST_TOKEN", TOKEN)


def make_bot(http: HttpClient, **options: Any) -> TovieBot:
    return TovieBot.from_settings(
        "tovie", {"api_token": "TOVIE_TEST_TOKEN", **options}, AdapterContext(http)
    )


@pytest.fixture
def bot(http: HttpClient, token_env: None) -> TovieBot:
    return make_bot(http)


@pytest.fixture
async def gateway() -> FakeGateway:
    gateway = FakeGateway()
    gateway.state[("tovie", "webhook_url")] = WEBHOOK
    return gateway


async def serve(
    bot: TovieBot, gateway: FakeGateway, method: str, body: Any = None, verb: str = "POST"
) -> Any:
    reply = await bot.handle_request(f"{TOKEN}/{method}", call(body, verb), gateway)
    assert reply.status == 200
    return reply.body


# -- options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field_path"),
    [
        ({"api_token": "TOVIE_UNSET_VARIABLE"}, "bots.tovie.options.api_token"),
        ({}, "bots.tovie.options.api_token"),
        ({"api_token": "TOVIE_TEST_TOKEN", "colour": "red"}, "bots.tovie.options.colour"),
        ({"api_token": "TOVIE_TEST_TOKEN", "history_limit": -1}, "options.history_limit"),
        ({"api_token": "TOVIE_TEST_TOKEN", "webhook_url": "not a url"}, "options.webhook_url"),
        (
            {"api_token": "TOVIE_TEST_TOKEN", "paths": {"send_text": "sendFile"}},
            "bots.tovie.options.paths",
        ),
    ],
)
def test_bad_options_fail_at_start_naming_the_field(
    http: HttpClient, token_env: None, options: dict[str, Any], field_path: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        TovieBot.from_settings("tovie", options, AdapterContext(http))
    assert field_path in str(caught.value)


def test_example_config_loads_and_builds_its_adapters(
    http: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOVIE_API_TOKEN", TOKEN)
    settings = load_settings(ROOT / "config" / "examples" / "tovie.yaml")
    context = AdapterContext(http)
    agents = build_agent_adapters(settings, context)
    bots = build_bot_adapters(settings, context)
    assert set(agents) == {"mysite", "mysite-en", "mysite-es"}
    assert isinstance(bots["tovie"], TovieBot)


# -- the apiUrl token and routing of methods ----------------------------------------------


@pytest.mark.parametrize("path", ["wrong-token/setWebhook", "setWebhook", "", f"{TOKEN}x/sendText"])
async def test_a_wrong_token_is_refused_and_nothing_is_stored(bot: TovieBot, path: str) -> None:
    gateway = FakeGateway()
    with pytest.raises(InvalidSignature) as caught:
        await bot.handle_request(path, call(fixture("set_webhook")), gateway)
    assert caught.value.status == 401
    assert gateway.state == {} and gateway.opened == []


async def test_unknown_method_is_404_and_wrong_verb_is_405(
    bot: TovieBot, gateway: FakeGateway
) -> None:
    with pytest.raises(NotFound):
        await bot.handle_request(f"{TOKEN}/sendSticker", call({}), gateway)
    with pytest.raises(web.HTTPMethodNotAllowed):
        await bot.handle_request(f"{TOKEN}/sendText", call(None, "GET"), gateway)


async def test_set_webhook_keeps_the_url_for_later_events(bot: TovieBot) -> None:
    gateway = FakeGateway()
    assert await serve(bot, gateway, "setWebhook", fixture("set_webhook")) == {"result": "ok"}
    assert gateway.state[("tovie", "webhook_url")] == fixture("set_webhook")["url"]


async def test_set_webhook_without_a_url_is_malformed(bot: TovieBot) -> None:
    with pytest.raises(MalformedPayload) as caught:
        await serve(bot, FakeGateway(), "setWebhook", {"url": "ftp://x"})
    assert caught.value.fields[0].field == "url"


async def test_destinations_are_main_channels_and_their_regions(
    http: HttpClient, token_env: None, gateway: FakeGateway
) -> None:
    bot = make_bot(http, destination_names={"mysite:es": "Soporte"})
    found = await serve(bot, gateway, "getDestinations", verb="GET")
    assert found == [
        {"destinationId": "mysite", "name": "mysite", "hasOnline": "true"},
        {"destinationId": "mysite:en", "name": "mysite:en", "hasOnline": "true"},
        {"destinationId": "mysite:es", "name": "Soporte", "hasOnline": "true"},
        {"destinationId": "shop", "name": "shop", "hasOnline": "true"},
    ]


# -- history and selectDestination --------------------------------------------------------


async def test_select_destination_opens_the_handoff_with_history_and_metadata(
    bot: TovieBot, gateway: FakeGateway
) -> None:
    for text in ("Hola", "¿Dónde está mi pedido?"):
        await serve(bot, gateway, "sendText", {"userId": USER, "text": text})
    assert gateway.messages == []  # no conversation yet: kept as history

    reply = await serve(bot, gateway, "selectDestination", fixture("select_destination"))

    assert reply == {"result": "ok", "conversationId": "conv-1"}
    [handoff] = gateway.opened
    assert (handoff.bot.platform, handoff.bot.conversation_id) == ("tovie", USER)
    assert (handoff.channel, handoff.region) == ("mysite", "es")
    assert handoff.customer.id == USER
    assert (handoff.customer.firstname, handoff.customer.lastname) == ("Juan", "Pérez García")
    assert handoff.customer.email == "juan@example.com"
    assert handoff.metadata == {
        "email": "juan@example.com",
        "phone": "+34 600 000 000",
        "plan": "vip",  # customData wins over attributes
        "order.id": 42,
        "order.paid": True,
        "tags": '["delivery","late"]',
    }
    assert "crmToken" not in json.dumps(handoff.model_dump(mode="json"))
    assert [(m.role, m.text) for m in handoff.history] == [
        ("customer", "Hola"),
        ("customer", "¿Dónde está mi pedido?"),
    ]
    assert str(handoff.callback_url) == WEBHOOK
    assert gateway.history_lines() == []  # handed over, not handed over twice


async def test_only_the_last_history_limit_lines_are_kept(
    http: HttpClient, token_env: None, gateway: FakeGateway
) -> None:
    bot = make_bot(http, history_limit=2)
    for text in ("one", "two", "three"):
        await serve(bot, gateway, "sendText", {"userId": USER, "text": text})
    assert gateway.history_lines() == ["two", "three"]
    await serve(bot, gateway, "selectDestination", {"userId": USER, "destinationId": "mysite"})
    assert [m.text for m in gateway.opened[0].history] == ["two", "three"]


async def test_stale_buffered_lines_are_left_out_of_the_history(
    bot: TovieBot, gateway: FakeGateway
) -> None:
    await serve(bot, gateway, "sendText", {"userId": USER, "text": "fresh"})
    [key] = [key for key in gateway.state if key[1].startswith("history:")]
    lines = json.loads(gateway.state[key])
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    gateway.state[key] = json.dumps([{"text": "last week", "at": old}, *lines])
    await serve(bot, gateway, "selectDestination", {"userId": USER, "destinationId": "mysite"})
    assert [m.text for m in gateway.opened[0].history] == ["fresh"]


async def test_a_repeated_select_destination_returns_the_same_conversation(
    bot: TovieBot, gateway: FakeGateway
) -> None:
    first = await serve(bot, gateway, "selectDestination", fixture("select_destination"))
    again = await serve(bot, gateway, "selectDestination", fixture("select_destination"))
    assert first == again and len(gateway.opened) == 1


async def test_attributes_sent_as_a_json_string_are_accepted(
    bot: TovieBot, gateway: FakeGateway
) -> None:
    body = {"userId": USER, "destinationId": "shop", "attributes": '{"plan": "vip"}'}
    await serve(bot, gateway, "selectDestination", body)
    assert gateway.opened[0].metadata == {"plan": "vip"}
    assert (gateway.opened[0].channel, gateway.opened[0].region) == ("shop", None)


async def test_no_destination_goes_to_the_default_channel(
    bot: TovieBot, gateway: FakeGateway
) -> None:
    await serve(bot, gateway, "selectDestination", {"userId": USER, "destinationId": ""})
    assert (gateway.opened[0].channel, gateway.opened[0].region) == (None, None)


async def test_an_unknown_destination_is_refused_naming_destination_id(
    bot: TovieBot, gateway: FakeGateway
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await serve(bot, gateway, "selectDestination", {"userId": USER, "destinationId": "nope"})
    assert caught.value.fields[0].field == "destinationId"
    assert gateway.opened == []


async def test_without_set_webhook_the_handoff_waits_unless_a_fallback_is_configured(
    http: HttpClient, token_env: None
) -> None:
    body = {"userId": USER, "destinationId": "mysite"}
    with pytest.raises(Conflict):
        await serve(make_bot(http), FakeGateway(), "selectDestination", body)
    gateway = FakeGateway()
    await serve(make_bot(http, webhook_url=WEBHOOK), gateway, "selectDestination", body)
    assert str(gateway.opened[0].callback_url) == WEBHOOK


@pytest.mark.parametrize(
    ("method", "body", "field_path"),
    [
        ("sendText", {"text": "hi"}, "userId"),
        ("sendText", {"userId": USER, "text": "   "}, "text"),
        ("sendFile", {"userId": USER, "url": "not a link"}, "url"),
        ("closeChat", [], "(body)"),
        ("selectDestination", {"userId": USER, "attributes": [1, 2]}, "attributes"),
        ("selectDestination", {"userId": USER, "customData": "{broken"}, "customData"),
    ],
)
async def test_calls_not_of_the_documented_shape_are_malformed(
    bot: TovieBot, gateway: FakeGateway, method: str, body: Any, field_path: str
) -> None:
    with pytest.raises(MalformedPayload) as caught:
        await serve(bot, gateway, method, body)
    assert caught.value.status == 400
    assert field_path in [problem.field for problem in caught.value.fields]
    assert gateway.opened == [] and gateway.messages == []


async def test_a_body_that_is_not_json_is_malformed(bot: TovieBot, gateway: FakeGateway) -> None:
    with pytest.raises(MalformedPayload):
        await serve(bot, gateway, "sendText", b"userId=1&text=hi")


# -- after the handoff ---------------------------------------------------------------------


async def test_text_and_files_after_the_handoff_are_customer_messages(
    bot: TovieBot, gateway: FakeGateway
) -> None:
    await serve(bot, gateway, "selectDestination", fixture("select_destination"))
    await serve(bot, gateway, "sendText", fixture("send_text"))
    await serve(bot, gateway, "sendFile", fixture("send_file"))
    assert gateway.messages == [("conv-1", "¿Dónde está mi pedido?"), ("conv-1", "")]
    assert gateway.files == [("conv-1", [RECEIPT])]
    assert gateway.history_lines() == []


async def test_a_file_the_bridge_refuses_reaches_the_agent_as_a_link(
    bot: TovieBot, gateway: FakeGateway
) -> None:
    """Tovie cannot be asked for the file again: the agent gets its `name: url` line."""
    gateway.refused_urls.add(RECEIPT["url"])
    await serve(bot, gateway, "selectDestination", fixture("select_destination"))
    await serve(bot, gateway, "sendFile", fixture("send_file"))
    assert gateway.messages == [("conv-1", f"receipt.pdf: {RECEIPT['url']}")]
    assert gateway.files == []


async def test_a_buffered_file_the_bridge_refuses_opens_the_handoff_with_a_link(
    bot: TovieBot, gateway: FakeGateway
) -> None:
    gateway.refused_urls.add(RECEIPT["url"])
    await serve(bot, gateway, "sendFile", fixture("send_file"))
    await serve(bot, gateway, "selectDestination", fixture("select_destination"))
    (opened,) = gateway.opened
    assert [(m.text, m.attachments) for m in opened.history] == [
        (f"receipt.pdf: {RECEIPT['url']}", [])
    ]


async def test_a_file_before_the_handoff_is_history_with_its_attachment(
    bot: TovieBot, gateway: FakeGateway
) -> None:
    await serve(bot, gateway, "sendText", fixture("send_text"))
    await serve(bot, gateway, "sendFile", fixture("send_file"))
    await serve(bot, gateway, "selectDestination", fixture("select_destination"))
    (opened,) = gateway.opened
    assert [(m.text, [a.model_dump() for a in m.attachments]) for m in opened.history] == [
        ("¿Dónde está mi pedido?", []),
        ("", [RECEIPT]),
    ]


async def test_close_chat_closes_once_and_a_repeat_is_answered_ok(
    bot: TovieBot, gateway: FakeGateway
) -> None:
    await serve(bot, gateway, "selectDestination", fixture("select_destination"))
    assert await serve(bot, gateway, "closeChat", fixture("close_chat")) == {"result": "ok"}
    assert await serve(bot, gateway, "closeChat", fixture("close_chat")) == {"result": "ok"}
    assert gateway.closes == [("conv-1", "bot", "The user closed the chat")]


async def test_text_after_the_conversation_closed_waits_for_the_next_handoff(
    bot: TovieBot, gateway: FakeGateway
) -> None:
    await serve(bot, gateway, "selectDestination", fixture("select_destination"))
    await serve(bot, gateway, "closeChat", fixture("close_chat"))
    await serve(bot, gateway, "sendText", {"userId": USER, "text": "one more thing"})
    assert gateway.messages == []
    await serve(bot, gateway, "selectDestination", fixture("select_destination"))
    assert [m.text for m in gateway.opened[1].history] == ["one more thing"]


# -- events to Tovie -------------------------------------------------------------------


def event(event_type: str, **data: Any) -> str:
    """A bridge event body, built as the handoff service builds it."""
    body = {"conversation_id": "conv-1", "bot_conversation_id": USER, "channel": "mysite-es"}
    return BotEvent.about("conv-1", WEBHOOK, event_type, {**body, **data}, datetime.now(UTC)).body


def agent_message(text: str, author: str | None = "Ana María López", **extra: Any) -> str:
    message = {"seq": 4, "role": "agent", "text": text, "author": author, "id": "a-1", **extra}
    return event("agent.message", message={**message, "sent_at": "2026-11-21T10:00:00+00:00"})


def tovie_answers(mocked: aioresponses, status: int, **kwargs: Any) -> None:
    """Tovie's webhook answers the next POST with `status`."""
    mocked.post(WEBHOOK, status=status, response_class=CompatResponse, **kwargs)


def posted(mocked: aioresponses) -> list[Any]:
    return [c.kwargs["json"] for calls in mocked.requests.values() for c in calls]


def same_shape(sent: dict[str, Any], documented: dict[str, Any]) -> None:
    """Every key we send is one Tovie documents, and every documented key we know is sent."""
    assert set(sent) <= set(documented)
    assert set(sent["employee"]) == set(documented["employee"])


async def test_an_agent_message_is_a_text_message_carrying_the_event_id(bot: TovieBot) -> None:
    with aioresponses() as mocked:
        tovie_answers(mocked, 200)
        await bot.deliver_event(WEBHOOK, "msg_0001", agent_message("Hola Juan, lo miro."))
    [sent] = posted(mocked)
    assert sent == {
        "id": "msg_0001",
        "userId": USER,
        "type": "TextMessage",
        "text": "Hola Juan, lo miro.",
        "employee": {
            "employeeId": "Ana María López",
            "firstName": "Ana",
            "lastName": "María López",
            "avatarUrl": "",
        },
    }
    assert set(sent) == set(fixture("text_message"))
    same_shape(sent, fixture("text_message"))


async def test_an_agent_message_that_is_a_file_link_is_a_file_message(bot: TovieBot) -> None:
    url = "https://cdn.example.com/docs/Factura%20123.pdf"
    with aioresponses() as mocked:
        tovie_answers(mocked, 200, repeat=True)
        await bot.deliver_event(WEBHOOK, "msg_0002", agent_message(url))
        await bot.deliver_event(WEBHOOK, "msg_0003", agent_message(f"see {url}"))
    file_sent, text_sent = posted(mocked)
    assert (file_sent["type"], file_sent["url"], file_sent["name"]) == (
        "FileMessage",
        url,
        "Factura 123.pdf",
    )
    same_shape(file_sent, fixture("file_message"))
    assert text_sent["type"] == "TextMessage"


async def test_an_agent_message_with_files_is_its_text_then_a_file_message_each(
    bot: TovieBot,
) -> None:
    """Each part has an id of its own; a file's size goes as Tovie's example writes it."""
    photo = {"url": "https://cdn.example.com/p.png", "name": "p.png", "mime_type": "image/png"}
    files = [RECEIPT, photo]
    with aioresponses() as mocked:
        tovie_answers(mocked, 200, repeat=True)
        await bot.deliver_event(WEBHOOK, "msg_0005", agent_message("Both here", attachments=files))
        await bot.deliver_event(WEBHOOK, "msg_0006", agent_message("", attachments=[photo]))
    text_sent, receipt_sent, photo_sent, only_file = posted(mocked)
    assert (text_sent["type"], text_sent["id"], text_sent["text"]) == (
        "TextMessage",
        "msg_0005",
        "Both here",
    )
    assert [(f["type"], f["id"], f["url"], f["name"]) for f in (receipt_sent, photo_sent)] == [
        ("FileMessage", "msg_0005.1", RECEIPT["url"], "receipt.pdf"),
        ("FileMessage", "msg_0005.2", photo["url"], "p.png"),
    ]
    assert (receipt_sent["size"], "size" in photo_sent) == ("48213", False)
    assert (only_file["type"], only_file["id"]) == ("FileMessage", "msg_0006")
    for sent in (receipt_sent, photo_sent, only_file):
        same_shape(sent, fixture("file_message"))


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("conversation.closed", {"by": "agent", "reason": "closed by the agent"}),
        ("conversation.released", {"by": "agent", "reason": "back to the bot"}),
        ("handoff.failed", {"reason": "platform_error", "detail": "the agent side is down"}),
        ("handoff.cancelled", {"by": "bot", "reason": "cancelled by the bot"}),
    ],
)
async def test_ends_are_closed_events(bot: TovieBot, event_type: str, data: dict[str, Any]) -> None:
    with aioresponses() as mocked:
        tovie_answers(mocked, 200)
        await bot.deliver_event(WEBHOOK, "msg_0004", event(event_type, **data))
    [sent] = posted(mocked)
    assert (sent["type"], sent["id"], sent["userId"]) == ("Closed", "msg_0004", USER)
    assert sent["employee"]["firstName"] == "Support"
    assert set(sent) == set(fixture("closed"))


async def test_a_join_is_a_notice_or_nothing(http: HttpClient, token_env: None) -> None:
    joined = event("agent.joined", agent={"name": "Ana", "joined_at": "2026-11-21T10:00:00"})
    with aioresponses() as mocked:
        tovie_answers(mocked, 200)
        await make_bot(http).deliver_event(WEBHOOK, "msg_0005", joined)
        await make_bot(http, join_notice=None).deliver_event(WEBHOOK, "msg_0006", joined)
        await make_bot(http).deliver_event(WEBHOOK, "msg_0007", event("agent.typing"))
    [sent] = posted(mocked)
    assert (sent["type"], sent["text"], sent["employee"]["firstName"]) == (
        "TextMessage",
        "Ana joined the chat.",
        "Ana",
    )


async def test_a_wait_is_the_notice_of_its_reason_or_nothing(
    http: HttpClient, token_env: None
) -> None:
    notices = {"no_agents_online": "Nobody is online; you may keep waiting.", "capacity": "Busy."}
    waiting = event("handoff.waiting", reason="no_agents_online", options=["wait", "release"])
    unlisted = event("handoff.waiting", reason="capacity")
    with aioresponses() as mocked:
        tovie_answers(mocked, 200)
        await make_bot(http, waiting_notices=notices).deliver_event(WEBHOOK, "msg_0008", waiting)
        await make_bot(http).deliver_event(WEBHOOK, "msg_0009", unlisted)
    [sent] = posted(mocked)
    assert (sent["type"], sent["id"], sent["text"]) == (
        "TextMessage",
        "msg_0008",
        "Nobody is online; you may keep waiting.",
    )
    with pytest.raises(ConfigError, match="waiting_notices"):
        make_bot(http, waiting_notices={"nobody_home": "?"})


async def test_a_client_error_is_rejected_without_retrying(bot: TovieBot) -> None:
    with aioresponses() as mocked:
        tovie_answers(mocked, 400, body="unknown userId")
        with pytest.raises(PlatformRejected) as caught:
            await bot.deliver_event(WEBHOOK, "msg_0008", agent_message("hi"))
    assert caught.value.status == 400
    assert len(posted(mocked)) == 1


async def test_a_server_error_is_retried_with_the_same_id(bot: TovieBot) -> None:
    with aioresponses() as mocked:
        tovie_answers(mocked, 503)
        tovie_answers(mocked, 200)
        await bot.deliver_event(WEBHOOK, "msg_0009", agent_message("hi"))
    first, second = posted(mocked)
    assert first == second and first["id"] == "msg_0009"


async def test_server_errors_past_the_quick_retries_are_unavailable(bot: TovieBot) -> None:
    with aioresponses() as mocked:
        tovie_answers(mocked, 500, repeat=True)
        with pytest.raises(PlatformUnavailable):
            await bot.deliver_event(WEBHOOK, "msg_0010", agent_message("hi"))
    assert len(posted(mocked)) == 3  # quick_retries=2


async def test_a_body_that_is_not_a_bridge_event_is_rejected(bot: TovieBot) -> None:
    with pytest.raises(PlatformRejected):
        await bot.deliver_event(WEBHOOK, "msg_0011", "not json")
    with pytest.raises(PlatformRejected):
        await bot.deliver_event(WEBHOOK, "msg_0012", json.dumps({"type": "agent.message"}))
