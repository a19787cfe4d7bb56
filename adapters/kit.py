"""What every platform adapter shares: typed options, webhook authentication, JSON answers.

An agent-side adapter subclasses `PlatformAdapter[ItsOptions]` and a bot-side one
`BotPlatform[ItsOptions]`. The kit then gives it, without a line of its own:

- `self.options`, typed: the channel's (or bot's) options validated by `ItsOptions` at
  start, so a bad one is a startup error naming the field (`EnvSecret` and `BaseUrl`
  are the option types every platform needs);
- `self.http` (and a bot's `self.callbacks`): the app's one HTTP client, redacting every
  secret option (each `SecretStr`) from the errors it raises, so no stored error, log
  line or traceback shows a token or API key;
- inbound authentication from one declaration: `webhook_auth = UrlToken()` (a secret
  last URL segment), `HeaderToken("Authentication", scheme="Basic")` or
  `Hmac(header="X-Signature", secret="signing_secret")`, each compared in constant time.

It also has `json_object`, `json_or_none` and `webhook_object` for reading answers and
webhooks, and `message_key` for idempotent posts. docs/adapters.md walks through writing
an adapter with it; adapters/reference/ is the annotated example.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, RootModel, SecretStr

from bridge.errors import FieldProblem, InvalidSignature, MalformedPayload, PlatformRejected
from bridge.logs import secret_values
from bridge.ports.agent_side import (
    AgentSideAdapter,
    ConversationRef,
    InboundReply,
    InboundRequest,
    OutboundMessage,
)
from bridge.ports.bot_side import BotGateway, BotSideAdapter
from bridge.ports.context import AdapterContext, NoOptions
from bridge.ports.http import HttpClient, HttpResponse

OptionsT = TypeVar("OptionsT", bound=BaseModel)


# -- options -------------------------------------------------------------------------------


def _from_environment(name: object) -> SecretStr:
    if not isinstance(name, str) or not name:
        raise ValueError("must name an environment variable that holds the secret")
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"environment variable {name} is not set")
    return SecretStr(value)


# An option that holds a secret. The config file names the environment variable
# (`api_key: KOMMUNICATE_API_KEY`) and the value is read from there at start, so secrets
# never sit in a config file; a missing variable is a startup error naming the option.
EnvSecret = Annotated[SecretStr, BeforeValidator(_from_environment)]


def _http_base_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


# A platform's base URL option: http(s), kept without a trailing slash so paths append.
BaseUrl = Annotated[str, AfterValidator(_http_base_url)]


def message_key(conversation: ConversationRef, message: OutboundMessage) -> str:
    """The bridge's id for one message posted to one conversation: the same on every attempt.

    `seq` is the message's row id in the store, so a post repeated after a lost answer, by
    another replica or after a restart names the same message; adapters send it wherever
    the platform's API takes a client message id.
    """
    return f"{conversation.id}:{message.seq}"


# -- inbound authentication ----------------------------------------------------------------


def secret_matches(given: str | None, expected: str) -> bool:
    """Compare a presented secret in constant time."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value by its name in any case (plain dicts are case-sensitive)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


class WebhookAuth(ABC):
    """How a platform authenticates what it sends the bridge; `secret` names the option."""

    secret: str
    refusal: str
    # The field a refusal names in its 401 answer, if any.
    problem: FieldProblem | None
    # Whether the secret is the first segment of the bot API's path (`/bots/{name}/{token}/…`).
    in_path: ClassVar[bool] = False

    @abstractmethod
    def matches(self, request: InboundRequest, secret: str) -> bool:
        """Whether the request carries the secret."""

    def verify(self, request: InboundRequest, options: BaseModel) -> None:
        """Raise InvalidSignature unless the request carries the option's secret."""
        value = getattr(options, self.secret, None)
        expected = value.get_secret_value() if isinstance(value, SecretStr) else value
        # An unset secret matches nothing: a platform is never let in for lack of one.
        if not isinstance(expected, str) or not expected or not self.matches(request, expected):
            raise InvalidSignature(self.refusal, [self.problem] if self.problem else None)


