"""JivoChat adapters: options, outbound calls (aioresponses), inbound parsing, the contract.

The bot side's webhook handling runs here against an in-memory gateway; the whole flow
through the real app is in tests/integration/test_platform_jivochat.py.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from standardwebhooks.webhooks import Webhook

from adapters.jivochat import (
    JivoBotApiAdapter,
    JivoBotProvider,
    JivoChatAdapter,
    JivoChatApiAdapter,
)
from adapters.jivochat.bot import JIVO_BOT_MESSAGE, JIVO_TARGET, NO_AGENT_ONLINE
from adapters.registry import build_agent_adapters, build_bot_adapters
from bridge.attachments import Attachment
from bridge.errors import (
    ConfigError,
    InvalidInput,
    InvalidSignature,
    MalformedPayload,
    NotFound,
    PlatformAuthError,
    PlatformRejected,
    PlatformUnavailable,
)
from bridge.models import AgentMessageRequest
from bridge.ports.agent_side import (
    AgentSideAdapter,
    ConversationRef,
    ConversationSnapshot,
    InboundRequest,
    OutboundMessage,
)
from bridge.ports.context import AdapterContext
from bridge.ports.http import HttpClient
from bridge.settings import load_settings
from tests.adapters.contract import SNAPSHOT, AgentSideContract, Harness
from tests.adapters.fake_jivochat import (
    BOT_TOKEN,
    ENDPOINT_SECRET,
    PROVIDER_ID,
    PUBLIC_ID,
    WEBHOOK_TOKEN,
    FakeJivo,
    client_message,
    fixture,
)
from tests.adapters.mocking import CompatAioresponses
from tests.fakes import WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parents[2]
JIVO = "https://bot.jivo.test"
CHAT = "https://wh.jivo.test"
BOT_URL = "https://bot.example.test/events"
INVITE_URL = f"{JIVO}/webhooks/{PROVIDER_ID}/{BOT_TOKEN}"
CHAT_URL = f"{CHAT}/{ENDPOINT_SECRET}/{PUBLIC_ID}"


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIVO_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("JIVO_CHAT_API_SECRET", ENDPOINT_SECRET)
    monkeypatch.setenv("JIVO_CHAT_WEBHOOK_TOKEN", WEBHOOK_TOKEN)


@pytest.fixture
async def context() -> AsyncIterator[AdapterContext]:
    """The app's one-session HTTP client, two quick retries, as in production."""
    async with aiohttp.ClientSession() as session:
        yield AdapterContext(
            HttpClient(session, timeout=5, quick_retries=2), webhook_secret=WEBHOOK_SECRET
        )


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with CompatAioresponses() as mock:
        yield mock


def offline() -> AdapterContext:
    """A context for tests that make no outbound call."""
    return AdapterContext(HttpClient(None, timeout=1, quick_retries=0))  # type: ignore[arg-type]


def bot_api_options(**extra: Any) -> dict[str, Any]:
    return {
        "mode": "bot_api",
        "provider_id": PROVIDER_ID,
        "token": "JIVO_BOT_TOKEN",
        "bot_api_url": JIVO,
        **extra,
    }


def chat_api_options(base_url: str = CHAT, **extra: Any) -> dict[str, Any]:
    return {
        "mode": "chat_api",
        "chat_api_url": base_url,
        "endpoint_secret": "JIVO_CHAT_API_SECRET",
        "public_id": PUBLIC_ID,
        "webhook_token": "JIVO_CHAT_WEBHOOK_TOKEN",
        **extra,
    }


def provider_options(**extra: Any) -> dict[str, Any]:
    return {
        "provider_id": PROVIDER_ID,
        "token": "JIVO_BOT_TOKEN",
        "bot_api_url": JIVO,
        "bot_url": BOT_URL,
        **extra,
    }


def calls(mock: aioresponses, method: str, url: str) -> list[Any]:
    return [c for (m, u), cs in mock.requests.items() if (m, str(u)) == (method, url) for c in cs]


