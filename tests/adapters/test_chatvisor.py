"""The Chatvisor adapter: options, outbound calls, webhooks, polling, agents, and the contract."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from adapters.chatvisor import ChatvisorAdapter
from adapters.chatvisor.cursor import PollCursor, Tracked
from adapters.registry import AGENT_SIDE, build_agent_adapters, build_bot_adapters
from bridge.errors import (
    ConfigError,
    InvalidSignature,
    MalformedPayload,
    PlatformAuthError,
    PlatformRejected,
)
from bridge.ports.agent_side import ConversationRef, InboundRequest, OutboundMessage
from bridge.ports.context import AdapterContext
from bridge.ports.http import HttpClient
from bridge.settings import load_settings
from tests.adapters.contract import HISTORY, SNAPSHOT, AgentSideContract, Harness
from tests.adapters.fake_chatvisor import API_TOKEN, WEBHOOK_TOKEN, FakeChatvisor
from tests.adapters.mocking import CompatAioresponses

FIXTURES = Path(__file__).parent / "fixtures" / "chatvisor"
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "chatvisor.yaml"
BASE = "https://cv.test"
CUSTOMER_URL = re.compile(r"^https://cv\.test/rest/v1/customer(\?.*)?$")


def fixture(name: str) -> Any:
    """A payload shaped like Chatvisor's, from tests/adapters/fixtures/chatvisor/."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def webhook(body: Any, token: str | None = WEBHOOK_TOKEN) -> InboundRequest:
    """A webhook as the bridge receives it at /webhooks/{channel}/{token}."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboundRequest("POST", {}, {}, raw, path_token=token)


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CV_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("CV_WEBHOOK_TOKEN", WEBHOOK_TOKEN)


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with aiohttp.ClientSession() as session:
        yield HttpClient(session, timeout=5, quick_retries=2)


def make_adapter(http: HttpClient, base_url: str = BASE, **options: Any) -> ChatvisorAdapter:
    raw = {"api_token": "CV_API_TOKEN", "webhook_token": "CV_WEBHOOK_TOKEN", "base_url": base_url}
    return ChatvisorAdapter.from_settings("cv", {**raw, **options}, AdapterContext(http))


@pytest.fixture
def adapter(http: HttpClient) -> ChatvisorAdapter:
    return make_adapter(http)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with CompatAioresponses() as mock:
        yield mock


def calls(mock: aioresponses, method: str, url: str) -> list[Any]:
    """The requests aioresponses saw for one method and URL (query string excluded)."""
    return [
        call
        for (m, u), items in mock.requests.items()
        for call in items
        if m == method and str(u).split("?")[0] == url
    ]


REF = ConversationRef(SNAPSHOT.id, "cv", "cv-cust-1")

# -- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"base_url": "ftp://cv.test"}, "base_url"),
        ({"message_path": "/rest/v1/message"}, "message_path"),
        ({"tag_path": "rest/v1/customer/tag"}, "tag_path"),
        ({"default_assignee": "u-1", "team_id": "t-1"}, "team_id"),
        ({"poll_interval_seconds": -1}, "poll_interval_seconds"),
        ({"poll_page_size": 0}, "poll_page_size"),
        ({"webhook_url": "x"}, "webhook_url"),
        ({"api_token": "CV_NOT_SET"}, "api_token"),
    ],
)
def test_a_bad_option_is_a_startup_error_naming_the_field(
    http: HttpClient, override: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=rf"channels\.cv\.options\.{field}"):
        make_adapter(http, **override)


def test_a_missing_secret_names_its_environment_variable(
    http: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CV_WEBHOOK_TOKEN")
    with pytest.raises(ConfigError, match=r"webhook_token.*CV_WEBHOOK_TOKEN is not set"):
        make_adapter(http)


def test_polling_is_off_unless_an_interval_is_set(http: HttpClient) -> None:
    assert make_adapter(http).poll_interval() is None
    assert make_adapter(http, poll_interval_seconds=0).poll_interval() is None
    assert make_adapter(http, poll_interval_seconds=2.5).poll_interval() == 2.5
    assert ChatvisorAdapter.capabilities.polling and ChatvisorAdapter.capabilities.join_url


def test_the_adapter_is_registered() -> None:
    assert AGENT_SIDE["chatvisor"] is ChatvisorAdapter


# -- outbound ------------------------------------------------------------------------------


async def test_open_tags_the_customer_and_returns_the_agent_url(
    adapter: ChatvisorAdapter, mocked: aioresponses
) -> None:
    mocked.post(f"{BASE}/rest/v1/customer/tag", payload=fixture("tag_response"))
    agent_url = f"{BASE}/rest/v1/customer/cv-cust-1/agenturl"
    mocked.post(agent_url, payload=fixture("agent_url_response"))

    opened = await adapter.open_conversation(SNAPSHOT)

    assert opened.external_ref == "cv-cust-1"
    assert opened.join_url == fixture("agent_url_response")["url"]
    (tag,) = calls(mocked, "POST", f"{BASE}/rest/v1/customer/tag")
    assert tag.kwargs["json"] == {
        "email": "john@example.com",
        "firstname": "John",
        "id": "cust-1",
        "labels": ["vip"],
        "lastname": "Doe",
    }
    assert tag.kwargs["headers"]["Authorization"] == f"Bearer {API_TOKEN}"
    assert len(calls(mocked, "POST", agent_url)) == 1
    assert not calls(mocked, "POST", f"{BASE}/rest/v1/customer/cv-cust-1/assign")


async def test_open_without_an_id_in_the_answer_keys_the_customer_by_ours(
    adapter: ChatvisorAdapter, mocked: aioresponses
) -> None:
    mocked.post(f"{BASE}/rest/v1/customer/tag", body="", status=204)
    mocked.post(f"{BASE}/rest/v1/customer/cust-1/agenturl", body="https://cv.test/j/1")
    opened = await adapter.open_conversation(SNAPSHOT)
    assert (opened.external_ref, opened.join_url) == ("cust-1", "https://cv.test/j/1")


async def test_open_without_an_agent_url_falls_back_to_the_bridge_link(
    adapter: ChatvisorAdapter, mocked: aioresponses
) -> None:
    mocked.post(f"{BASE}/rest/v1/customer/tag", payload=fixture("tag_response"))
    mocked.post(f"{BASE}/rest/v1/customer/cv-cust-1/agenturl", payload={"status": "ok"})
    opened = await adapter.open_conversation(SNAPSHOT)
    assert (opened.external_ref, opened.join_url) == ("cv-cust-1", None)


@pytest.mark.parametrize(
    ("options", "settings", "body"),
    [
        ({"team_id": "team-a"}, {}, {"teamId": "team-a"}),
        ({"default_assignee": "u-1"}, {}, {"userId": "u-1"}),
        ({"team_id": "team-a"}, {"default_assignee": 17}, {"userId": "17"}),
        ({}, {"team_id": "team-b"}, {"teamId": "team-b"}),
    ],
)
async def test_open_assigns_to_a_user_or_a_team(
    http: HttpClient,
    mocked: aioresponses,
    options: dict[str, Any],
    settings: dict[str, Any],
    body: dict[str, str],
) -> None:
    adapter = make_adapter(http, **options)
    mocked.post(f"{BASE}/rest/v1/customer/tag", payload=fixture("tag_response"))
    mocked.post(f"{BASE}/rest/v1/customer/cv-cust-1/assign", payload={})
    mocked.post(f"{BASE}/rest/v1/customer/cv-cust-1/agenturl", payload={"url": f"{BASE}/j"})
    await adapter.open_conversation(dataclasses.replace(SNAPSHOT, settings=settings))
    (assign,) = calls(mocked, "POST", f"{BASE}/rest/v1/customer/cv-cust-1/assign")
    assert assign.kwargs["json"] == body


async def test_open_refuses_a_user_and_a_team_at_once(
    adapter: ChatvisorAdapter, mocked: aioresponses
) -> None:
    mocked.post(f"{BASE}/rest/v1/customer/tag", payload=fixture("tag_response"))
    both = dataclasses.replace(SNAPSHOT, settings={"team_id": "t", "default_assignee": "u"})
    with pytest.raises(PlatformRejected, match="mutually exclusive"):
        await adapter.open_conversation(both)


async def test_post_message_and_close_send_the_assumed_shapes(
    adapter: ChatvisorAdapter, mocked: aioresponses
) -> None:
    mocked.post(f"{BASE}/rest/v1/customer/cv-cust-1/message", payload={"id": "m-1"})
    mocked.put(f"{BASE}/rest/v1/customer/cv-cust-1/status", payload={})
    await adapter.post_message(REF, HISTORY[1])
    await adapter.close_conversation(REF, "closed by the bot")
    (post,) = calls(mocked, "POST", f"{BASE}/rest/v1/customer/cv-cust-1/message")
    assert post.kwargs["json"] == {
        "text": "Let me get a person.",
        "sender": {"type": "BOT", "name": "Bot"},
        "externalId": f"handoff-bridge:{SNAPSHOT.id}:2",
        "source": "handoff-bridge",
    }
    (close,) = calls(mocked, "PUT", f"{BASE}/rest/v1/customer/cv-cust-1/status")
    assert close.kwargs["json"] == {"status": "DONE"}


async def test_a_message_before_the_open_is_rejected(adapter: ChatvisorAdapter) -> None:
    with pytest.raises(PlatformRejected, match="no Chatvisor customerId"):
        await adapter.post_message(dataclasses.replace(REF, external_ref=None), HISTORY[0])


async def test_a_client_error_is_rejected_and_not_retried(
    adapter: ChatvisorAdapter, mocked: aioresponses
) -> None:
    url = f"{BASE}/rest/v1/customer/cv-cust-1/message"
    mocked.post(url, status=400, body='{"error": "text too long"}', repeat=True)
    with pytest.raises(PlatformRejected, match="400") as caught:
        await adapter.post_message(REF, HISTORY[0])
    assert not isinstance(caught.value, PlatformAuthError)
    assert len(calls(mocked, "POST", url)) == 1


async def test_a_wrong_api_key_is_an_auth_error(
    adapter: ChatvisorAdapter, mocked: aioresponses
) -> None:
    mocked.put(f"{BASE}/rest/v1/customer/cv-cust-1/status", status=401, repeat=True)
    with pytest.raises(PlatformAuthError):
        await adapter.close_conversation(REF, "x")
    assert len(calls(mocked, "PUT", f"{BASE}/rest/v1/customer/cv-cust-1/status")) == 1


async def test_a_server_error_is_retried(adapter: ChatvisorAdapter, mocked: aioresponses) -> None:
    url = f"{BASE}/rest/v1/customer/cv-cust-1/message"
    mocked.post(url, status=503)
    mocked.post(url, payload={"id": "m-1"})
    await adapter.post_message(REF, HISTORY[0])
    assert len(calls(mocked, "POST", url)) == 2


# -- webhooks ------------------------------------------------------------------------------


def test_the_webhook_token_is_checked(adapter: ChatvisorAdapter) -> None:
    body = fixture("webhook_message_agent")
    adapter.verify_inbound(webhook(body))
    for token in (None, "", "cv-hook-secret-7f3b", WEBHOOK_TOKEN + "x"):
        with pytest.raises(InvalidSignature):
            adapter.verify_inbound(webhook(body, token))


def test_an_agent_message_becomes_agent_message_with_a_stable_id(
    adapter: ChatvisorAdapter,
) -> None:
    request = webhook(fixture("webhook_message_agent"))
    (event,) = adapter.parse_inbound(request)
    assert (event.kind, event.external_ref, event.text) == (
        "agent.message",
        "cv-cust-1",
        "Hi John, I'm Ana. Let me check your order.",
    )
    assert (event.agent_id, event.agent_name) == ("u-7", "Ana Silva")
    assert adapter.parse_inbound(request)[0].event_id == event.event_id == "chatvisor:msg:m-101"


def test_a_message_with_a_status_of_its_own_is_still_a_message(
    adapter: ChatvisorAdapter,
) -> None:
    sent = {**fixture("webhook_message_agent"), "status": "SENT"}
    assert [e.kind for e in adapter.parse_inbound(webhook(sent))] == ["agent.message"]


@pytest.mark.parametrize(
    "name",
    [
        "webhook_message_customer",
        "webhook_message_echo",
        "webhook_new_conversation",
        "webhook_new_subscriber",
    ],
)
def test_what_is_not_an_agent_event_is_dropped(adapter: ChatvisorAdapter, name: str) -> None:
    assert adapter.parse_inbound(webhook(fixture(name))) == []


def test_done_closes_with_an_id_stable_per_change(adapter: ChatvisorAdapter) -> None:
    done = fixture("webhook_status_done")
    (event,) = adapter.parse_inbound(webhook(done))
    assert (event.kind, event.external_ref) == ("conversation.closed", "cv-cust-1")
    assert adapter.parse_inbound(webhook(done))[0].event_id == event.event_id
    later = {**done, "lastMessage": {**done["lastMessage"], "timestamp": 1763719999000}}
    assert adapter.parse_inbound(webhook(later))[0].event_id != event.event_id
    unresolved = {**done, "status": "UNRESOLVED"}
    assert adapter.parse_inbound(webhook(unresolved)) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not valid JSON"),
        ([1, 2], "must be a JSON object"),
        ({"foo": "bar"}, "no status, text or id"),
        ({"customerId": "c", "status": "OPEN"}, "status"),
        ({"status": "DONE"}, "customerId"),
        ({"id": "m-1", "customerId": "c", "text": "hi", "direction": "SIDEWAYS"}, "direction"),
        ({"customerId": "c", "text": "hi", "direction": "OUT"}, "id"),
    ],
)
def test_a_payload_not_of_the_documented_shape_is_malformed(
    adapter: ChatvisorAdapter, body: Any, problem: str
) -> None:
    with pytest.raises(MalformedPayload, match=problem):
        adapter.parse_inbound(webhook(body))


# -- agents and visibility -----------------------------------------------------------------


async def test_agents_presence_and_availability(
    adapter: ChatvisorAdapter, mocked: aioresponses
) -> None:
    mocked.get(f"{BASE}/rest/v1/user", payload=fixture("users"), repeat=True)
    events = await adapter.agent_presence()
    assert [(e.kind, e.agent_id, e.agent_name, e.presence) for e in events] == [
        ("agent.presence", "u-7", "Ana Silva", "online"),
        ("agent.presence", "u-8", "Ben Okafor", "absent"),
        ("agent.presence", "u-9", "Chen Li", "offline"),
    ]
    assert await adapter.check_availability() is True


async def test_nobody_online_means_unavailable(
    adapter: ChatvisorAdapter, mocked: aioresponses
) -> None:
    mocked.get(f"{BASE}/rest/v1/user", payload={"results": [{"id": 1, "online": False}]})
    assert await adapter.check_availability() is False


async def test_chat_visibility_is_set(adapter: ChatvisorAdapter, mocked: aioresponses) -> None:
    mocked.put(f"{BASE}/rest/v1/chat/visibility", payload={})
    await adapter.set_chat_visibility(False)
    (call,) = calls(mocked, "PUT", f"{BASE}/rest/v1/chat/visibility")
    assert call.kwargs["json"] == {"visible": False}


# -- polling against the fake platform -----------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatvisor]:
    async with FakeChatvisor() as platform:
        yield platform


async def _opened(adapter: ChatvisorAdapter, customer: str = "cust-1") -> str:
    snapshot = dataclasses.replace(SNAPSHOT, customer={**SNAPSHOT.customer, "id": customer})
    ref = (await adapter.open_conversation(snapshot)).external_ref
    await adapter.post_history(ConversationRef(SNAPSHOT.id, "cv", ref), HISTORY)
    return ref


async def test_polling_reports_agent_messages_and_closes_once(
    http: HttpClient, fake: FakeChatvisor
) -> None:
    adapter = make_adapter(http, fake.url, poll_interval_seconds=1)
    cursor: str | None = None
    events, cursor = await adapter.poll(cursor)
    assert events == []  # the first poll takes a baseline

    cid = await _opened(adapter)
    events, cursor = await adapter.poll(cursor)
    assert events == []  # our own history is no agent's message

    message = fake.agent_writes(cid, "Hi, Ana here.")
    before = cursor
    events, cursor = await adapter.poll(cursor)
    assert [(e.kind, e.event_id, e.external_ref, e.text, e.agent_name) for e in events] == [
        ("agent.message", f"chatvisor:msg:{message['id']}", cid, "Hi, Ana here.", "Ana Silva")
    ]
    # A poll that failed to store its cursor repeats the same events (applied once).
    assert (await adapter.poll(before))[0] == events
    assert (await adapter.poll(cursor))[0] == []

    fake.agent_writes(cid, "Anything else?")
    fake.set_status(cid, "DONE")
    events, cursor = await adapter.poll(cursor)
    assert [(e.kind, e.text) for e in events] == [
        ("agent.message", "Anything else?"),
        ("conversation.closed", None),
    ]
    assert (await adapter.poll(cursor))[0] == []


async def test_a_customer_first_seen_done_is_not_closed(
    http: HttpClient, fake: FakeChatvisor
) -> None:
    adapter = make_adapter(http, fake.url)
    _, cursor = await adapter.poll(None)
    cid = await _opened(adapter)
    fake.agent_writes(cid, "old reply")
    fake.set_status(cid, "DONE")
    assert (await adapter.poll(cursor))[0] == []


async def test_polling_reads_every_page_and_survives_a_bad_cursor(
    http: HttpClient, fake: FakeChatvisor
) -> None:
    adapter = make_adapter(http, fake.url, poll_page_size=2)
    _, cursor = await adapter.poll("{definitely not a cursor")
    ids = [await _opened(adapter, f"cust-{i}") for i in range(5)]
    for cid in ids:
        fake.agent_writes(cid, f"reply to {cid}")
    events, cursor = await adapter.poll(cursor)
    assert sorted(e.external_ref or "" for e in events) == sorted(ids)
    pages = [p for p in fake.paths("GET") if p == "/rest/v1/customer"]
    assert len(pages) == 1 + 3  # the baseline's empty page, then pages of 2, 2 and 1
    assert set(json.loads(cursor or "")["open"]) == set(ids)


def test_a_cursor_forgets_customers_missing_from_complete_scans() -> None:
    cursor = PollCursor(fresh=False, open={"cv-gone": Tracked("UNREAD", "m-1")})
    for _ in range(2):
        cursor.advance([], complete=False)
    assert "cv-gone" in cursor.open  # incomplete scans prove nothing
    for _ in range(3):
        cursor.advance([], complete=True)
    assert "cv-gone" not in cursor.open


async def test_polling_can_sync_presence(http: HttpClient, fake: FakeChatvisor) -> None:
    fake.users = fixture("users")
    adapter = make_adapter(http, fake.url, sync_presence_on_poll=True)
    events, _ = await adapter.poll(None)
    assert [e.presence for e in events] == ["online", "absent", "offline"]


async def test_a_customer_list_of_another_shape_is_rejected(
    adapter: ChatvisorAdapter, mocked: aioresponses
) -> None:
    mocked.get(CUSTOMER_URL, payload={"customers": []})
    with pytest.raises(PlatformRejected, match="customer list"):
        await adapter.poll(None)


# -- the example configuration -------------------------------------------------------------


async def test_the_example_config_loads_and_builds(
    monkeypatch: pytest.MonkeyPatch, http: HttpClient
) -> None:
    monkeypatch.setenv("CHATVISOR_API_TOKEN", "key-1")
    monkeypatch.setenv("CHATVISOR_WEBHOOK_TOKEN", "hook-1")
    settings = load_settings(EXAMPLE)
    context = AdapterContext(http)
    adapters = build_agent_adapters(settings, context)
    assert {name: a.platform for name, a in adapters.items()} == {
        "support": "chatvisor",
        "support-de": "console",
        "console": "console",
    }
    support = adapters["support"]
    assert isinstance(support, ChatvisorAdapter)
    assert support.poll_interval() == 5
    assert "webhook" in build_bot_adapters(settings, context)
    monkeypatch.delenv("CHATVISOR_API_TOKEN")
    with pytest.raises(ConfigError, match=r"channels\.support\.options\.api_token"):
        build_agent_adapters(settings, context)


# -- the shared contract, against the fake platform ----------------------------------------


@dataclasses.dataclass
class ChatvisorHarness(Harness):
    """The adapter wired to a fake Chatvisor."""

    adapter: ChatvisorAdapter  # type: ignore[misc]
    fake: FakeChatvisor

    def sent_texts(self) -> list[str]:
        return self.fake.texts()

    def closed(self) -> bool:
        return any(status == "DONE" for _, status in self.fake.statuses)

    def message_keys(self) -> list[str | None]:
        # The bridge's posts, as `sent_texts` lists them.
        return [m.get("externalId") for m in self.fake.messages if m.get("source")]

    def agent_message_webhook(
        self, external_ref: str, text: str, message_id: str
    ) -> InboundRequest:
        message = self.fake.agent_writes(external_ref, text, message_id=message_id)
        return webhook(message)

    def echo_webhook(self, external_ref: str, text: str) -> InboundRequest:
        # The worst case: Chatvisor sends our post back as written by the API's user,
        # keeping the externalId and source the adapter put on it.
        posted = [m for m in self.fake.messages if m["text"] == text and m.get("source")]
        ours = (
            posted[-1]
            if posted
            else {
                "id": "m-echo",
                "customerId": external_ref,
                "text": text,
                "externalId": f"handoff-bridge:{SNAPSHOT.id}:3",
                "source": "handoff-bridge",
            }
        )
        return webhook({**ours, "direction": "OUT", "user": {"id": "api", "name": "API"}})

    def unauthenticated(self, request: InboundRequest) -> InboundRequest:
        return dataclasses.replace(request, path_token="cv-hook-secret-guess")


class TestChatvisorContract(AgentSideContract):
    """The shared agent-side contract."""

    @pytest.fixture
    def harness(self, http: HttpClient, fake: FakeChatvisor) -> ChatvisorHarness:
        return ChatvisorHarness(make_adapter(http, fake.url), fake)

    async def test_the_echo_of_a_live_post_is_dropped(self, harness: ChatvisorHarness) -> None:
        opened = await harness.adapter.open_conversation(SNAPSHOT)
        assert opened.join_url and opened.join_url.startswith(harness.fake.url)
        ref = ConversationRef(SNAPSHOT.id, "cv", opened.external_ref)
        live = OutboundMessage(3, "customer", "Any news?", None, HISTORY[0].sent_at)
        await harness.adapter.post_message(ref, live)
        request = harness.echo_webhook(opened.external_ref, "Any news?")
        assert json.loads(request.body)["id"] == harness.fake.messages[-1]["id"]
        assert harness.adapter.parse_inbound(request) == []