@dataclass(frozen=True)
class UrlToken(WebhookAuth):
    """The secret is a URL segment: `/webhooks/{channel}/{token}`, `/bots/{name}/{token}/…`.

    For platforms that can neither sign nor send a header: the URL is the credential.
    """

    secret: str = "webhook_token"
    refusal: str = "the webhook URL token does not match"
    problem: FieldProblem | None = None
    in_path: ClassVar[bool] = True

    def matches(self, request: InboundRequest, secret: str) -> bool:
        """The URL's secret segment is the option's value."""
        return secret_matches(request.path_token, secret)


@dataclass(frozen=True)
class HeaderToken(WebhookAuth):
    """The secret is sent in a header, bare or after a scheme (`Bearer`, `Basic`).

    With `scheme="Basic"` the credentials are base64 of the token, as HTTP Basic
    credentials always are (Kommunicate sends `Authentication: Basic base64(token)`).
    `also` names other headers that may carry it; the scheme's case does not matter.
    """

    header: str
    secret: str = "webhook_token"
    scheme: str | None = None
    also: tuple[str, ...] = ()
    refusal: str = "the webhook's header does not carry the webhook token"
    problem: FieldProblem | None = None

    def credentials(self, token: str) -> str:
        """The header value a platform sends for this token."""
        if self.scheme is None:
            return token
        if self.scheme.lower() == "basic":
            token = base64.b64encode(token.encode()).decode()
        return f"{self.scheme} {token}"

    def matches(self, request: InboundRequest, secret: str) -> bool:
        """The first of the headers that is set carries the token after the scheme."""
        names = (self.header, *self.also)
        given = next((v for name in names if (v := header_value(request.headers, name))), "")
        if self.scheme is None:
            return secret_matches(given.strip(), secret)
        scheme, _, presented = given.strip().partition(" ")
        if scheme.lower() != self.scheme.lower():
            return False
        return secret_matches(presented.strip(), self.credentials(secret).partition(" ")[2])


@dataclass(frozen=True)
class Hmac(WebhookAuth):
    """The body is signed: `header` holds HMAC(secret, body), hex or base64, after `prefix`.

    GitHub-style `X-Hub-Signature-256: sha256=<hex>` is `Hmac(header=..., secret=...,
    prefix="sha256=")`. Only the body is signed, so a replayed request verifies too: the
    bridge applies a platform event once by its id, which makes a replay harmless.
    """

    header: str
    secret: str
    algorithm: str = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    refusal: str = "the webhook signature does not match"
    problem: FieldProblem | None = None

    def __post_init__(self) -> None:
        # A misspelt algorithm fails when the adapter's module is imported, not per webhook.
        hashlib.new(self.algorithm)

    def signature(self, body: bytes, secret: str) -> str:
        """The header value a platform sends for this body."""
        digest = hmac.new(secret.encode(), body, self.algorithm).digest()
        encoded = digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode()
        return self.prefix + encoded

    def matches(self, request: InboundRequest, secret: str) -> bool:
        """The header is the body's signature with the option's secret."""
        given = header_value(request.headers, self.header)
        return secret_matches(given and given.strip(), self.signature(request.body, secret))


# -- answers ---------------------------------------------------------------------------------


def json_or_none(response: HttpResponse) -> Any:
    """The answer as JSON; None when it is empty or not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def json_object(response: HttpResponse, what: str, *, platform: str) -> dict[str, Any]:
    """The answer as a JSON object, or PlatformRejected: retrying would get the same."""
    try:
        body = response.json()
    except ValueError as exc:
        not_json = f"{platform} answered {what} with something other than JSON"
        raise PlatformRejected(not_json) from exc
    if not isinstance(body, dict):
        raise PlatformRejected(f"{platform} answered {what} with something other than an object")
    return body


def webhook_object(request: InboundRequest, what: str) -> dict[str, Any]:
    """The webhook's body as a JSON object, or MalformedPayload (`{what} must be ...`)."""
    body = request.json()
    if not isinstance(body, dict):
        raise MalformedPayload(f"{what} must be a JSON object")
    return body


# -- the bases -------------------------------------------------------------------------------


