"""Options of the Jivo adapters: every URL and path configurable, every secret from the env."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    RootModel,
    SecretStr,
    field_validator,
)

from adapters.jivochat.wire import check_base_url, check_path_template
from adapters.kit import EnvSecret

# A secret that is the only credential in a URL must not be guessable.
MIN_TOKEN_LENGTH = 16

DEFAULT_BOT_API_URL = "https://bot.jivosite.com"
DEFAULT_BOT_API_PATH = "/webhooks/{provider_id}/{token}"
DEFAULT_CHAT_API_URL = "https://wh.jivosite.com"
DEFAULT_CHAT_API_PATH = "/{secret}/{public_id}"


def _long_enough(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
        raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters (it is a URL secret)")
    return value


# A secret that is the whole credential of a URL the bridge serves (Jivo signs nothing).
UrlSecret = Annotated[EnvSecret, AfterValidator(_long_enough)]
BaseUrl = Annotated[str, AfterValidator(check_base_url)]


class _BotApiEndpoint(BaseModel):
    """Where Jivo's Bot API takes events from the provider."""

    model_config = ConfigDict(extra="forbid")

    # The provider id Jivo issued (it is part of Jivo's endpoint, not a secret).
    provider_id: str = Field(min_length=1, max_length=200)
    bot_api_url: BaseUrl = DEFAULT_BOT_API_URL
    # Every public implementation appends the provider's token to Jivo's endpoint.
    bot_api_path: str = DEFAULT_BOT_API_PATH

    @field_validator("bot_api_path")
    @classmethod
    def _bot_api_path(cls, value: str) -> str:
        return check_path_template(value, {"provider_id", "token"}, {"token"})


class JivoBotOptions(_BotApiEndpoint):
    """The bot side: the bridge is the Jivo Bot API provider, and the real bot sits behind it."""

    # The secret path segment of the provider URL registered with Jivo
    # (`{public_url}/bots/{name}/{token}`); the bot's `/reply` calls carry it too.
    token: UrlSecret
    # The token in Jivo's own endpoint; Jivo's guide has one token both ways, so by
    # default it is `token`.
    jivo_token: EnvSecret | None = None
    # The real bot: it receives `customer.message` (and events of chats with no handoff)
    # here, signed per Standard Webhooks with the bridge's webhook secret.
    bot_url: HttpUrl

    def outbound_token(self) -> EnvSecret:
        """The token that goes into Jivo's endpoint."""
        return self.jivo_token if self.jivo_token is not None else self.token


class BotApiChannelOptions(_BotApiEndpoint):
    """A channel whose agents are Jivo's own, reached by the Bot API's INVITE_AGENT."""

    mode: Literal["bot_api"]
    # The token in Jivo's endpoint (the same one as the bot side's).
    token: EnvSecret


class ChatApiChannelOptions(BaseModel):
    """A channel on Jivo's Chat API: the bridge is a custom client channel of Jivo."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["chat_api"]
    chat_api_url: BaseUrl = DEFAULT_CHAT_API_URL
    # The random string Jivo put into the channel's endpoint "to protect against brute
    # force": it is the credential, so it comes from the environment.
    endpoint_secret: EnvSecret
    # JIVO_PUBLIC_ID, the channel's id in the same endpoint.
    public_id: str = Field(min_length=1, max_length=200)
    chat_api_path: str = DEFAULT_CHAT_API_PATH
    # Appended to the endpoint for the availability check (the body is 0 or 1).
    status_suffix: str = "/status"
    # The secret path segment of the webhook URL set in the channel's settings in Jivo:
    # `{public_url}/webhooks/{channel}/{webhook_token}`. Jivo signs nothing.
    webhook_token: UrlSecret
    # The Chat API has no close call: the agent reads this in the chat instead.
    close_notice: str = Field(default="The conversation was closed ({reason}).", min_length=1)

    @field_validator("chat_api_path")
    @classmethod
    def _chat_api_path(cls, value: str) -> str:
        return check_path_template(value, {"public_id", "secret"}, {"secret"})

    @field_validator("status_suffix")
    @classmethod
    def _status_suffix(cls, value: str) -> str:
        return check_path_template(value, set(), set())

    @field_validator("close_notice")
    @classmethod
    def _close_notice(cls, value: str) -> str:
        try:
            value.format(reason="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"may only use the placeholder {{reason}}: {exc}") from exc
        return value


class JivoChannelOptions(
    RootModel[Annotated[BotApiChannelOptions | ChatApiChannelOptions, Field(discriminator="mode")]]
):
    """A Jivo channel's options; `mode` (bot_api or chat_api) says which API it uses."""
