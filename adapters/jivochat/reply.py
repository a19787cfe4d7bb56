"""The bot's reply to a Jivo chat (`POST /bots/{name}/{token}/reply`) and its BOT_MESSAGE."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from adapters.jivochat.wire import BOT_MESSAGE, compact
from bridge.errors import FieldProblem, InvalidInput
from bridge.models import MAX_TEXT
from bridge.ports.agent_side import InboundRequest


def _id_text(value: Any) -> Any:
    # Jivo's ids are strings in its examples and numbers in some chats; both are text here.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


JivoId = Annotated[str, BeforeValidator(_id_text), Field(min_length=1, max_length=256)]


class ReplyButton(BaseModel):
    """One button of a BUTTONS message."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=256)
    id: JivoId | None = None


class BotReply(BaseModel):
    """The bot's reply to a Jivo chat, sent to Jivo as BOT_MESSAGE."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    chat_id: JivoId
    client_id: JivoId
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    type: Literal["TEXT", "MARKDOWN", "BUTTONS"] = "TEXT"
    title: str | None = Field(default=None, max_length=1_000)
    buttons: list[ReplyButton] = Field(default_factory=list, max_length=50)
    # The bot's id for the reply: a retried call with the same id is sent once.
    id: JivoId | None = None

    @model_validator(mode="after")
    def _buttons_need_type(self) -> BotReply:
        if self.type == "BUTTONS" and not self.buttons:
            raise ValueError("a BUTTONS message needs buttons")
        return self


def parse_reply(request: InboundRequest) -> BotReply:
    """The reply in the request, or InvalidInput naming each wrong field."""
    body = request.json()
    if not isinstance(body, dict):
        raise InvalidInput(
            "the reply must be a JSON object", [FieldProblem("(body)", "not an object")]
        )
    try:
        return BotReply.model_validate(body)
    except ValidationError as exc:
        problems = [
            FieldProblem(".".join(map(str, e["loc"])) or "(body)", e["msg"]) for e in exc.errors()
        ]
        raise InvalidInput("the reply has invalid fields", problems) from exc


def bot_message(reply: BotReply, jivo_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The BOT_MESSAGE event Jivo's endpoint takes for this reply."""
    sent = now or datetime.now(UTC)
    message = compact(
        {
            "type": reply.type,
            "text": reply.text,
            "title": reply.title,
            "buttons": [compact(b.model_dump()) for b in reply.buttons] or None,
            "timestamp": int(sent.timestamp()),
        }
    )
    # Jivo wants client_id and chat_id as strings (they are, by BotReply).
    return {
        "event": BOT_MESSAGE,
        "id": jivo_id,
        "client_id": reply.client_id,
        "chat_id": reply.chat_id,
        "message": message,
    }
