"""The shared contract every bot-side adapter passes, against its bot platform's fake receiver.

A bot adapter's test module subclasses `BotSideContract` and provides a `harness`
fixture: the adapter wired to a fake receiver (a real aiohttp app on port 0) as the
target of its deliveries, and how to reach its inbound API, if it has one. The contract:

- `deliver_event` reaches the target authenticated (signed, or by the secret the
  platform's receiver checks), and a repeated delivery names the same event, so the
  receiver can drop the copy;
- a failed delivery is typed for the relay: 5xx and 429 are PlatformUnavailable (retried
  later), another 4xx PlatformRejected (not retried, sent once), 401/403
  PlatformAuthError; no error, and no traceback of one, shows the adapter's secrets;
- `handle_request` answers a path it does not serve with NotFound (a JSON 404) that names
  the path, and a wrong credential with InvalidSignature (401) before it looks at the
  path; neither touches the gateway.
"""

from __future__ import annotations

import json
import traceback
from abc import ABC, abstractmethod
from collections import Counter
from typing import Any, NoReturn

import pytest

from bridge.errors import (
    InvalidSignature,
    NotFound,
    PlatformAuthError,
    PlatformError,
    PlatformRejected,
    PlatformUnavailable,
)
from bridge.ports.agent_side import InboundRequest
from bridge.ports.bot_side import BotSideAdapter

EVENT_ID = "msg_0b6f7a5200004000800000000000c0de"
BOT_CONVERSATION = "bot-conv-42"
# Quick retries the harness's HTTP client makes: a scripted outage outlasts them.
QUICK_RETRIES = 1


def agent_message(event_id: str = EVENT_ID) -> tuple[str, str]:
    """An `agent.message` event as the bridge queues it for a bot: (event id, body)."""
    body = {
        "type": "agent.message",
        "timestamp": "2026-11-21T10:05:00+00:00",
        "data": {
            "conversation_id": "0b6f7a52-0000-4000-8000-000000000001",
            "bot_conversation_id": BOT_CONVERSATION,
            "channel": "mysite-es",
            "message": {
                "seq": 6,
                "role": "agent",
                "text": "Hi John, I am on it.",
                "author": "Ana",
                "id": "a-1",
                "sent_at": "2026-11-21T10:05:00+00:00",
            },
        },
    }
    return event_id, json.dumps(body, separators=(",", ":"))


class BotHarness(ABC):
    """A bot-side adapter under test and the fake receiver of its deliveries."""

    adapter: BotSideAdapter
    # Where deliveries go (the handoff's callback_url, or Tovie's webhook).
    target: str
    # Every secret the adapter holds: none may show in an error.
    secrets: list[str]
    # A call its inbound API serves: the method and the path after the credential (after
    # `/bots/{name}/{token}/` for a URL token); None when it has no inbound API.
    served: tuple[str, str] | None
    # The token of an API authenticated by the first path segment, if that is how.
    api_token: str | None

    @abstractmethod
    def arrivals(self) -> Counter[str]:
        """Authenticated deliveries the receiver got, by event id (refused ones included)."""

    @abstractmethod
    def script(self, *statuses: int) -> None:
        """Make the receiver answer its next authenticated deliveries with these statuses."""

    def request(
        self, path: str, method: str = "POST", *, right: bool = True
    ) -> tuple[str, InboundRequest]:
        """A call to `path` with the right (or a wrong) credential, as `handle_request` gets it.

        This puts a URL token first in the path; override it for a header or signature.
        """
        raw = json.dumps({}).encode()
        request = InboundRequest(method, {"Content-Type": "application/json"}, {}, raw)
        if self.api_token is None:
            return path, request
        token = self.api_token if right else "not-the-token-0123456789"
        return (f"{token}/{path}" if path else token), request


class UntouchedGateway:
    """A gateway that fails the test when a refused call reaches it."""

    def __getattr__(self, name: str) -> Any:
        async def called(*args: Any, **kwargs: Any) -> NoReturn:
            raise AssertionError(f"a refused call reached the gateway: {name}")

        return called


class BotSideContract:
    """Behaviour every bot-side adapter must show. Subclass and provide `harness`."""

    @pytest.fixture
    def harness(self) -> Any:  # pragma: no cover - provided by each adapter's module
        raise NotImplementedError

    async def test_an_event_reaches_its_target_authenticated(self, harness: BotHarness) -> None:
        await harness.adapter.deliver_event(harness.target, *agent_message())
        assert harness.arrivals() == Counter({EVENT_ID: 1})

    async def test_a_repeated_delivery_names_the_same_event(self, harness: BotHarness) -> None:
        # What the receiver sees when the relay sends again after a lost answer.
        await harness.adapter.deliver_event(harness.target, *agent_message())
        await harness.adapter.deliver_event(harness.target, *agent_message())
        other = "msg_0b6f7a5200004000800000000000beef"
        await harness.adapter.deliver_event(harness.target, *agent_message(other))
        assert harness.arrivals() == Counter({EVENT_ID: 2, other: 1})

    async def _refused(self, harness: BotHarness, *statuses: int) -> PlatformError:
        harness.script(*statuses)
        with pytest.raises(PlatformError) as raised:
            await harness.adapter.deliver_event(harness.target, *agent_message())
        printed = "".join(traceback.format_exception(raised.value))
        assert not [s for s in harness.secrets if s in printed], "an error shows a secret"
        return raised.value

    async def test_an_outage_is_unavailable(self, harness: BotHarness) -> None:
        error = await self._refused(harness, *[503] * (QUICK_RETRIES + 1))
        assert isinstance(error, PlatformUnavailable) and error.retryable
        assert harness.arrivals()[EVENT_ID] == QUICK_RETRIES + 1

    async def test_too_many_requests_is_unavailable(self, harness: BotHarness) -> None:
        error = await self._refused(harness, *[429] * (QUICK_RETRIES + 1))
        assert isinstance(error, PlatformUnavailable) and error.status == 429

    async def test_a_refusal_is_rejected_and_sent_once(self, harness: BotHarness) -> None:
        error = await self._refused(harness, 400, 400)
        assert isinstance(error, PlatformRejected) and not error.retryable
        assert harness.arrivals()[EVENT_ID] == 1

    async def test_refused_credentials_are_an_auth_error(self, harness: BotHarness) -> None:
        error = await self._refused(harness, 401)
        assert isinstance(error, PlatformAuthError) and error.status == 401

    async def test_an_unknown_path_is_a_404_naming_it(self, harness: BotHarness) -> None:
        path, request = harness.request("no-such-call")
        with pytest.raises(NotFound) as raised:
            await harness.adapter.handle_request(path, request, UntouchedGateway())  # type: ignore[arg-type]
        assert raised.value.status == 404
        assert [f.field for f in raised.value.fields] == ["path"]

    async def test_a_wrong_credential_is_refused_before_the_path(self, harness: BotHarness) -> None:
        if harness.served is None:
            pytest.skip(f"{harness.adapter.platform} serves no inbound API")
        method, served = harness.served
        for path in (served, "no-such-call", ""):
            wrong, request = harness.request(path, method, right=False)
            with pytest.raises(InvalidSignature) as raised:
                await harness.adapter.handle_request(wrong, request, UntouchedGateway())  # type: ignore[arg-type]
            assert raised.value.status == 401
            assert not [s for s in harness.secrets if s in str(raised.value)]
