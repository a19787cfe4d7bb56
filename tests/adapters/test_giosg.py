"""The giosg adapter: options, outbound calls, the kept visitor, webhooks, and the contract."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from adapters.giosg import GiosgAction, GiosgAdapter, GiosgAttachment
from adapters.registry import AGENT_SIDE, build_agent_adapters, build_bot_adapters
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
from tests.adapters.fake_giosg import (
    API_USER,
    ORG,
    ROOM,
    TEAM_OFFLINE,
    TEAM_ONLINE,
    FakeGiosg,
    fixture,
    message_webhook,
)
from tests.adapters.mocking import CompatAioresponses

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "examples" / "giosg.yaml"
TOKEN_ENV = "GIOSG_TEST_API_TOKEN"
SECRET_ENV = "GIOSG_TEST_WEBHOOK_SECRET"
API_TOKEN = "giosg-api-token-6c1f0e9b2d4a"
HOOK_SECRET = "giosg-hook-8d2e4f6a1b3c5d7e"
BASE = "https://service.giosg.com"
CHAT = "9d25ef9d-26ed-40e8-8d74-a6a17039195d"
VISITOR = "8a60b202474547dbb8ce19737e4c166f"
VISITOR_SECRET = "2bc12b9cb90d4faf92141c45d560164584ad030d78cb06f91e"
CHANNEL = "giosg-fi"
REF = ConversationRef(SNAPSHOT.id, CHANNEL, CHAT)
MESSAGE = OutboundMessage(
    3, "customer", "Any news?", "John Doe", datetime(2026, 11, 21, tzinfo=UTC)
)


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, API_TOKEN)
    monkeypatch.setenv(SECRET_ENV, HOOK_SECRET)


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with aiohttp.ClientSession() as session:
        yield HttpClient(session, timeout=5, quick_retries=2)


class MemoryState:
    """An in-memory StateStore, as the bridge's adapter_state table behaves."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}

    async def put_state(self, adapter: str, key: str, value: str) -> None:
        self.values[adapter, key] = value

    async def get_state(self, adapter: str, key: str) -> str | None:
        return self.values.get((adapter, key))

    def kept_visitor(self, chat_id: str = CHAT) -> Any:
        """What the adapter kept for a chat, parsed (None when nothing was)."""
        raw = self.values.get((CHANNEL, f"chat:{chat_id}"))
        return None if raw is None else json.loads(raw)


def make_adapter(
    http: HttpClient, state: MemoryState | None = None, **options: Any
) -> GiosgAdapter:
    raw = {
        "api_token": TOKEN_ENV,
        "webhook_secret": SECRET_ENV,
        "organization_id": ORG,
        "room_id": ROOM,
        **options,
    }
    context = AdapterContext(http, state_store=state if state is not None else MemoryState())
    return GiosgAdapter.from_settings(CHANNEL, raw, context)


def resumable_adapter(http: HttpClient, **options: Any) -> GiosgAdapter:
    """An adapter whose state holds CHAT's visitor, as an open through it would have left."""
    state = MemoryState()
    kept = {"visitor_id": VISITOR, "visitor_secret_id": VISITOR_SECRET}
    state.values[CHANNEL, f"chat:{CHAT}"] = json.dumps(kept)
    return make_adapter(http, state, **options)


def webhook(body: Any, token: str | None = HOOK_SECRET) -> InboundRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboundRequest("POST", {"Content-Type": "application/json"}, {}, raw, token)


def calls(mocked: aioresponses, method: str, url: str) -> list[Any]:
    return list(mocked.requests.get((method, URL(url)), []))


# -- options -----------------------------------------------------------------------------


async def test_options_have_giosg_defaults(http: HttpClient) -> None:
    options = make_adapter(http).options.model_dump()
    assert options["base_url"] == BASE
    assert options["auth_path"] == "/api/v5/public/orgs/{organization_id}/auth"
    assert options["chat_path"] == "/api/v5/orgs/{organization_id}/owned_chats/{chat_id}"
    assert GiosgAdapter.capabilities.history is False
    assert GiosgAdapter.capabilities.availability is True
    assert AGENT_SIDE["giosg"] is GiosgAdapter


