"""The shared contract every agent-side adapter passes, against its platform's fake server.

An adapter's test module subclasses `AgentSideContract` and provides a `harness`
fixture: the adapter wired to a fake platform (a real aiohttp app on port 0), plus
webhook requests shaped like the platform's documented payloads.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.attachments import Attachment
from bridge.errors import InvalidSignature
from bridge.ports.agent_side import (
    AgentSideAdapter,
    ConversationRef,
    ConversationSnapshot,
    InboundRequest,
    OutboundMessage,
)

HISTORY = (
    OutboundMessage(
        1, "customer", "Where is my order?", "John Doe", datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    ),
    OutboundMessage(
        2, "bot", "Let me get a person.", "Bot", datetime(2026, 11, 21, 10, 0, 2, tzinfo=UTC)
    ),
)

SNAPSHOT = ConversationSnapshot(
    id="0b6f7a52-0000-4000-8000-000000000001",
    channel="ch",
    main_channel="ch",
    region="en",
    customer={
        "id": "cust-1",
        "email": "john@example.com",
        "firstname": "John",
        "lastname": "Doe",
        "labels": ["vip"],
    },
    metadata={"plan": "vip", "order": 42},
    settings={},
    history=HISTORY,
)


class Harness(ABC):
    """An adapter under test and its fake platform."""

    adapter: AgentSideAdapter

    @abstractmethod
    def sent_texts(self) -> list[str]:
        """Every message text the fake platform received, in order (history included)."""

    def received_links(self) -> str:
        """Everything the fake platform received that can hold a file's link: the texts by
        default (`name: url` lines); platforms with file messages add their link fields."""
        return "\n".join(self.sent_texts())

    @abstractmethod
    def closed(self) -> bool:
        """Whether the fake platform saw the conversation closed."""

    @abstractmethod
    def message_keys(self) -> list[str | None] | None:
        """The client message id the platform kept with each message, in order (as
        `sent_texts`); None when the platform's message API takes no such id."""

    @abstractmethod
    def agent_message_webhook(
        self, external_ref: str, text: str, message_id: str
    ) -> InboundRequest:
        """A correctly authenticated webhook of an agent's message, as the platform sends it."""

    @abstractmethod
    def echo_webhook(self, external_ref: str, text: str) -> InboundRequest:
        """The platform's webhook echoing a message the bridge itself posted."""

    @abstractmethod
    def unauthenticated(self, request: InboundRequest) -> InboundRequest:
        """The same webhook with a wrong secret or signature."""


@dataclass
class Opened:
    ref: ConversationRef


