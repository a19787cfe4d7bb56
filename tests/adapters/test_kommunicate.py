"""Kommunicate adapter: outbound calls, the webhook, the shared contract, the example config."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aioresponses import aioresponses

from adapters.kommunicate import KommunicateAdapter
from adapters.kommunicate.inbound import MESSAGE_ID_KEY, ORIGIN_KEY, ORIGIN_VALUE
from adapters.registry import build_agent_adapters, build_bot_adapters
from bridge.attachments import Attachment
from bridge.errors import (
    ConfigError,
    InvalidSignature,
    MalformedPayload,
    PlatformAuthError,
    PlatformRejected,
    PlatformUnavailable,
)
from bridge.ports.agent_side import ConversationRef, InboundRequest, OutboundMessage
from bridge.ports.context import AdapterContext
from bridge.ports.http import HttpClient
from bridge.settings import load_settings
from tests.adapters.contract import SNAPSHOT, AgentSideContract, Harness
from tests.adapters.fake_kommunicate import FakeKommunicate, basic
from tests.adapters.mocking import CompatAioresponses

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "kommunicate"
EXAMPLE = ROOT / "config" / "examples" / "kommunicate.yaml"
API_KEY = "km-test-api-key"
TOKEN = "km-test-webhook-token"
BASE = "https://services.kommunicate.io"
CREATE = f"{BASE}/rest/ws/group/conversation"
SEND = f"{BASE}/rest/ws/message/v2/send"
ASSIGN = re.compile(r"^https://services\.kommunicate\.io/rest/ws/group/assignee/change\?.*$")
STATUS = re.compile(r"^https://services\.kommunicate\.io/rest/ws/group/status/change\?.*$")
GROUP = "81000001"
REF = ConversationRef(SNAPSHOT.id, "support", f"{GROUP}:customer-cust-1")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def options(**extra: Any) -> dict[str, Any]:
    return {"api_key": "KOMMUNICATE_API_KEY", "webhook_token": "KOMMUNICATE_WEBHOOK_TOKEN", **extra}


def message(role: str, text: str, seq: int = 3) -> OutboundMessage:
    return OutboundMessage(seq, role, text, None, datetime(2026, 11, 21, 10, 5, tzinfo=UTC))


def webhook(body: Any, headers: dict[str, str] | None = None) -> InboundRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if headers is None:
        headers = {"Authentication": basic(TOKEN)}
    return InboundRequest("POST", headers, {}, raw)


def calls(km: aioresponses, method: str, url: str) -> list[dict[str, Any]]:
    """The keyword arguments of each request made with `method` to a URL starting with `url`."""
    return [
        call.kwargs
        for (verb, target), made in km.requests.items()
        if verb == method and str(target).startswith(url)
        for call in made
    ]


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOMMUNICATE_API_KEY", API_KEY)
    monkeypatch.setenv("KOMMUNICATE_WEBHOOK_TOKEN", TOKEN)


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with ClientSession() as session:
        yield HttpClient(session, timeout=5, quick_retries=2)


@pytest.fixture
def km() -> Iterator[aioresponses]:
    with CompatAioresponses() as mocked:
        yield mocked


def adapter(http: HttpClient, **extra: Any) -> KommunicateAdapter:
    return KommunicateAdapter.from_settings("support", options(**extra), AdapterContext(http))


# -- options -----------------------------------------------------------------------------


async def test_a_missing_secret_is_a_startup_error_naming_the_option(http: HttpClient) -> None:
    with pytest.raises(ConfigError) as error:
        adapter(http)
    assert "channels.support.options.api_key" in str(error.value)
    assert "KOMMUNICATE_API_KEY" in str(error.value)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"base_url": "services.kommunicate.io"}, "base_url"),
        ({"send_message_path": "rest/ws/message/v2/send"}, "send_message_path"),
        ({"dashboard_url": "https://dashboard.kommunicate.io/conversations"}, "dashboard_url"),
        ({"group_name": "{nickname}"}, "group_name"),
        ({"resolved_status": 9}, "resolved_status"),
        ({"default_agent_ids": "ana@example.com"}, "default_agent_ids"),
        ({"tenant": "acme"}, "tenant"),
    ],
)
async def test_a_bad_option_is_a_startup_error_naming_it(
    secrets: None, http: HttpClient, bad: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=rf"channels\.support\.options\.{field}:"):
        adapter(http, **bad)


async def test_defaults_are_kommunicates_documented_urls(secrets: None, http: HttpClient) -> None:
    opts = adapter(http, team_id=12345).options
    assert opts.base_url == BASE
    assert opts.create_conversation_path == "/rest/ws/group/conversation"
    assert opts.send_message_path == "/rest/ws/message/v2/send"
    assert opts.status_change_path == "/rest/ws/group/status/change"
    assert opts.team_id == "12345"
    assert opts.api_key.get_secret_value() == API_KEY
    assert API_KEY not in repr(opts)


# -- opening -----------------------------------------------------------------------------

KOMMUNICATE_SPELLING = {
    "defaultAgentIds": ["ana@example.com"],
    "defaultBotIds": ["faq-bot"],
    "defaultAssignee": "ana@example.com",
    "skipRouting": True,
    "teamId": 12345,
    "conversationMetadata": {"topic": "delivery"},
    "KM_CHAT_CONTEXT": {"lang": "en"},
}
SNAKE_SPELLING = {
    "default_agent_ids": ["ana@example.com"],
    "default_bot_ids": ["faq-bot"],
    "default_assignee": "ana@example.com",
    "skip_routing": True,
    "team_id": 12345,
    "conversation_metadata": {"topic": "delivery"},
    "chat_context": {"lang": "en"},
}


@pytest.mark.parametrize("settings", [KOMMUNICATE_SPELLING, SNAKE_SPELLING], ids=["km", "snake"])
async def test_open_creates_the_group_with_members_routing_and_assignee(
    secrets: None, http: HttpClient, km: aioresponses, settings: dict[str, Any]
) -> None:
    km.post(CREATE, payload=load("create_conversation_response.json"))
    km.patch(ASSIGN, payload=load("assignee_change_response.json"))
    snapshot = dataclasses.replace(SNAPSHOT, channel="support", settings=settings)

    result = await adapter(http).open_conversation(snapshot)

    assert result.external_ref == f"{GROUP}:customer-cust-1"
    assert result.join_url == f"https://dashboard.kommunicate.io/conversations/{GROUP}"
    [create] = calls(km, "POST", CREATE)
    assert create["headers"]["Api-Key"] == API_KEY
    body = create["json"]
    assert body["groupName"] == "John Doe"
    assert body["groupMemberList"] == ["customer-cust-1", "ana@example.com", "faq-bot"]
    assert body["clientGroupId"] == SNAPSHOT.id
    metadata = body["metadata"]
    assert {k: metadata[k] for k in ("SKIP_ROUTING", "KM_TEAM_ID", "CONVERSATION_ASSIGNEE")} == {
        "SKIP_ROUTING": "true",
        "KM_TEAM_ID": "12345",
        "CONVERSATION_ASSIGNEE": "ana@example.com",
    }
    # Shown to the agent: the handoff's metadata plus the settings' conversationMetadata.
    assert json.loads(metadata["conversationMetadata"]) == {
        "plan": "vip",
        "order": 42,
        "topic": "delivery",
    }
    assert json.loads(metadata["KM_CHAT_CONTEXT"]) == {"lang": "en"}
    assert all(isinstance(value, str) for value in metadata.values())
    [assign] = calls(km, "PATCH", f"{BASE}/rest/ws/group/assignee/change")
    assert assign["params"] == {
        "groupId": GROUP,
        "assignee": "ana@example.com",
        "sendNotifyMessage": "true",
        "takeOverFromBot": "true",
    }
    assert assign["headers"] == {"Api-Key": API_KEY, "Of-User-Id": "bot"}


async def test_channel_defaults_apply_and_the_handoff_overrides_them(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    km.post(CREATE, payload=load("create_conversation_response.json"))
    km.post(CREATE, payload=load("create_conversation_response.json"))
    channel = adapter(
        http,
        default_agent_ids=["lead@example.com"],
        default_bot_ids=["faq-bot"],
        team_id=7,
        group_name="{customer_name} ({channel})",
    )
    await channel.open_conversation(SNAPSHOT)
    # A single id where a list goes (as the Web SDK takes it); an empty list inherits.
    overridden = dataclasses.replace(
        SNAPSHOT, settings={"agentIds": "ana@example.com", "teamId": "9", "botIds": []}
    )
    await channel.open_conversation(overridden)

    first, second = (c["json"] for c in calls(km, "POST", CREATE))
    assert first["groupName"] == "John Doe (ch)"
    assert first["groupMemberList"] == ["customer-cust-1", "lead@example.com", "faq-bot"]
    assert first["metadata"]["KM_TEAM_ID"] == "7"
    assert "SKIP_ROUTING" not in first["metadata"]
    assert second["groupMemberList"] == ["customer-cust-1", "ana@example.com", "faq-bot"]
    assert second["metadata"]["KM_TEAM_ID"] == "9"
    assert calls(km, "PATCH", BASE) == []


async def test_the_bridges_merged_settings_leave_unset_keys_to_the_channel(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    km.post(CREATE, payload=load("create_conversation_response.json"))
    km.patch(ASSIGN, payload=load("assignee_change_response.json"))
    channel = adapter(
        http,
        default_agent_ids=["lead@example.com"],
        default_assignee="lead@example.com",
        skip_routing=True,
        team_id="7",
    )
    # What the bridge passes when the handoff set only the bot events and the welcome
    # message: every key present, the unset ones empty or false.
    merged = {
        "default_agent_ids": [],
        "default_bot_ids": [],
        "default_assignee": None,
        "skip_routing": False,
        "skip_bot_events": ["WELCOME_EVENT"],
        "team_id": None,
        "welcome_message": "An agent will be with you shortly.",
    }
    await channel.open_conversation(dataclasses.replace(SNAPSHOT, settings=merged))

    [create] = calls(km, "POST", CREATE)
    assert create["json"]["groupMemberList"] == ["customer-cust-1", "lead@example.com"]
    metadata = create["json"]["metadata"]
    assert (metadata["SKIP_ROUTING"], metadata["KM_TEAM_ID"]) == ("true", "7")
    assert metadata["CONVERSATION_ASSIGNEE"] == "lead@example.com"
    assert json.loads(metadata["SKIP_BOT_EVENT"]) == ["WELCOME_EVENT"]
    assert metadata["WELCOME_MESSAGE"] == "An agent will be with you shortly."
    [assign] = calls(km, "PATCH", f"{BASE}/rest/ws/group/assignee/change")
    assert assign["params"]["assignee"] == "lead@example.com"


async def test_skip_bot_event_as_json_text_as_kommunicates_example_gives_it(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    km.post(CREATE, payload=load("create_conversation_response.json"))
    snapshot = dataclasses.replace(SNAPSHOT, settings={"skipBotEvent": '["WELCOME_EVENT"]'})
    await adapter(http).open_conversation(snapshot)
    [create] = calls(km, "POST", CREATE)
    assert create["json"]["metadata"]["SKIP_BOT_EVENT"] == '["WELCOME_EVENT"]'


async def test_an_assignee_without_skip_routing_is_left_to_kommunicates_rules(
    secrets: None, http: HttpClient, km: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    km.post(CREATE, payload=load("create_conversation_response.json"))
    snapshot = dataclasses.replace(SNAPSHOT, settings={"defaultAssignee": "ana@example.com"})
    with caplog.at_level(logging.WARNING):
        await adapter(http).open_conversation(snapshot)
    [create] = calls(km, "POST", CREATE)
    assert "CONVERSATION_ASSIGNEE" not in create["json"]["metadata"]
    assert calls(km, "PATCH", BASE) == []
    assert "kommunicate.assignee_ignored" in caplog.messages


async def test_skip_routing_from_the_channel_and_text_true_from_the_widget_example(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    km.post(CREATE, payload=load("create_conversation_response.json"))
    km.patch(ASSIGN, payload=load("assignee_change_response.json"))
    # The seed's startConversation example passes "skipRouting": "true" as text.
    snapshot = dataclasses.replace(
        SNAPSHOT, settings={"skipRouting": "true", "assignee": "faq-bot"}
    )
    await adapter(http, notify_on_assign=False).open_conversation(snapshot)
    [create] = calls(km, "POST", CREATE)
    assert create["json"]["metadata"]["SKIP_ROUTING"] == "true"
    assert "faq-bot" in create["json"]["groupMemberList"]
    [assign] = calls(km, "PATCH", f"{BASE}/rest/ws/group/assignee/change")
    assert assign["params"]["sendNotifyMessage"] == "false"


async def test_bad_settings_are_refused_before_any_call(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    snapshot = dataclasses.replace(
        SNAPSHOT,
        settings={
            "defaultAgentIds": {"ana": 1},
            "skipRouting": "perhaps",
            "skipBotEvent": "[WELCOME",
        },
    )
    with pytest.raises(PlatformRejected) as error:
        await adapter(http).open_conversation(snapshot)
    for field in ("defaultAgentIds", "skipRouting", "skipBotEvent"):
        assert f"settings.{field}" in str(error.value)
    assert km.requests == {}


async def test_a_create_answer_without_a_group_id_is_refused(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    km.post(CREATE, payload={"status": "success", "response": {"name": "John Doe"}})
    with pytest.raises(PlatformRejected, match="no conversation id"):
        await adapter(http).open_conversation(SNAPSHOT)


# -- messages and close ------------------------------------------------------------------


async def test_messages_go_out_from_their_original_author_marked_as_ours(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    km.post(SEND, payload=load("send_message_response.json"), repeat=True)
    channel = adapter(http, bot_user_id="handoff-bot")
    await channel.post_message(REF, message("customer", "Where is my order?", 1))
    await channel.post_message(REF, message("bot", "Let me get a person.", 2))

    customer, bot = calls(km, "POST", SEND)
    assert customer["json"] == {
        "groupId": GROUP,
        "message": "Where is my order?",
        "fromUserName": "customer-cust-1",
        "metadata": {ORIGIN_KEY: ORIGIN_VALUE, MESSAGE_ID_KEY: f"{SNAPSHOT.id}:1"},
    }
    assert customer["headers"] == {"Api-Key": API_KEY}
    assert bot["json"]["fromUserName"] == "handoff-bot"
    assert bot["json"]["metadata"][MESSAGE_ID_KEY] == f"{SNAPSHOT.id}:2"


async def test_a_customer_file_goes_as_a_link_line_after_the_text(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    km.post(SEND, payload=load("send_message_response.json"))
    shot = Attachment(url="https://files.example/s.png", name="s.png", mime_type="image/png")
    with_file = dataclasses.replace(message("customer", "It fails here"), attachments=(shot,))
    await adapter(http).post_message(REF, with_file)
    [sent] = calls(km, "POST", SEND)
    assert sent["json"]["message"] == "It fails here\ns.png: https://files.example/s.png"


async def test_a_send_whose_answer_was_lost_is_repeated_under_the_same_message_id(
    secrets: None,
) -> None:
    # Kommunicate stores the message, the answer never arrives, the send is repeated: by
    # the quick retry, then by the relay after a restart. Kommunicate documents no
    # deduplication, so it shows every copy; each names the same bridge message.
    async with FakeKommunicate(api_key=API_KEY, webhook_token=TOKEN) as fake:
        async with ClientSession() as session:
            context = AdapterContext(HttpClient(session, timeout=5, quick_retries=1))
            channel = KommunicateAdapter.from_settings("ch", options(base_url=fake.url), context)
            opened = await channel.open_conversation(SNAPSHOT)
            ref = ConversationRef(SNAPSHOT.id, "ch", opened.external_ref)
            fake.lost.lose_next()
            await channel.post_message(ref, message("customer", "Any news?", 7))
            restarted = KommunicateAdapter.from_settings("ch", options(base_url=fake.url), context)
            await restarted.post_message(ref, message("customer", "Any news?", 7))
            await channel.post_message(ref, message("customer", "Hello?", 8))
    assert fake.lost.lost == 1
    assert fake.texts() == ["Any news?", "Any news?", "Any news?", "Hello?"]
    assert fake.message_ids() == [f"{SNAPSHOT.id}:7"] * 3 + [f"{SNAPSHOT.id}:8"]


async def test_a_client_error_is_rejected_and_not_retried(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    km.post(SEND, status=400, payload=load("error_response.json"), repeat=True)
    with pytest.raises(PlatformRejected) as error:
        await adapter(http).post_message(REF, message("customer", "Any news?"))
    assert not isinstance(error.value, PlatformUnavailable)
    assert error.value.status == 400
    assert len(calls(km, "POST", SEND)) == 1


async def test_a_bad_api_key_is_an_auth_error(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    km.post(SEND, status=401, payload={"status": "error", "response": "AUTHENTICATION_FAILED"})
    with pytest.raises(PlatformAuthError):
        await adapter(http).post_message(REF, message("customer", "Any news?"))


async def test_an_error_inside_a_2xx_answer_is_rejected(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    km.post(SEND, payload=load("error_response.json"))
    with pytest.raises(PlatformRejected, match="AL-G-01"):
        await adapter(http).post_message(REF, message("customer", "Any news?"))


async def test_a_server_error_is_retried(secrets: None, http: HttpClient, km: aioresponses) -> None:
    km.post(SEND, status=500, body="busy")
    km.post(SEND, payload=load("send_message_response.json"))
    await adapter(http).post_message(REF, message("customer", "Any news?"))
    assert len(calls(km, "POST", SEND)) == 2


async def test_a_server_error_that_persists_is_unavailable(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    km.post(SEND, status=503, body="down", repeat=True)
    with pytest.raises(PlatformUnavailable):
        await adapter(http).post_message(REF, message("customer", "Any news?"))
    # quick_retries=2: the first try and two more; the relay retries later, durably.
    assert len(calls(km, "POST", SEND)) == 3


async def test_close_resolves_the_conversation_acting_as_the_configured_user(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    km.patch(STATUS, payload=load("status_change_response.json"))
    await adapter(http, acting_user_id="admin@example.com").close_conversation(REF, "closed")
    [close] = calls(km, "PATCH", f"{BASE}/rest/ws/group/status/change")
    assert close["params"] == {"groupId": GROUP, "status": "2"}
    assert close["headers"] == {"Api-Key": API_KEY, "Of-User-Id": "admin@example.com"}


async def test_a_conversation_never_opened_there_is_refused(
    secrets: None, http: HttpClient, km: aioresponses
) -> None:
    never = ConversationRef(SNAPSHOT.id, "support", None)
    with pytest.raises(PlatformRejected, match="no Kommunicate group"):
        await adapter(http).post_message(never, message("customer", "Hello?"))
    assert adapter(http).join_url(never) is None
    assert km.requests == {}


async def test_join_url_is_the_configured_dashboard_link(secrets: None, http: HttpClient) -> None:
    channel = adapter(http, dashboard_url="https://km.example.com/c/{groupId}?tab=info")
    assert channel.join_url(REF) == f"https://km.example.com/c/{GROUP}?tab=info"


# -- the webhook -------------------------------------------------------------------------


async def test_the_documented_agent_message_becomes_an_agent_message(
    secrets: None, http: HttpClient
) -> None:
    channel = adapter(http)
    request = webhook(load("webhook_agent_message.json"))
    channel.verify_inbound(request)
    [event] = channel.parse_inbound(request)
    assert (event.kind, event.event_id) == ("agent.message", "5-81000001-1763719230000")
    assert event.conversation_id == SNAPSHOT.id
    assert (event.agent_id, event.agent_name) == ("ana@example.com", None)
    assert event.text == "Hi John, I'm Ana. Let me check your order."
    # A redelivery carries the same key, so the bridge applies it once.
    assert [e.event_id for e in channel.parse_inbound(request)] == [event.event_id]
    named = adapter(http, agent_name="Support team").parse_inbound(request)
    assert named[0].agent_name == "Support team"


def _with(name: str, **changes: Any) -> dict[str, Any]:
    return {**load(name), **changes}


@pytest.mark.parametrize(
    "body",
    [
        load("webhook_echo.json"),
        # The bridge's marker on a message sent as the bot: still ours.
        _with("webhook_echo.json", **{"from": "bot"}),
        # The customer's user writing from elsewhere (no marker): not an agent.
        _with("webhook_agent_message.json", **{"from": "customer-cust-1"}),
        _with("webhook_agent_message.json", **{"from": "bot"}),
        _with("webhook_agent_message.json", **{"from": "faq-bot"}),
        _with("webhook_agent_message.json", **{"from": "routing-bot"}),
        load("webhook_system_notice.json"),
        _with("webhook_agent_message.json", message="   "),
    ],
    ids=[
        "echo",
        "echo-as-bot",
        "customer",
        "bot-user",
        "default-bot",
        "ignored",
        "system",
        "empty",
    ],
)
async def test_echoes_and_messages_not_from_agents_are_dropped(
    secrets: None, http: HttpClient, body: dict[str, Any]
) -> None:
    channel = adapter(http, default_bot_ids=["faq-bot"], ignored_senders=["routing-bot"])
    request = webhook(body)
    channel.verify_inbound(request)
    assert channel.parse_inbound(request) == []


async def test_an_agents_file_is_an_attachment_of_the_message(
    secrets: None, http: HttpClient
) -> None:
    [event] = adapter(http).parse_inbound(webhook(load("webhook_attachment.json")))
    assert (event.kind, event.text) == ("agent.message", "")
    assert [a.model_dump() for a in event.attachments] == [
        {
            "url": "https://files.kommunicate.example/rest/ws/aws/file/AMIfv94",
            "name": "invoice-42.pdf",
            "mime_type": "application/pdf",
            "size": 28150,
        }
    ]


async def test_a_file_kommunicate_describes_badly_is_not_relayed_as_one(
    secrets: None, http: HttpClient
) -> None:
    """A file without a usable link is no attachment; with no text it is no message."""
    body = load("webhook_attachment.json")
    body["file"]["url"] = "javascript:alert(1)"
    assert adapter(http).parse_inbound(webhook(body)) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Authentication": basic(TOKEN)},
        {"authentication": basic(TOKEN)},
        {"Authentication": "basic " + basic(TOKEN).split()[1]},
        {"Authorization": basic(TOKEN)},
    ],
    ids=["documented", "lowercase-name", "lowercase-scheme", "authorization"],
)
async def test_the_webhook_token_is_accepted(
    secrets: None, http: HttpClient, headers: dict[str, str]
) -> None:
    adapter(http).verify_inbound(webhook(load("webhook_agent_message.json"), headers))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authentication": basic("not-the-token")},
        {"Authentication": "Bearer " + basic(TOKEN).split()[1]},
        {"Authentication": TOKEN},
        {"Authentication": "Basic " + TOKEN},
    ],
    ids=["missing", "wrong-token", "bearer", "raw-token", "unencoded"],
)
async def test_a_wrong_or_missing_token_is_refused(
    secrets: None, http: HttpClient, headers: dict[str, str]
) -> None:
    with pytest.raises(InvalidSignature):
        adapter(http).verify_inbound(webhook(load("webhook_agent_message.json"), headers))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "not valid JSON"),
        ([load("webhook_agent_message.json")], "JSON object"),
        (_with("webhook_agent_message.json", key=None), "'key'"),
        (_with("webhook_agent_message.json", **{"from": ""}), "'from'"),
        (_with("webhook_agent_message.json", groupId=True), "'groupId'"),
        (_with("webhook_agent_message.json", message=5), "'message'"),
        (_with("webhook_agent_message.json", metadata="x"), "'metadata'"),
    ],
)
async def test_a_payload_not_of_the_documented_shape_is_malformed(
    secrets: None, http: HttpClient, body: Any, problem: str
) -> None:
    with pytest.raises(MalformedPayload, match=problem):
        adapter(http).parse_inbound(webhook(body))


# -- the shared contract, against the fake platform --------------------------------------


class KommunicateHarness(Harness):
    """The adapter wired to a FakeKommunicate."""

    def __init__(self, adapter: KommunicateAdapter, fake: FakeKommunicate) -> None:
        self.adapter = adapter
        self.fake = fake

    def sent_texts(self) -> list[str]:
        return self.fake.texts()

    def closed(self) -> bool:
        return any(change["status"] == "2" for change in self.fake.status_changes)

    def message_keys(self) -> list[str | None]:
        return self.fake.message_ids()

    def agent_message_webhook(
        self, external_ref: str, text: str, message_id: str
    ) -> InboundRequest:
        group = external_ref.split(":", 1)[0]
        body = self.fake.webhook_payload(group, text, sender="ana@example.com", key=message_id)
        return webhook(body)

    def echo_webhook(self, external_ref: str, text: str) -> InboundRequest:
        group, customer_user = external_ref.split(":", 1)
        sent = [
            m for m in self.fake.messages if m["groupId"] == int(group) and m["message"] == text
        ]
        if sent:
            return webhook(self.fake.echo_payload(sent[-1]))
        # Not posted in this test: the echo of it as the customer, as the adapter posts it.
        marker = {ORIGIN_KEY: ORIGIN_VALUE}
        return webhook(
            self.fake.webhook_payload(group, text, sender=customer_user, metadata=marker)
        )

    def unauthenticated(self, request: InboundRequest) -> InboundRequest:
        return dataclasses.replace(request, headers={"Authentication": basic("wrong-token")})


class TestKommunicateContract(AgentSideContract):
    @pytest.fixture
    async def harness(self, secrets: None) -> AsyncIterator[KommunicateHarness]:
        async with FakeKommunicate(api_key=API_KEY, webhook_token=TOKEN) as fake:
            async with ClientSession() as session:
                context = AdapterContext(HttpClient(session, timeout=5, quick_retries=0))
                channel = KommunicateAdapter.from_settings(
                    "ch", options(base_url=fake.url), context
                )
                yield KommunicateHarness(channel, fake)

    async def test_the_fake_saw_the_group_and_the_authors(
        self, harness: KommunicateHarness
    ) -> None:
        await self._open(harness)
        group = harness.fake.group(SNAPSHOT.id)
        assert group is not None and group.name == "John Doe"
        assert [m["fromUserName"] for m in harness.fake.messages] == ["customer-cust-1", "bot"]

    async def test_opening_twice_gives_the_same_group(self, harness: KommunicateHarness) -> None:
        first = await harness.adapter.open_conversation(SNAPSHOT)
        again = await harness.adapter.open_conversation(SNAPSHOT)
        assert first.external_ref == again.external_ref
        assert len(harness.fake.groups) == 1


# -- the example configuration -----------------------------------------------------------


async def test_the_example_config_loads_and_builds_its_adapters(secrets: None) -> None:
    settings = load_settings(EXAMPLE)
    assert settings.channels["support"].platform == "kommunicate"
    async with ClientSession() as session:
        context = AdapterContext(HttpClient(session, timeout=5, quick_retries=0))
        agents = build_agent_adapters(settings, context)
        bots = build_bot_adapters(settings, context)
    support = agents["support"]
    assert isinstance(support, KommunicateAdapter)
    assert support.options.skip_routing and support.options.team_id == "12345"
    assert {agents[name].platform for name in ("mysite", "mysite-en", "mysite-es")} == {"console"}
    assert "webhook" in bots


async def test_the_example_config_names_a_missing_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KOMMUNICATE_API_KEY", raising=False)
    monkeypatch.setenv("KOMMUNICATE_WEBHOOK_TOKEN", TOKEN)
    settings = load_settings(EXAMPLE)
    async with ClientSession() as session:
        context = AdapterContext(HttpClient(session, timeout=5, quick_retries=0))
        with pytest.raises(ConfigError, match=r"channels\.support\.options\.api_key"):
            build_agent_adapters(settings, context)
