"""The adapter kit: declared webhook auth, typed options, and no secret in any error."""

from __future__ import annotations

import base64
import hmac
import json
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import ClassVar

import pytest
from aiohttp import ClientSession, web
from pydantic import BaseModel, ConfigDict, SecretStr

from adapters.kit import (
    EnvSecret,
    HeaderToken,
    Hmac,
    PlatformAdapter,
    UrlToken,
    json_object,
    webhook_object,
)
from adapters.kommunicate import KommunicateAdapter
from bridge.errors import InvalidSignature, MalformedPayload, PlatformRejected
from bridge.ports.agent_side import (
    ConversationRef,
    ConversationSnapshot,
    InboundRequest,
    OpenResult,
    OutboundMessage,
)
from bridge.ports.context import AdapterContext
from bridge.ports.http import HttpClient
from tests.adapters.contract import HISTORY
from tests.kit.fake_platform import FakePlatform

SECRET = "kit-secret-9f2c4e7a"


class Secrets(BaseModel):
    """Options with one secret, as an adapter's would hold."""

    model_config = ConfigDict(extra="forbid")

    webhook_token: SecretStr = SecretStr(SECRET)
    unset: str | None = None


def request(
    headers: dict[str, str] | None = None, body: bytes = b"{}", token: str | None = None
) -> InboundRequest:
    return InboundRequest("POST", headers or {}, {}, body, token)


# -- declared authentication -----------------------------------------------------------------


def test_a_url_token_is_the_secret_segment() -> None:
    auth = UrlToken(refusal="wrong URL")
    auth.verify(request(token=SECRET), Secrets())
    for token in (None, "", SECRET[:-1], SECRET + "x"):
        with pytest.raises(InvalidSignature, match="wrong URL"):
            auth.verify(request(token=token), Secrets())


def test_an_unset_secret_lets_nothing_in() -> None:
    with pytest.raises(InvalidSignature):
        UrlToken("unset").verify(request(token=""), Secrets())


@pytest.mark.parametrize(
    ("auth", "headers"),
    [
        (HeaderToken("X-Token"), {"X-Token": SECRET}),
        (HeaderToken("X-Token"), {"x-token": f" {SECRET} "}),
        (HeaderToken("Authorization", scheme="Bearer"), {"Authorization": f"bearer {SECRET}"}),
        (
            HeaderToken("Authentication", scheme="Basic", also=("Authorization",)),
            {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()},
        ),
    ],
    ids=["bare", "any-case", "bearer", "basic-in-the-other-header"],
)
def test_a_header_token_is_accepted(auth: HeaderToken, headers: dict[str, str]) -> None:
    auth.verify(request(headers), Secrets())


@pytest.mark.parametrize(
    ("auth", "headers"),
    [
        (HeaderToken("X-Token"), {}),
        (HeaderToken("X-Token"), {"X-Other": SECRET}),
        (HeaderToken("Authorization", scheme="Bearer"), {"Authorization": SECRET}),
        (HeaderToken("Authorization", scheme="Bearer"), {"Authorization": f"Basic {SECRET}"}),
        (HeaderToken("Authentication", scheme="Basic"), {"Authentication": f"Basic {SECRET}"}),
    ],
    ids=["missing", "other-header", "no-scheme", "wrong-scheme", "basic-not-encoded"],
)
def test_a_header_token_is_refused(auth: HeaderToken, headers: dict[str, str]) -> None:
    with pytest.raises(InvalidSignature):
        auth.verify(request(headers), Secrets())


def _signed(body: bytes, digest: str) -> bytes:
    return hmac.new(SECRET.encode(), body, digest).digest()


def test_an_hmac_signature_over_the_body_is_checked() -> None:
    body = b'{"id": "evt-1"}'
    github = Hmac(header="X-Hub-Signature-256", secret="webhook_token", prefix="sha256=")
    good = "sha256=" + _signed(body, "sha256").hex()
    github.verify(request({"X-Hub-Signature-256": good}, body), Secrets())
    for headers, sent in (
        ({"X-Hub-Signature-256": good}, b'{"id": "evt-2"}'),
        ({"X-Hub-Signature-256": good.removeprefix("sha256=")}, body),
        ({}, body),
    ):
        with pytest.raises(InvalidSignature, match="signature does not match"):
            github.verify(request(headers, sent), Secrets())
    sha1 = Hmac(header="X-Sig", secret="webhook_token", algorithm="sha1", encoding="base64")
    encoded = base64.b64encode(_signed(body, "sha1")).decode()
    sha1.verify(request({"x-sig": encoded}, body), Secrets())


def test_a_misspelt_algorithm_fails_where_it_is_declared() -> None:
    with pytest.raises(ValueError):
        Hmac(header="X-Sig", secret="webhook_token", algorithm="sha265")


# -- typed options ---------------------------------------------------------------------------


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str
    webhook_token: EnvSecret