def _options_type(cls: type) -> type[BaseModel] | None:
    """The model in `class X(PlatformAdapter[Model])` (or a generic subclass of it)."""
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = get_origin(base)
        if isinstance(origin, type) and issubclass(origin, _TypedOptions):
            for arg in get_args(base):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    return arg
    return None


class _TypedOptions:
    """What both bases share: the options model named by the type parameter, and secrets."""

    options_type: ClassVar[type[BaseModel]] = NoOptions
    options_model: ClassVar[type[BaseModel]]
    options: Any

    @classmethod
    def _declared_auth(cls) -> WebhookAuth | None:
        return None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        model = _options_type(cls)
        if model is not None:
            cls.options_type = model
            if cls.options_model is NoOptions:
                # A model of its own (Jivo's mode union) stays; else the parameter is it.
                cls.options_model = model
        # A declaration naming an option the model lacks fails at import, not per call.
        auth, model = cls._declared_auth(), cls.options_type
        if auth is not None and model is not NoOptions and auth.secret not in model.model_fields:
            raise TypeError(f"{cls.__name__}: {model.__name__} has no option {auth.secret!r}")

    @classmethod
    def _typed(cls, options: BaseModel) -> Any:
        # A RootModel of a discriminated union (a `mode` option) stands for what it chose.
        chosen = options.root if isinstance(options, RootModel) else options
        if not isinstance(chosen, cls.options_type):
            raise TypeError(f"{cls.__name__} takes {cls.options_type.__name__} options")
        return chosen

    def _secrets(self) -> list[str]:
        """Every SecretStr option's value: what the adapter's clients keep out of errors."""
        return secret_values(self.options, plain=False)


class PlatformAdapter(_TypedOptions, AgentSideAdapter, Generic[OptionsT]):
    """An agent-side adapter with typed options, a redacting client and declared webhook auth."""

    # How the platform's webhooks are authenticated; None refuses every webhook.
    webhook_auth: ClassVar[WebhookAuth | None] = None
    options: OptionsT

    @classmethod
    def _declared_auth(cls) -> WebhookAuth | None:
        return cls.webhook_auth

    def __init__(self, channel: str, options: BaseModel, context: AdapterContext) -> None:
        super().__init__(channel, self._typed(options), context)
        self.http: HttpClient = context.http.redacting(self._secrets())

    def verify_inbound(self, request: InboundRequest) -> None:
        """Check the webhook as `webhook_auth` declares; InvalidSignature when it is wrong."""
        if self.webhook_auth is None:
            super().verify_inbound(request)
            return
        self.webhook_auth.verify(request, self.options)


class BotPlatform(_TypedOptions, BotSideAdapter, Generic[OptionsT]):
    """A bot-side adapter with typed options, redacting clients and an authenticated API."""

    # How calls to `/bots/{name}/…` are authenticated; None means the bot has no such API.
    api_auth: ClassVar[WebhookAuth | None] = None
    options: OptionsT

    @classmethod
    def _declared_auth(cls) -> WebhookAuth | None:
        return cls.api_auth

    def __init__(self, name: str, options: BaseModel, context: AdapterContext) -> None:
        super().__init__(name, self._typed(options), context)
        self.http: HttpClient = context.http.redacting(self._secrets())
        # For the URLs a caller chose (a callback, Tovie's setWebhook): the URL policy's.
        self.callbacks: HttpClient = context.callback_http.redacting(self._secrets())

    async def handle_request(
        self, path: str, request: InboundRequest, gateway: BotGateway
    ) -> InboundReply:
        """Authenticate the call as `api_auth` declares (before the path), then `serve` it."""
        if self.api_auth is None:
            return await super().handle_request(path, request, gateway)
        if self.api_auth.in_path:
            token, _, path = path.partition("/")
            request = replace(request, path_token=token)
        # Checked before anything else, so a wrong secret learns nothing about the API.
        self.api_auth.verify(request, self.options)
        return await self.serve(path, request, gateway)

    async def serve(self, path: str, request: InboundRequest, gateway: BotGateway) -> InboundReply:
        """Serve an authenticated call (`path` is what follows the token); 404 by default."""
        return await super().handle_request(path, request, gateway)