class AgentSideContract:
    """Behaviour every agent-side adapter must show. Subclass and provide `harness`."""

    @pytest.fixture
    def harness(self) -> Any:  # pragma: no cover - provided by each adapter's module
        raise NotImplementedError

    async def _open(self, harness: Harness) -> ConversationRef:
        result = await harness.adapter.open_conversation(SNAPSHOT)
        assert result.external_ref, "open_conversation must return the platform's id"
        ref = ConversationRef(SNAPSHOT.id, SNAPSHOT.channel, result.external_ref)
        if not harness.adapter.capabilities.history:
            await harness.adapter.post_history(ref, HISTORY)
        return ref

    async def test_open_carries_the_history(self, harness: Harness) -> None:
        await self._open(harness)
        texts = harness.sent_texts()
        assert [m.text for m in HISTORY] == [t for t in texts if t in {m.text for m in HISTORY}]

    async def test_customer_message_reaches_the_platform(self, harness: Harness) -> None:
        if not harness.adapter.capabilities.messages:
            pytest.skip(f"{harness.adapter.platform} takes no relayed messages (capabilities)")
        ref = await self._open(harness)
        message = OutboundMessage(3, "customer", "Any news?", "John Doe", datetime.now(UTC))
        await harness.adapter.post_message(ref, message)
        assert harness.sent_texts()[-1] == "Any news?"

    async def test_a_customer_file_reaches_the_platform(self, harness: Harness) -> None:
        # As the platform's own file message, or as a `name: url` line: either way the
        # agent can open it. The bridge passes the link on and never fetches it.
        if not harness.adapter.capabilities.messages:
            pytest.skip(f"{harness.adapter.platform} takes no relayed messages (capabilities)")
        ref = await self._open(harness)
        shot = Attachment(url="https://files.example/s.png", name="s.png", mime_type="image/png")
        message = OutboundMessage(4, "customer", "", "John Doe", datetime.now(UTC), (shot,))
        await harness.adapter.post_message(ref, message)
        assert shot.url in harness.received_links()

    async def test_a_repeated_post_names_the_same_message(self, harness: Harness) -> None:
        # What the platform sees when the first answer was lost (a timeout after it stored
        # the message, or the bridge killed before recording the send) and the relay
        # sends again: the same post twice. Where the API takes a client message id, both
        # attempts must carry the same one, and no other message may carry it.
        if not harness.adapter.capabilities.messages:
            pytest.skip(f"{harness.adapter.platform} takes no relayed messages (capabilities)")
        ref = await self._open(harness)
        earlier = harness.message_keys()
        if earlier is None:
            pytest.skip(f"{harness.adapter.platform}'s message API takes no client message id")
        message = OutboundMessage(3, "customer", "Any news?", "John Doe", datetime.now(UTC))
        await harness.adapter.post_message(ref, message)
        await harness.adapter.post_message(ref, message)
        keys = harness.message_keys()
        assert keys is not None
        attempts = keys[len(earlier) :]
        assert harness.sent_texts()[-len(attempts) :] == ["Any news?"] * len(attempts)
        assert attempts and attempts[0] and set(attempts) == {attempts[0]}
        assert attempts[0] not in earlier

    async def test_close(self, harness: Harness) -> None:
        ref = await self._open(harness)
        await harness.adapter.close_conversation(ref, "closed by the bot")
        assert harness.closed()

    async def test_agent_message_webhook_is_parsed(self, harness: Harness) -> None:
        caps = harness.adapter.capabilities
        if not (caps.inbound and caps.messages):
            pytest.skip(f"{harness.adapter.platform} relays no agent messages (capabilities)")
        ref = await self._open(harness)
        assert ref.external_ref is not None
        request = harness.agent_message_webhook(ref.external_ref, "Hi, I'm Ana.", "pm-1")
        harness.adapter.verify_inbound(request)
        events = harness.adapter.parse_inbound(request)
        messages = [e for e in events if e.kind == "agent.message"]
        assert len(messages) == 1
        assert messages[0].text == "Hi, I'm Ana."
        assert messages[0].external_ref == ref.external_ref or messages[0].conversation_id
        # A redelivery carries the same id, so the bridge applies it once.
        again = harness.adapter.parse_inbound(request)
        assert [e.event_id for e in again if e.kind == "agent.message"] == [messages[0].event_id]

    async def test_echo_of_our_own_message_is_dropped(self, harness: Harness) -> None:
        caps = harness.adapter.capabilities
        if not (caps.inbound and caps.messages):
            pytest.skip(f"{harness.adapter.platform} relays no agent messages (capabilities)")
        ref = await self._open(harness)
        assert ref.external_ref is not None
        request = harness.echo_webhook(ref.external_ref, "Any news?")
        harness.adapter.verify_inbound(request)
        assert [
            e for e in harness.adapter.parse_inbound(request) if e.kind == "agent.message"
        ] == []

    async def test_wrong_secret_is_refused(self, harness: Harness) -> None:
        if not harness.adapter.capabilities.inbound:
            pytest.skip(f"{harness.adapter.platform} sends no agent events (capabilities)")
        ref = await self._open(harness)
        assert ref.external_ref is not None
        good = harness.agent_message_webhook(ref.external_ref, "x", "pm-2")
        with pytest.raises(InvalidSignature):
            harness.adapter.verify_inbound(harness.unauthenticated(good))