@pytest.mark.parametrize(
    ("options", "field", "problem"),
    [
        ({"api_token": "GIOSG_NOT_SET_ANYWHERE"}, "api_token", "is not set"),
        ({"base_url": "service.giosg.com"}, "base_url", "http"),
        ({"visitor_messages_path": "/api/v5/public/chats/{chat_id}"}, "visitor_messages_path", "{"),
        ({"chat_path": "api/v5/chats/{organization_id}/{chat_id}"}, "chat_path", "start with /"),
        ({"team_id": TEAM_ONLINE}, "user_id", "team_id"),
        ({"colour": "blue"}, "colour", "xtra"),
        ({"room_id": ""}, "room_id", "at least 1"),
        # Gone with sealing: the visitor secret is kept in the bridge's database instead.
        ({"sealing_key": TOKEN_ENV}, "sealing_key", "xtra"),
        ({"sealed_variable": "handoff_bridge_key"}, "sealed_variable", "xtra"),
    ],
)
async def test_bad_options_name_the_field(
    http: HttpClient, options: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_adapter(http, **options)
    message = str(caught.value)
    assert f"channels.giosg-fi.options.{field}" in message
    assert problem in message


# -- outbound, against mocked giosg responses ------------------------------------------


def _mock_open(mocked: aioresponses, teams: dict[str, Any] | None = None) -> None:
    mocked.post(f"{BASE}/api/v5/public/orgs/{ORG}/auth", payload=fixture("auth_new_visitor"))
    mocked.post(f"{BASE}/api/v5/public/orgs/{ORG}/rooms/{ROOM}/visitors", status=201)
    mocked.post(
        f"{BASE}/api/v5/orgs/{ORG}/rooms/{ROOM}/visitors/{VISITOR}/variables",
        status=201,
        repeat=True,
    )
    mocked.post(
        f"{BASE}/api/v5/public/orgs/{ORG}/rooms/{ROOM}/visitors/{VISITOR}/chats",
        status=201,
        payload=fixture("chat_created"),
    )
    mocked.get(f"{BASE}/api/v5/orgs/{ORG}/teams", payload=teams or fixture("teams_page"))


async def test_open_makes_a_visitor_with_variables_and_invites_the_online_team(
    http: HttpClient,
) -> None:
    state = MemoryState()
    adapter = make_adapter(http, state, team_id=TEAM_ONLINE, user_id=API_USER)
    invite = f"{BASE}/api/v5/users/{API_USER}/chats/{CHAT}/outgoing_chat_invitations"
    with CompatAioresponses() as mocked:
        _mock_open(mocked)
        mocked.post(invite, status=201)
        result = await adapter.open_conversation(SNAPSHOT)

        assert result.external_ref == CHAT and result.join_url is None
        (auth,) = calls(mocked, "POST", f"{BASE}/api/v5/public/orgs/{ORG}/auth")
        assert auth.kwargs["json"] == {"visitor_secret_id": None}
        assert not auth.kwargs["headers"], "the visitor auth carries no credentials"
        (room,) = calls(mocked, "POST", f"{BASE}/api/v5/public/orgs/{ORG}/rooms/{ROOM}/visitors")
        assert room.kwargs["json"] == {"id": VISITOR}
        token = fixture("auth_new_visitor")["access_token"]
        assert room.kwargs["headers"]["Authorization"] == f"Bearer {token}"
        variables = calls(
            mocked, "POST", f"{BASE}/api/v5/orgs/{ORG}/rooms/{ROOM}/visitors/{VISITOR}/variables"
        )
        assert {c.kwargs["headers"]["Authorization"] for c in variables} == {f"Token {API_TOKEN}"}
        values = {c.kwargs["json"]["key"]: c.kwargs["json"]["value"] for c in variables}
        assert values["username"] == "John Doe"
        assert values["email"] == "john@example.com"
        assert values["customer_id"] == "cust-1"
        assert values["labels"] == "vip"
        assert values["region"] == "en"
        assert (values["plan"], values["order"]) == ("vip", "42")
        assert values["bridge_conversation_id"] == SNAPSHOT.id
        # The visitor secret stays with the bridge: agents see no trace of it on giosg.
        assert "handoff_bridge_key" not in values
        assert VISITOR_SECRET not in json.dumps(values)
        assert state.kept_visitor(CHAT) == {
            "visitor_id": VISITOR,
            "visitor_secret_id": VISITOR_SECRET,
        }
        (invitation,) = calls(mocked, "POST", invite)
        assert invitation.kwargs["json"] == {"invited_team_id": TEAM_ONLINE}
        assert invitation.kwargs["headers"]["Authorization"] == f"Token {API_TOKEN}"


async def test_open_does_not_invite_an_offline_team(http: HttpClient) -> None:
    adapter = make_adapter(http, team_id=TEAM_OFFLINE, user_id=API_USER)
    with CompatAioresponses() as mocked:
        _mock_open(mocked)
        result = await adapter.open_conversation(SNAPSHOT)
        assert result.external_ref == CHAT
        assert not any("outgoing_chat_invitations" in str(url) for _, url in mocked.requests)


async def test_open_with_an_unknown_team_is_rejected(http: HttpClient) -> None:
    adapter = make_adapter(http, team_id="no-such-team", user_id=API_USER)
    with CompatAioresponses() as mocked:
        _mock_open(mocked)
        with pytest.raises(PlatformRejected, match="no-such-team"):
            await adapter.open_conversation(SNAPSHOT)


def _mock_resume(mocked: aioresponses) -> str:
    """The call that gets the kept visitor a fresh token; returns the message URL."""
    mocked.post(f"{BASE}/api/v5/public/orgs/{ORG}/auth", payload=fixture("auth_new_visitor"))
    return f"{BASE}/api/v5/public/visitors/{VISITOR}/chats/{CHAT}/messages"


async def test_post_message_reauthenticates_the_kept_visitor_and_posts_as_it(
    http: HttpClient,
) -> None:
    adapter = resumable_adapter(http)
    with CompatAioresponses() as mocked:
        url = _mock_resume(mocked)
        mocked.post(url, status=201, payload={"id": "m-1"})
        await adapter.post_message(REF, MESSAGE)
        (auth,) = calls(mocked, "POST", f"{BASE}/api/v5/public/orgs/{ORG}/auth")
        assert auth.kwargs["json"] == {"visitor_secret_id": VISITOR_SECRET}
        (post,) = calls(mocked, "POST", url)
        assert post.kwargs["json"] == {"type": "msg", "message": "Any news?"}
        token = fixture("auth_new_visitor")["access_token"]
        assert post.kwargs["headers"]["Authorization"] == f"Bearer {token}"
        # The visitor comes from the bridge's state: no lookups on giosg before posting.
        assert len(mocked.requests) == 2


async def test_client_error_is_rejected_and_not_retried(http: HttpClient) -> None:
    adapter = resumable_adapter(http)
    with CompatAioresponses() as mocked:
        url = _mock_resume(mocked)
        mocked.post(url, status=400, body='{"message": ["This field may not be blank."]}')
        with pytest.raises(PlatformRejected) as caught:
            await adapter.post_message(REF, MESSAGE)
        assert caught.value.status == 400
        assert len(calls(mocked, "POST", url)) == 1


async def test_server_error_is_retried_then_succeeds(http: HttpClient) -> None:
    adapter = resumable_adapter(http)
    with CompatAioresponses() as mocked:
        url = _mock_resume(mocked)
        mocked.post(url, status=503)
        mocked.post(url, status=201, payload={"id": "m-1"})
        await adapter.post_message(REF, MESSAGE)
        assert len(calls(mocked, "POST", url)) == 2


async def test_server_errors_that_persist_are_unavailable(http: HttpClient) -> None:
    adapter = make_adapter(http)
    with CompatAioresponses() as mocked:
        mocked.patch(f"{BASE}/api/v5/orgs/{ORG}/owned_chats/{CHAT}", status=502, repeat=True)
        with pytest.raises(PlatformUnavailable):
            await adapter.close_conversation(REF, "closed by the bot")
        # The first attempt and two quick retries; the relay retries durably after that.
        assert len(calls(mocked, "PATCH", f"{BASE}/api/v5/orgs/{ORG}/owned_chats/{CHAT}")) == 3


async def test_a_wrong_api_token_is_an_auth_error(http: HttpClient) -> None:
    adapter = make_adapter(http)
    with CompatAioresponses() as mocked:
        mocked.patch(
            f"{BASE}/api/v5/orgs/{ORG}/owned_chats/{CHAT}",
            status=401,
            body='{"detail": "Invalid token."}',
        )
        with pytest.raises(PlatformAuthError):
            await adapter.close_conversation(REF, "closed by the bot")


async def test_an_unknown_visitor_secret_is_rejected(http: HttpClient) -> None:
    adapter = resumable_adapter(http)
    with CompatAioresponses() as mocked:
        mocked.post(
            f"{BASE}/api/v5/public/orgs/{ORG}/auth",
            status=400,
            body='{"visitor_secret_id": ["Unknown visitor."]}',
        )
        with pytest.raises(PlatformRejected) as caught:
            await adapter.post_message(REF, MESSAGE)
        assert caught.value.status == 400


async def test_a_chat_with_no_kept_visitor_is_rejected_without_calls(http: HttpClient) -> None:
    # E.g. a chat opened before the visitor was kept in the bridge's state.
    adapter = make_adapter(http, MemoryState())
    with CompatAioresponses() as mocked:
        with pytest.raises(PlatformRejected, match=f"giosg chat {CHAT}: .*keeps no visitor"):
            await adapter.post_message(REF, MESSAGE)
        with pytest.raises(PlatformRejected, match="keeps no visitor"):
            await adapter.post_rich_message(REF, "One more thing", RICH)
        assert not mocked.requests


@pytest.mark.parametrize(
    "kept",
    [
        "not json {hunter2",
        '["hunter2"]',
        '{"visitor_secret_id": "hunter2"}',
        '{"visitor_id": "v-1", "visitor_secret_id": ""}',
        '{"visitor_id": 7, "visitor_secret_id": "hunter2"}',
    ],
)
async def test_a_damaged_kept_visitor_is_rejected_without_showing_it(
    http: HttpClient, kept: str
) -> None:
    state = MemoryState()
    state.values[CHANNEL, f"chat:{CHAT}"] = kept
    adapter = make_adapter(http, state)
    with CompatAioresponses() as mocked:
        with pytest.raises(PlatformRejected, match="damaged") as caught:
            await adapter.post_message(REF, MESSAGE)
        assert not mocked.requests
    assert "hunter2" not in str(caught.value)


async def test_a_kept_secret_that_names_another_visitor_is_rejected(http: HttpClient) -> None:
    state = MemoryState()
    kept = {"visitor_id": "someone-else", "visitor_secret_id": VISITOR_SECRET}
    state.values[CHANNEL, f"chat:{CHAT}"] = json.dumps(kept)
    adapter = make_adapter(http, state)
    with CompatAioresponses() as mocked:
        url = _mock_resume(mocked)
        with pytest.raises(PlatformRejected, match="names another"):
            await adapter.post_message(REF, MESSAGE)
        assert not calls(mocked, "POST", url)


RICH = (
    GiosgAttachment(
        "Was this helpful?",
        (GiosgAction("Yes", "yes"), GiosgAction("Docs", "https://docs.example", "link_button")),
    ),
)


async def test_rich_message_is_sent_with_attachments(http: HttpClient) -> None:
    adapter = resumable_adapter(http)
    with CompatAioresponses() as mocked:
        url = _mock_resume(mocked)
        mocked.post(url, status=201, payload={"id": "m-1"})
        await adapter.post_rich_message(REF, "One more thing", RICH)
        (post,) = calls(mocked, "POST", url)
        assert post.kwargs["json"] == {
            "type": "msg",
            "message": "One more thing",
            "attachments": [
                {
                    "text": "Was this helpful?",
                    "actions": [
                        {"text": "Yes", "type": "button", "value": "yes"},
                        {"text": "Docs", "type": "link_button", "value": "https://docs.example"},
                    ],
                }
            ],
        }


async def test_refused_rich_message_degrades_to_plain_text(http: HttpClient) -> None:
    adapter = resumable_adapter(http)
    with CompatAioresponses() as mocked:
        url = _mock_resume(mocked)
        mocked.post(url, status=400, body='{"attachments": ["Not allowed."]}')
        mocked.post(url, status=201, payload={"id": "m-2"})
        await adapter.post_rich_message(REF, "One more thing", RICH)
        first, second = calls(mocked, "POST", url)
        assert "attachments" in first.kwargs["json"]
        assert second.kwargs["json"] == {
            "type": "msg",
            "message": "One more thing\nWas this helpful?\n[Yes]\nDocs: https://docs.example",
        }


async def test_rich_message_without_rich_content_is_plain(http: HttpClient) -> None:
    adapter = resumable_adapter(http)
    with CompatAioresponses() as mocked:
        url = _mock_resume(mocked)
        mocked.post(url, status=201, payload={"id": "m-3"})
        await adapter.post_rich_message(REF, "Just text", (GiosgAttachment(),))
        (post,) = calls(mocked, "POST", url)
        assert post.kwargs["json"] == {"type": "msg", "message": "Just text"}


async def test_rich_message_auth_errors_are_not_swallowed(http: HttpClient) -> None:
    adapter = resumable_adapter(http)
    with CompatAioresponses() as mocked:
        url = _mock_resume(mocked)
        mocked.post(url, status=403, body='{"detail": "Not this visitor."}')
        with pytest.raises(PlatformAuthError):
            await adapter.post_rich_message(REF, "One more thing", RICH)
        assert len(calls(mocked, "POST", url)) == 1


async def test_close_ends_the_chat(http: HttpClient) -> None:
    adapter = make_adapter(http)
    url = f"{BASE}/api/v5/orgs/{ORG}/owned_chats/{CHAT}"
    with CompatAioresponses() as mocked:
        mocked.patch(url, payload={"id": CHAT, "is_ended": True})
        await adapter.close_conversation(REF, "closed by the bot")
        (call,) = calls(mocked, "PATCH", url)
        assert call.kwargs["json"] == {"is_ended": True}
        assert call.kwargs["headers"]["Authorization"] == f"Token {API_TOKEN}"


async def test_a_conversation_without_a_chat_is_rejected(http: HttpClient) -> None:
    adapter = make_adapter(http)
    with pytest.raises(PlatformRejected, match="no giosg chat"):
        await adapter.post_message(dataclasses.replace(REF, external_ref=None), MESSAGE)


async def test_link_router_updates_the_room_settings(http: HttpClient) -> None:
    adapter = make_adapter(http)
    url = f"{BASE}/api/v5/orgs/{ORG}/rooms/room-2/settings"
    with CompatAioresponses() as mocked:
        mocked.patch(url, payload={"router_id": "router-1"})
        mocked.patch(url, payload={"router_id": None})
        await adapter.link_router("room-2", "router-1")
        await adapter.link_router("room-2", None)
        assert [c.kwargs["json"] for c in calls(mocked, "PATCH", url)] == [
            {"router_id": "router-1"},
            {"router_id": None},
        ]


@pytest.mark.parametrize(("team", "expected"), [(TEAM_ONLINE, True), (TEAM_OFFLINE, False)])
async def test_availability_is_the_team_is_online(
    http: HttpClient, team: str, expected: bool
) -> None:
    adapter = make_adapter(http, team_id=team, user_id=API_USER)
    with CompatAioresponses() as mocked:
        mocked.get(f"{BASE}/api/v5/orgs/{ORG}/teams", payload=fixture("teams_page"))
        assert await adapter.check_availability() is expected


async def test_availability_without_a_team_is_unknown(http: HttpClient) -> None:
    adapter = make_adapter(http)
    with CompatAioresponses() as mocked:
        assert await adapter.check_availability() is None
        assert not mocked.requests


async def test_listing_follows_next_pages_on_the_same_host(http: HttpClient) -> None:
    adapter = make_adapter(http, team_id=TEAM_OFFLINE, user_id=API_USER)
    online, offline = fixture("teams_page")["results"]
    with CompatAioresponses() as mocked:
        mocked.get(
            f"{BASE}/api/v5/orgs/{ORG}/teams",
            payload={"next": f"/api/v5/orgs/{ORG}/teams?page=2", "results": [online]},
        )
        mocked.get(
            f"{BASE}/api/v5/orgs/{ORG}/teams?page=2", payload={"next": None, "results": [offline]}
        )
        assert await adapter.check_availability() is False


async def test_listing_never_follows_next_to_another_host(http: HttpClient) -> None:
    adapter = make_adapter(http, team_id=TEAM_OFFLINE, user_id=API_USER)
    with CompatAioresponses() as mocked:
        mocked.get(
            f"{BASE}/api/v5/orgs/{ORG}/teams",
            payload={"next": "https://evil.example/steal?page=2", "results": []},
        )
        with pytest.raises(PlatformRejected, match="another host"):
            await adapter.check_availability()
        assert len(mocked.requests) == 1


# -- inbound -----------------------------------------------------------------------------


def test_agent_message_webhook_becomes_agent_message(http: HttpClient) -> None:
    adapter = make_adapter(http)
    (event,) = adapter.parse_inbound(webhook(fixture("webhook_user_message")))
    assert event.kind == "agent.message"
    assert event.event_id == "5b4d1e2f-8a3c-4f7e-9d61-2c0b7a9e4f13"
    assert event.external_ref == CHAT
    assert event.text == "Hi John, I'm Ana. Let me check your order."
    assert (event.agent_id, event.agent_name) == ("7c94ae79-a4b4-4eea-ac23-24c16f910080", "Ana")


def test_visitor_message_is_our_echo_and_dropped(http: HttpClient) -> None:
    adapter = make_adapter(http)
    assert adapter.parse_inbound(webhook(fixture("webhook_visitor_message"))) == []


@pytest.mark.parametrize(
    ("name", "event_id"),
    [
        ("webhook_user_join", "c3f0e9a1-6d2b-4a8e-b7c5-1f9d0e2a3b46"),
        ("webhook_membership_added", f"{CHAT}:member:7c94ae79-a4b4-4eea-ac23-24c16f910080"),
        ("webhook_chat_user_present", f"{CHAT}:present"),
    ],
)
def test_an_agent_joining_becomes_agent_joined(http: HttpClient, name: str, event_id: str) -> None:
    adapter = make_adapter(http)
    (event,) = adapter.parse_inbound(webhook(fixture(name)))
    assert (event.kind, event.event_id, event.external_ref) == ("agent.joined", event_id, CHAT)


def test_an_ended_chat_becomes_conversation_closed(http: HttpClient) -> None:
    adapter = make_adapter(http)
    (event,) = adapter.parse_inbound(webhook(fixture("webhook_chat_ended")))
    assert (event.kind, event.event_id, event.external_ref) == (
        "conversation.closed",
        f"{CHAT}:ended",
        CHAT,
    )


def test_other_webhooks_carry_no_events(http: HttpClient) -> None:
    adapter = make_adapter(http)
    edited = fixture("webhook_user_message")
    edited.update(action="changed", resource={"message": "edited"})
    leave = fixture("webhook_user_join")
    leave["resource"]["type"] = "leave"
    unrelated = {**fixture("webhook_chat_added"), "channel": f"/api/v5/orgs/{ORG}/leads"}
    for body in (fixture("webhook_chat_added"), edited, leave, unrelated):
        assert adapter.parse_inbound(webhook(body)) == [], body


def test_redelivery_has_the_same_event_ids(http: HttpClient) -> None:
    adapter = make_adapter(http)
    for name in ("webhook_user_message", "webhook_chat_ended", "webhook_chat_user_present"):
        request = webhook(fixture(name))
        first = [e.event_id for e in adapter.parse_inbound(request)]
        assert first and first == [e.event_id for e in adapter.parse_inbound(request)]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        [1, 2],
        {**fixture("webhook_user_message"), "action": "created"},
        {k: v for k, v in fixture("webhook_user_message").items() if k != "channel"},
        {k: v for k, v in fixture("webhook_user_message").items() if k != "resource_id"},
        {**fixture("webhook_user_message"), "resource": "msg"},
        {**fixture("webhook_user_message"), "resource": {"id": "m", "message": "hi"}},
        {**fixture("webhook_chat_ended"), "resource": {"is_ended": "yes"}},
        {
            **fixture("webhook_chat_user_present"),
            "resource": {"present_user_participant_count": "1"},
        },
    ],
)
def test_malformed_webhooks_are_refused(http: HttpClient, body: Any) -> None:
    adapter = make_adapter(http)
    with pytest.raises(MalformedPayload):
        adapter.parse_inbound(webhook(body))