class Minimal(PlatformAdapter[Options]):
    """The least an adapter writes: its options model, platform and three calls."""

    platform: ClassVar[str] = "minimal"
    webhook_auth: ClassVar[UrlToken] = UrlToken()

    async def open_conversation(self, conversation: ConversationSnapshot) -> OpenResult:
        response = await self.http.request("POST", self.options.base_url)
        return OpenResult(json_object(response, "the open", platform=self.platform)["id"])

    async def post_message(self, conversation: ConversationRef, message: OutboundMessage) -> None:
        await self.http.request("POST", self.options.base_url)

    async def close_conversation(self, conversation: ConversationRef, reason: str) -> None:
        await self.http.request("POST", self.options.base_url)


def offline() -> AdapterContext:
    return AdapterContext(HttpClient(None, timeout=1, quick_retries=0))  # type: ignore[arg-type]


def test_the_type_parameter_is_the_options_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIMAL_TOKEN", SECRET)
    assert Minimal.options_model is Options
    adapter = Minimal.from_settings(
        "m", {"base_url": "http://x", "webhook_token": "MINIMAL_TOKEN"}, offline()
    )
    assert isinstance(adapter.options, Options) and adapter.options.base_url == "http://x"
    adapter.verify_inbound(request(token=SECRET))
    with pytest.raises(TypeError):
        Minimal("m", Secrets(), offline())


def test_auth_naming_an_option_the_model_lacks_fails_at_class_creation() -> None:
    with pytest.raises(TypeError, match="no option 'api_secret'"):

        class Broken(Minimal):
            webhook_auth: ClassVar[UrlToken] = UrlToken("api_secret")


# -- answers ---------------------------------------------------------------------------------


def test_a_webhook_body_must_be_an_object() -> None:
    assert webhook_object(request(body=b'{"a": 1}'), "an event") == {"a": 1}
    with pytest.raises(MalformedPayload, match="an event must be a JSON object"):
        webhook_object(request(body=b"[1]"), "an event")


# -- secrets never in errors -----------------------------------------------------------------


@dataclass
class Echoing(FakePlatform):
    """A platform that quotes the request's credentials back, as some error answers do."""

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/{tail:.*}", self._echo)

    async def _echo(self, request: web.Request) -> web.Response:
        key = request.headers.get("Api-Key", "")
        body = {"status": "error", "errorResponse": [{"description": f"Api-Key {key} refused"}]}
        return web.json_response(body)


@pytest.fixture
async def context() -> AsyncIterator[AdapterContext]:
    async with ClientSession() as session:
        yield AdapterContext(HttpClient(session, timeout=5, quick_retries=0))


async def test_an_error_quoting_the_platforms_answer_never_shows_the_key(
    context: AdapterContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kommunicate's refusals quote its answer; the relay stores that text as last_error.
    monkeypatch.setenv("KOMMUNICATE_API_KEY", SECRET)
    monkeypatch.setenv("KOMMUNICATE_WEBHOOK_TOKEN", "km-webhook-token-1")
    async with Echoing() as platform:
        options = {
            "api_key": "KOMMUNICATE_API_KEY",
            "webhook_token": "KOMMUNICATE_WEBHOOK_TOKEN",
            "base_url": platform.url,
        }
        adapter = KommunicateAdapter.from_settings("km", options, context)
        ref = ConversationRef("c-1", "km", "81:customer-1")
        with pytest.raises(PlatformRejected) as raised:
            await adapter.post_message(ref, HISTORY[0])
    assert platform.calls[0].headers["Api-Key"] == SECRET
    assert "refused" in str(raised.value) and SECRET not in str(raised.value)


async def test_a_traceback_never_shows_a_secret_in_the_url(
    context: AdapterContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aiohttp's error for a bad URL quotes it whole; a traceback prints that cause.
    monkeypatch.setenv("MINIMAL_TOKEN", SECRET)
    options = {"base_url": f"http://[::1/hooks/{SECRET}", "webhook_token": "MINIMAL_TOKEN"}
    adapter = Minimal.from_settings("m", options, context)
    with pytest.raises(Exception) as raised:
        await adapter.post_message(ConversationRef("c", "m", "x"), HISTORY[0])
    printed = "".join(traceback.format_exception(raised.value))
    assert "connection failed" in printed and SECRET not in printed
    # The app's own client, which has no secrets to keep, keeps the cause for debugging.
    with pytest.raises(Exception) as plain:
        await context.http.request("POST", options["base_url"])
    assert SECRET in "".join(traceback.format_exception(plain.value))


async def test_an_answer_quoted_by_an_adapter_is_redacted(context: AdapterContext) -> None:
    async with Echoing() as platform:
        client = context.http.redacting([SECRET])
        response = await client.request("GET", platform.url_for("/x"), headers={"Api-Key": SECRET})
    assert SECRET in response.body.decode()
    assert SECRET not in response.excerpt() and "refused" in response.excerpt()
    # Cut after redacting: no part of a secret shows at the cut.
    cut = response.body.decode().index(SECRET) + 4
    assert SECRET[:4] not in response.excerpt(cut)
    assert json.loads(response.body)["status"] == "error"