def snapshot(**metadata: Any) -> ConversationSnapshot:
    return ConversationSnapshot(
        id="conv-1",
        channel="jivo",
        main_channel="jivo",
        region=None,
        customer={"id": "1233", "firstname": "John"},
        metadata=metadata,
        settings={},
    )


# -- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({k: v for k, v in provider_options().items() if k != "provider_id"}, "provider_id"),
        (provider_options(token="JIVO_UNSET_VARIABLE"), "token"),
        (provider_options(bot_url="not a url"), "bot_url"),
        (provider_options(bot_api_path="/webhooks/{provider_id}"), "bot_api_path"),
        (provider_options(bot_api_url="ftp://jivo"), "bot_api_url"),
        (provider_options(colour="blue"), "colour"),
    ],
)
def test_bot_side_option_errors_name_the_field(
    options: dict[str, Any], field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JIVO_UNSET_VARIABLE", raising=False)
    with pytest.raises(ConfigError, match=rf"bots\.jivo\.options\.{field}"):
        JivoBotProvider.from_settings("jivo", options, offline())


def test_a_short_url_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIVO_BOT_TOKEN", "short")
    with pytest.raises(ConfigError, match=r"bots\.jivo\.options\.token: .*16 characters"):
        JivoBotProvider.from_settings("jivo", provider_options(), offline())


@pytest.mark.parametrize(
    ("options", "where"),
    [
        ({k: v for k, v in chat_api_options().items() if k != "public_id"}, "chat_api.public_id"),
        (chat_api_options(webhook_token="JIVO_UNSET_VARIABLE"), "chat_api.webhook_token"),
        (chat_api_options(chat_api_path="/{public_id}"), "chat_api.chat_api_path"),
        (chat_api_options(close_notice="bye {who}"), "chat_api.close_notice"),
        ({k: v for k, v in bot_api_options().items() if k != "token"}, "bot_api.token"),
        (bot_api_options(regions=["x"]), "bot_api.regions"),
        ({**chat_api_options(), "mode": "widget"}, ""),
    ],
)
def test_channel_option_errors_name_the_field(
    options: dict[str, Any], where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JIVO_UNSET_VARIABLE", raising=False)
    with pytest.raises(ConfigError) as raised:
        JivoChatAdapter.from_settings("jv", options, offline())
    assert f"channels.jv.options.{where}" in str(raised.value)
    if not where:
        assert "mode" in str(raised.value)


def test_the_mode_picks_the_class_and_its_capabilities() -> None:
    bot_api = JivoChatAdapter.from_settings("jv", bot_api_options(), offline())
    chat_api = JivoChatAdapter.from_settings("jv", chat_api_options(), offline())
    assert type(bot_api) is JivoBotApiAdapter
    assert (bot_api.capabilities.history, bot_api.capabilities.messages) == (True, False)
    assert isinstance(chat_api, JivoChatApiAdapter)
    assert chat_api.capabilities.availability and chat_api.capabilities.messages


def test_example_config_loads_and_builds_every_adapter() -> None:
    settings = load_settings(ROOT / "config" / "examples" / "jivochat.yaml")
    context = offline()
    agents = build_agent_adapters(settings, context)
    bots = build_bot_adapters(settings, context)
    assert type(agents["jivo"]) is JivoBotApiAdapter
    assert isinstance(agents["jivo-chat"], JivoChatApiAdapter)
    assert agents["console"].platform == "console"
    assert isinstance(bots["jivo"], JivoBotProvider)


# -- agent side, bot_api mode ---------------------------------------------------------------


async def test_open_invites_an_agent_into_the_chat(
    context: AdapterContext, mocked: aioresponses
) -> None:
    adapter = JivoChatAdapter.from_settings("jivo", bot_api_options(), context)
    mocked.post(INVITE_URL, status=200, payload={}, repeat=True)
    opened = await adapter.open_conversation(snapshot(jivo_chat_id=2037, jivo_client_id=1233))
    again = await adapter.open_conversation(snapshot(jivo_chat_id=2037, jivo_client_id=1233))
    assert opened.external_ref == again.external_ref == "2037"
    first, second = (c.kwargs["json"] for c in calls(mocked, "POST", INVITE_URL))
    assert first == {
        "event": "INVITE_AGENT",
        "id": first["id"],
        "client_id": "1233",
        "chat_id": "2037",
    }
    uuid.UUID(first["id"])
    # A retried open repeats the invite's id.
    assert second["id"] == first["id"]


async def test_open_without_the_chat_id_is_rejected_without_a_call(
    context: AdapterContext, mocked: aioresponses
) -> None:
    adapter = JivoChatAdapter.from_settings("jivo", bot_api_options(), context)
    with pytest.raises(PlatformRejected, match="jivo_chat_id"):
        await adapter.open_conversation(snapshot())
    assert mocked.requests == {}


async def test_client_error_is_rejected_once_and_the_token_never_shows(
    context: AdapterContext, mocked: aioresponses
) -> None:
    adapter = JivoChatAdapter.from_settings("jivo", bot_api_options(), context)
    mocked.post(INVITE_URL, status=400, body="Bad Request", repeat=True)
    with pytest.raises(PlatformRejected) as raised:
        await adapter.open_conversation(snapshot(jivo_chat_id="2037"))
    assert not isinstance(raised.value, PlatformUnavailable)
    assert raised.value.status == 400
    # The error holds the status only: no URL, so no token, and nothing Jivo answered.
    assert BOT_TOKEN not in str(raised.value) and str(raised.value) == "HTTP 400"
    assert len(calls(mocked, "POST", INVITE_URL)) == 1


async def test_auth_error_keeps_its_type(context: AdapterContext, mocked: aioresponses) -> None:
    adapter = JivoChatAdapter.from_settings("jivo", bot_api_options(), context)
    mocked.post(INVITE_URL, status=401, body="Unauthorized")
    with pytest.raises(PlatformAuthError):
        await adapter.open_conversation(snapshot(jivo_chat_id="2037"))


async def test_server_errors_are_retried(context: AdapterContext, mocked: aioresponses) -> None:
    adapter = JivoChatAdapter.from_settings("jivo", bot_api_options(), context)
    mocked.post(INVITE_URL, status=502)
    mocked.post(INVITE_URL, status=503)
    mocked.post(INVITE_URL, status=200, payload={})
    opened = await adapter.open_conversation(snapshot(jivo_chat_id="2037"))
    assert opened.external_ref == "2037"
    assert len(calls(mocked, "POST", INVITE_URL)) == 3


async def test_lasting_server_errors_are_unavailable_without_the_token(
    context: AdapterContext, mocked: aioresponses
) -> None:
    adapter = JivoChatAdapter.from_settings("jivo", bot_api_options(), context)
    mocked.post(INVITE_URL, status=500, repeat=True)
    with pytest.raises(PlatformUnavailable) as raised:
        await adapter.open_conversation(snapshot(jivo_chat_id="2037"))
    assert BOT_TOKEN not in str(raised.value)
    assert len(calls(mocked, "POST", INVITE_URL)) == 3


# -- agent side, chat_api mode --------------------------------------------------------------


@pytest.mark.parametrize(("body", "online"), [("1", True), ("0", False)])
async def test_availability_reads_the_status_endpoint(
    body: str, online: bool, context: AdapterContext, mocked: aioresponses
) -> None:
    adapter = JivoChatAdapter.from_settings("jc", chat_api_options(), context)
    mocked.get(f"{CHAT_URL}/status", status=200, body=body)
    assert await adapter.check_availability() is online


async def test_an_unexpected_status_body_is_rejected(
    context: AdapterContext, mocked: aioresponses
) -> None:
    adapter = JivoChatAdapter.from_settings("jc", chat_api_options(), context)
    mocked.get(f"{CHAT_URL}/status", status=200, body="<html>maintenance</html>")
    with pytest.raises(PlatformRejected):
        await adapter.check_availability()


async def test_customer_files_are_posted_as_photo_and_document_messages(
    context: AdapterContext, mocked: aioresponses
) -> None:
    adapter = JivoChatAdapter.from_settings("jc", chat_api_options(), context)
    mocked.post(CHAT_URL, status=200, payload={}, repeat=True)
    shot = Attachment(url="https://f.example/s.png", name="s.png", mime_type="image/png")
    pdf = Attachment(url="https://f.example/i.pdf", name="i.pdf", mime_type="application/pdf")
    message = OutboundMessage(7, "customer", "See these", None, datetime.now(UTC), (shot, pdf))
    await adapter.post_message(ConversationRef("conv-1", "jc", "cust-1"), message)
    sent = [call.kwargs["json"]["message"] for call in calls(mocked, "POST", CHAT_URL)]
    assert sent == [
        {"type": "text", "id": "bridge-conv-1-7", "text": "See these"},
        {"type": "photo", "id": "bridge-conv-1-7-f1", "file": shot.url, "file_name": "s.png"},
        {"type": "document", "id": "bridge-conv-1-7-f2", "file": pdf.url, "file_name": "i.pdf"},
    ]


async def test_customer_message_is_posted_as_the_client(
    context: AdapterContext, mocked: aioresponses
) -> None:
    adapter = JivoChatAdapter.from_settings("jc", chat_api_options(), context)
    mocked.post(CHAT_URL, status=200, payload={})
    message = OutboundMessage(7, "customer", "Any news?", None, datetime.now(UTC))
    await adapter.post_message(ConversationRef("conv-1", "jc", "cust-1"), message)
    (call,) = calls(mocked, "POST", CHAT_URL)
    assert call.kwargs["json"] == {
        "sender": {"id": "cust-1"},
        "message": {"type": "text", "id": "bridge-conv-1-7", "text": "Any news?"},
    }


def _inbound(body: Any, token: str | None = WEBHOOK_TOKEN) -> InboundRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboundRequest("POST", {}, {}, raw, path_token=token)


def test_agent_reply_webhook_becomes_an_agent_message() -> None:
    adapter = JivoChatAdapter.from_settings("jc", chat_api_options(), offline())
    request = _inbound(fixture("chat_api_agent_message"))
    adapter.verify_inbound(request)
    (event,) = adapter.parse_inbound(request)
    assert (event.kind, event.event_id, event.external_ref, event.text, event.agent_name) == (
        "agent.message",
        "pm-1",
        "cust-1",
        "Hi, I'm Ana.",
        "Ana Lopez",
    )
    (photo,) = adapter.parse_inbound(_inbound(fixture("chat_api_agent_photo")))
    assert (photo.kind, photo.text) == ("agent.message", "")
    assert [a.model_dump() for a in photo.attachments] == [
        {
            "url": "https://files.jivosite.com/abc/label.png",
            "name": "label.png",
            "mime_type": "image/png",
            "size": None,
        }
    ]
    # A "file" that is no http(s) link is no attachment: the agent's line as Jivo sent it.
    odd = fixture("chat_api_agent_photo")
    odd["message"]["file"] = "files/abc/label.png"
    (line,) = adapter.parse_inbound(_inbound(odd))
    assert (line.text, line.attachments) == ("label.png: files/abc/label.png", ())
    assert adapter.parse_inbound(_inbound(fixture("chat_api_agent_typing"))) == []
    # A client-side message is an echo of what the bridge posted.
    assert adapter.parse_inbound(_inbound(fixture("chat_api_client_message"))) == []


def test_a_reply_without_an_id_gets_a_stable_one() -> None:
    adapter = JivoChatAdapter.from_settings("jc", chat_api_options(), offline())
    payload = fixture("chat_api_agent_message")
    del payload["message"]["id"]
    first = adapter.parse_inbound(_inbound(payload))
    again = adapter.parse_inbound(_inbound(payload))
    assert first[0].event_id == again[0].event_id


@pytest.mark.parametrize("body", [b"not json", [1, 2], {"recipient": {"id": "x"}}])
def test_malformed_chat_api_webhooks_are_refused(body: Any) -> None:
    adapter = JivoChatAdapter.from_settings("jc", chat_api_options(), offline())
    with pytest.raises(MalformedPayload):
        adapter.parse_inbound(_inbound(body))


# -- the agent-side contract (chat_api mode, against the fake Chat API) ---------------------


@dataclass
class ChatApiHarness(Harness):
    adapter: AgentSideAdapter
    fake: FakeJivo

    def sent_texts(self) -> list[str]:
        return self.fake.chat_texts()

    def received_links(self) -> str:
        files = [str(event["message"].get("file")) for event in self.fake.chat_api_events]
        return "\n".join([*self.sent_texts(), *files])

    def closed(self) -> bool:
        options = JivoChatAdapter.options_model.model_validate(chat_api_options())
        notice = options.root.close_notice.split("{reason}")[0]
        return any(text.startswith(notice) for text in self.fake.chat_texts())

    def message_keys(self) -> list[str | None]:
        return [event["message"].get("id") for event in self.fake.chat_api_events]

    def agent_message_webhook(
        self, external_ref: str, text: str, message_id: str
    ) -> InboundRequest:
        payload = fixture("chat_api_agent_message", recipient={"id": external_ref})
        payload["message"].update(id=message_id, text=text)
        return _inbound(payload)

    def echo_webhook(self, external_ref: str, text: str) -> InboundRequest:
        payload = fixture("chat_api_client_message", sender={"id": external_ref})
        payload["message"]["text"] = text
        return _inbound(payload)

    def unauthenticated(self, request: InboundRequest) -> InboundRequest:
        return InboundRequest(
            request.method, request.headers, request.query, request.body, "wrong-token-0123456789"
        )


class TestJivoChatApiContract(AgentSideContract):
    @pytest.fixture
    async def harness(self, context: AdapterContext) -> AsyncIterator[ChatApiHarness]:
        async with FakeJivo() as fake:
            adapter = JivoChatAdapter.from_settings("ch", chat_api_options(fake.url), context)
            yield ChatApiHarness(adapter, fake)


async def test_open_introduces_the_customer_with_the_metadata(context: AdapterContext) -> None:
    async with FakeJivo() as fake:
        adapter = JivoChatAdapter.from_settings("ch", chat_api_options(fake.url), context)
        opened = await adapter.open_conversation(SNAPSHOT)
        assert opened.external_ref == "cust-1"
        (intro,) = fake.chat_api_events
        assert intro["sender"] == {"id": "cust-1", "name": "John Doe", "email": "john@example.com"}
        assert "plan: vip; order: 42; labels: vip; region: en" in intro["message"]["text"]
        fake.agents_online = False
        assert await adapter.check_availability() is False


# -- bot side: deliveries ---------------------------------------------------------------------


async def test_bot_events_are_signed_per_standard_webhooks(
    context: AdapterContext, mocked: aioresponses
) -> None:
    provider = JivoBotProvider.from_settings("jivo", provider_options(), context)
    body = json.dumps({"type": "customer.message", "timestamp": "t", "data": {"x": 1}})
    mocked.post(BOT_URL, status=204)
    await provider.deliver_event(BOT_URL, "msg_abc", body)
    (call,) = calls(mocked, "POST", BOT_URL)
    headers = call.kwargs["headers"]
    Webhook(WEBHOOK_SECRET).verify(call.kwargs["data"].decode(), dict(headers))
    assert headers["webhook-id"] == "msg_abc"


async def test_a_queued_bot_message_goes_to_jivo(
    context: AdapterContext, mocked: aioresponses
) -> None:
    provider = JivoBotProvider.from_settings("jivo", provider_options(), context)
    jivo = {"event": "BOT_MESSAGE", "id": "u-1", "client_id": "1", "chat_id": "2", "message": {}}
    body = json.dumps({"type": JIVO_BOT_MESSAGE, "timestamp": "t", "data": {"jivo": jivo}})
    mocked.post(INVITE_URL, status=200, payload={})
    await provider.deliver_event(JIVO_TARGET, "msg_abc", body)
    (call,) = calls(mocked, "POST", INVITE_URL)
    assert call.kwargs["json"] == jivo
    assert "webhook-signature" not in (call.kwargs.get("headers") or {})


async def test_bot_message_rejected_by_jivo_is_not_retried(
    context: AdapterContext, mocked: aioresponses
) -> None:
    provider = JivoBotProvider.from_settings("jivo", provider_options(), context)
    body = json.dumps({"type": JIVO_BOT_MESSAGE, "timestamp": "t", "data": {"jivo": {}}})
    mocked.post(INVITE_URL, status=405, repeat=True)
    with pytest.raises(PlatformRejected):
        await provider.deliver_event(JIVO_TARGET, "msg_abc", body)
    assert len(calls(mocked, "POST", INVITE_URL)) == 1


# -- bot side: Jivo's events and the bot's replies (in-memory gateway) ------------------------


@dataclass
class MemoryGateway:
    """The gateway calls the Jivo bot side makes, recorded in memory."""

    rows: dict[str, Any] = field(default_factory=dict)
    state: dict[tuple[str, str], str] = field(default_factory=dict)
    notified: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    async def open(self, request: Any) -> tuple[Any, bool]:
        raise NotImplementedError

    async def customer_message(self, conversation_id: str, request: Any) -> tuple[Any, bool]:
        raise NotImplementedError

    async def close(self, conversation_id: str, by: str, reason: str | None) -> Any:
        self.calls.append(("close", conversation_id, by, str(reason)))

    async def release(self, conversation_id: str, by: str, reason: str | None) -> Any:
        self.calls.append(("release", conversation_id, by, str(reason)))
        self.rows[
            next(k for k, r in self.rows.items() if r.id == conversation_id)
        ].status = "released"

    async def find_by_bot_conversation(self, bot: str, chat_id: str) -> Any | None:
        return self.rows.get(chat_id)

    async def notify_bot(
        self, bot: str, chat_id: str, target: str, event_type: str, data: dict[str, Any]
    ) -> None:
        self.notified.append((chat_id, target, event_type, data))

    async def put_state(self, adapter: str, key: str, value: str) -> None:
        self.state[adapter, key] = value

    async def get_state(self, adapter: str, key: str) -> str | None:
        return self.state.get((adapter, key))

    async def agent_joined(self, conversation_id: str, name: str) -> Any:
        self.calls.append(("joined", conversation_id, name))

    async def agent_message(
        self, conversation_id: str, request: AgentMessageRequest, author: str | None
    ) -> Any:
        self.calls.append(("message", conversation_id, request.text, str(request.client_id)))


def handoff_row(status: str = "pending") -> SimpleNamespace:
    return SimpleNamespace(id="conv-9", status=status, channel="jivo", callback_url=BOT_URL + "/c")


@pytest.fixture
def provider() -> JivoBotProvider:
    return JivoBotProvider.from_settings("jivo", provider_options(), offline())


async def test_client_message_is_queued_for_the_bot_once(provider: JivoBotProvider) -> None:
    gateway = MemoryGateway()
    request = _inbound(client_message("Can you help me?", "ev-1"))
    for _ in range(2):
        reply = await provider.handle_request(BOT_TOKEN, request, gateway)
        assert reply.status == 200
    ((chat_id, target, event_type, data),) = gateway.notified
    assert (chat_id, target, event_type) == ("2037", BOT_URL, "customer.message")
    assert data["message"] == {
        "id": "ev-1",
        "type": "TEXT",
        "text": "Can you help me?",
        "sent_at": "2022-10-10T15:31:19+00:00",
    }
    assert (data["client_id"], data["agents_online"], data["conversation_id"]) == (
        "1233",
        True,
        None,
    )
    assert data["handoff"]["bot"] == {"platform": "jivo", "conversation_id": "2037"}
    assert data["handoff"]["metadata"] == {"jivo_chat_id": "2037", "jivo_client_id": "1233"}


@pytest.mark.parametrize(
    "body",
    [
        {"event": "CLIENT_MESSAGE", "client_id": "1", "message": {"type": "TEXT", "text": "x"}},
        {"event": "CLIENT_MESSAGE", "chat_id": "1", "client_id": "1", "message": "text"},
        {"event": "CLIENT_MESSAGE", "chat_id": "1", "client_id": "1", "message": {"text": ""}},
        {"event": "AGENT_MESSAGE", "chat_id": True, "message": {"text": "x"}},
        {"chat_id": "1"},
        ["CLIENT_MESSAGE"],
    ],
)
async def test_malformed_events_are_refused_and_nothing_is_written(
    provider: JivoBotProvider, body: Any
) -> None:
    gateway = MemoryGateway()
    with pytest.raises(MalformedPayload):
        await provider.handle_request(BOT_TOKEN, _inbound(body), gateway)
    assert (gateway.notified, gateway.state, gateway.calls) == ([], {}, [])


async def test_wrong_token_and_unknown_paths(provider: JivoBotProvider) -> None:
    gateway = MemoryGateway()
    request = _inbound(client_message("hi", "ev-1"))
    with pytest.raises(InvalidSignature):
        await provider.handle_request("wrong-token-0123456789", request, gateway)
    with pytest.raises(InvalidSignature):
        await provider.handle_request("", request, gateway)
    with pytest.raises(NotFound):
        await provider.handle_request(f"{BOT_TOKEN}/other", request, gateway)
    get = InboundRequest("GET", {}, {}, b"", None)
    with pytest.raises(NotFound):
        await provider.handle_request(BOT_TOKEN, get, gateway)
    assert gateway.notified == []


async def test_other_events_are_acknowledged(provider: JivoBotProvider) -> None:
    gateway = MemoryGateway()
    reply = await provider.handle_request(
        BOT_TOKEN, _inbound(fixture("invite_agent_accepted")), gateway
    )
    assert reply.status == 200 and gateway.notified == [] and gateway.calls == []


async def test_agent_events_drive_the_handoff(provider: JivoBotProvider) -> None:
    gateway = MemoryGateway(rows={"2037": handoff_row("pending")})
    await provider.handle_request(BOT_TOKEN, _inbound(fixture("agent_message")), gateway)
    await provider.handle_request(BOT_TOKEN, _inbound(fixture("agent_message")), gateway)
    await provider.handle_request(BOT_TOKEN, _inbound(fixture("chat_closed")), gateway)
    assert gateway.calls == [
        ("joined", "conv-9", "Ana Lopez"),
        ("message", "conv-9", "Hi John, I'm on it.", "c7d2e3f5-48b0-11ed-a3d6-859398ff9bd9"),
        ("close", "conv-9", "agent", "closed on jivochat"),
    ]
    assert gateway.notified == []


async def test_an_agent_message_without_text_keeps_its_type(provider: JivoBotProvider) -> None:
    gateway = MemoryGateway(rows={"2037": handoff_row("active")})
    event = fixture("agent_message")
    event["message"] = {"type": "PHOTO", "timestamp": 1665415990}
    await provider.handle_request(BOT_TOKEN, _inbound(event), gateway)
    assert gateway.calls == [("message", "conv-9", "[PHOTO message]", event["id"])]


async def test_agent_events_without_a_handoff_are_forwarded(provider: JivoBotProvider) -> None:
    gateway = MemoryGateway()
    for name in ("agent_joined", "agent_message", "chat_closed"):
        await provider.handle_request(BOT_TOKEN, _inbound(fixture(name)), gateway)
    assert [(n[1], n[2]) for n in gateway.notified] == [
        (BOT_URL, "agent.joined"),
        (BOT_URL, "agent.message"),
        (BOT_URL, "conversation.closed"),
    ]
    assert gateway.notified[0][3]["agent"] == {"name": "Ana Lopez", "id": "501"}
    assert gateway.notified[1][3]["message"]["text"] == "Hi John, I'm on it."
    assert gateway.notified[2][3]["conversation_id"] is None


async def test_no_agent_online_releases_the_handoff_and_tells_the_bot(
    provider: JivoBotProvider,
) -> None:
    gateway = MemoryGateway(rows={"2037": handoff_row("pending")})
    for _ in range(2):
        await provider.handle_request(BOT_TOKEN, _inbound(fixture("agent_unavailable")), gateway)
    assert gateway.calls == [("release", "conv-9", "bot", NO_AGENT_ONLINE)]
    ((_, target, event_type, data),) = gateway.notified
    assert (target, event_type, data["reason"], data["detail"], data["conversation_id"]) == (
        BOT_URL + "/c",
        "handoff.failed",
        "no_agents_online",
        NO_AGENT_ONLINE,
        "conv-9",
    )


async def test_bot_reply_queues_a_bot_message(provider: JivoBotProvider) -> None:
    gateway = MemoryGateway()
    body = {"chat_id": 2037, "client_id": "1233", "text": "Sure.", "id": "r-1"}
    first = await provider.handle_request(f"{BOT_TOKEN}/reply", _inbound(body), gateway)
    again = await provider.handle_request(f"{BOT_TOKEN}/reply", _inbound(body), gateway)
    assert (first.status, again.status, again.body["result"]) == (202, 200, "duplicate")
    assert first.body["id"] == again.body["id"]
    ((chat_id, target, event_type, data),) = gateway.notified
    assert (chat_id, target, event_type) == ("2037 -> jivo", JIVO_TARGET, JIVO_BOT_MESSAGE)
    payload = data["jivo"]
    assert payload["event"] == "BOT_MESSAGE" and payload["id"] == first.body["id"]
    assert (payload["chat_id"], payload["client_id"]) == ("2037", "1233")
    assert payload["message"]["type"] == "TEXT" and payload["message"]["text"] == "Sure."
    assert BOT_TOKEN not in json.dumps(gateway.notified)


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"chat_id": "1", "client_id": "1", "text": ""}, "text"),
        ({"chat_id": "1", "text": "hi"}, "client_id"),
        ({"chat_id": "1", "client_id": "1", "text": "hi", "type": "HTML"}, "type"),
        ({"chat_id": "1", "client_id": "1", "text": "hi", "type": "BUTTONS"}, "(body)"),
    ],
)
async def test_bad_replies_name_the_field(
    provider: JivoBotProvider, body: dict[str, Any], field_name: str
) -> None:
    gateway = MemoryGateway()
    with pytest.raises(InvalidInput) as raised:
        await provider.handle_request(f"{BOT_TOKEN}/reply", _inbound(body), gateway)
    assert field_name in [f.field for f in raised.value.fields]
    assert gateway.notified == []


async def test_buttons_reply(provider: JivoBotProvider) -> None:
    gateway = MemoryGateway()
    body = {
        "chat_id": "2037",
        "client_id": "1233",
        "type": "BUTTONS",
        "title": "Delivery?",
        "text": "Delivery? Yes / No",
        "buttons": [{"text": "Yes", "id": 1}, {"text": "No", "id": 2}],
    }
    await provider.handle_request(f"{BOT_TOKEN}/reply", _inbound(body), gateway)
    message = gateway.notified[0][3]["jivo"]["message"]
    assert message["buttons"] == [{"text": "Yes", "id": "1"}, {"text": "No", "id": "2"}]
    assert message["title"] == "Delivery?"
    assert re.fullmatch(r"\d+", str(message["timestamp"]))