@pytest.mark.parametrize("token", [None, "", "giosg-hook-wrong", HOOK_SECRET + "x"])
def test_a_wrong_url_secret_is_refused(http: HttpClient, token: str | None) -> None:
    adapter = make_adapter(http)
    with pytest.raises(InvalidSignature):
        adapter.verify_inbound(webhook(fixture("webhook_user_message"), token))
    adapter.verify_inbound(webhook(fixture("webhook_user_message")))


# -- the shared contract, against the fake giosg -----------------------------------------


class GiosgHarness(Harness):
    """The adapter wired to a fake giosg server."""

    def __init__(self, adapter: GiosgAdapter, fake: FakeGiosg) -> None:
        self.adapter = adapter
        self.fake = fake

    def sent_texts(self) -> list[str]:
        return self.fake.sent_texts()

    def received_links(self) -> str:
        buttons = [
            action["value"]
            for received in self.fake.received
            for attachment in received.body.get("attachments", [])
            for action in attachment["actions"]
        ]
        return "\n".join([*self.sent_texts(), *buttons])

    def closed(self) -> bool:
        return any(chat.is_ended for chat in self.fake.chats.values())

    def message_keys(self) -> None:
        """giosg's message API takes `{type, message}` (and attachments), no client id."""
        return None

    def agent_message_webhook(
        self, external_ref: str, text: str, message_id: str
    ) -> InboundRequest:
        return webhook(message_webhook(external_ref, text, message_id))

    def echo_webhook(self, external_ref: str, text: str) -> InboundRequest:
        visitor = self.fake.chats[external_ref].visitor_id
        return webhook(
            message_webhook(external_ref, text, sender_type="visitor", sender_id=visitor)
        )

    def unauthenticated(self, request: InboundRequest) -> InboundRequest:
        return dataclasses.replace(request, path_token="not-the-secret")


@pytest.fixture
async def fake() -> AsyncIterator[FakeGiosg]:
    # One item a page, so every lookup walks `next` links.
    async with FakeGiosg(api_token=API_TOKEN, page_size=1) as platform:
        yield platform


class TestGiosgContract(AgentSideContract):
    """The shared agent-side contract, against the fake giosg."""

    @pytest.fixture
    def harness(self, http: HttpClient, fake: FakeGiosg) -> GiosgHarness:
        adapter = make_adapter(http, base_url=fake.url, team_id=TEAM_ONLINE, user_id=API_USER)
        return GiosgHarness(adapter, fake)


async def test_posting_survives_expired_visitor_tokens(
    http: HttpClient, fake: FakeGiosg, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    state = MemoryState()
    adapter = make_adapter(http, state, base_url=fake.url, team_id=TEAM_ONLINE, user_id=API_USER)
    opened = await adapter.open_conversation(SNAPSHOT)
    ref = dataclasses.replace(REF, external_ref=opened.external_ref)
    chat = fake.only_chat()
    secret = fake.visitors[chat.visitor_id].secret
    # The visitor is kept with the bridge under the bare chat id, and nowhere on giosg.
    assert state.kept_visitor(opened.external_ref) == {
        "visitor_id": chat.visitor_id,
        "visitor_secret_id": secret,
    }
    variables = fake.visitors[chat.visitor_id].variables
    assert variables["username"] == "John Doe"
    assert "handoff_bridge_key" not in variables
    assert secret not in json.dumps(variables)
    fake.join_agent(opened.external_ref)
    fake.expire_tokens()
    fake.calls.clear()
    await adapter.post_message(ref, MESSAGE)
    assert fake.sent_texts() == ["Any news?"]
    # A post is a fresh token for the kept visitor, then the message: nothing else.
    assert fake.called() == [
        ("POST", f"/api/v5/public/orgs/{ORG}/auth"),
        ("POST", f"/api/v5/public/visitors/{chat.visitor_id}/chats/{chat.id}/messages"),
    ]
    assert chat.invited_teams == [TEAM_ONLINE]
    assert caplog.records, "the adapter logs its open"
    assert not [r for r in caplog.records if secret in repr(vars(r)) or secret in r.getMessage()]


async def test_refused_attachments_reach_the_fake_as_text(
    http: HttpClient, fake: FakeGiosg
) -> None:
    adapter = make_adapter(http, base_url=fake.url)
    opened = await adapter.open_conversation(SNAPSHOT)
    ref = dataclasses.replace(REF, external_ref=opened.external_ref)
    fake.reject_attachments = True
    await adapter.post_rich_message(ref, "Rate us", RICH)
    assert fake.sent_texts() == ["Rate us\nWas this helpful?\n[Yes]\nDocs: https://docs.example"]


# -- the example configuration ---------------------------------------------------------


async def test_example_config_loads_and_builds(
    http: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIOSG_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("GIOSG_WEBHOOK_SECRET", HOOK_SECRET)
    settings = load_settings(EXAMPLE)
    assert settings.default_channel == "support"
    context = AdapterContext(http)
    adapters = build_agent_adapters(settings, context)
    assert isinstance(adapters["support"], GiosgAdapter)
    assert {name for name, a in adapters.items() if a.platform == "console"} == {
        "support-sv",
        "console",
    }
    assert "webhook" in build_bot_adapters(settings, context)
    text = EXAMPLE.read_text(encoding="utf-8")
    assert re.search(r"/webhooks/support/<value of GIOSG_WEBHOOK_SECRET>", text)
    monkeypatch.delenv("GIOSG_WEBHOOK_SECRET")
    with pytest.raises(ConfigError, match=r"channels\.support\.options\.webhook_secret"):
        build_agent_adapters(load_settings(EXAMPLE), context)


async def test_customer_files_are_link_buttons_or_link_lines(
    http: HttpClient, fake: FakeGiosg
) -> None:
    """Each file is an attachment with one link button; refused, a `name: url` line."""
    adapter = make_adapter(http, base_url=fake.url)
    opened = await adapter.open_conversation(SNAPSHOT)
    ref = dataclasses.replace(REF, external_ref=opened.external_ref)
    shot = Attachment(url="https://f.example/s.png", name="s.png", mime_type="image/png")
    sent_at = datetime.now(UTC)
    await adapter.post_message(ref, OutboundMessage(5, "customer", "Look", None, sent_at, (shot,)))
    assert fake.received[-1].body["attachments"] == [
        {"actions": [{"text": "s.png", "type": "link_button", "value": shot.url}]}
    ]
    fake.reject_attachments = True
    await adapter.post_message(ref, OutboundMessage(6, "customer", "", None, sent_at, (shot,)))
    assert fake.sent_texts()[-1] == "s.png: https://f.example/s.png"
