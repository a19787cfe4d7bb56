"""Reference Desk's bots: a small, complete bot-side adapter to copy from.

A bot platform with an API of its own hands off to the bridge in its own terms; this
adapter serves that API at `/bots/{name}/…` and turns each call into a `BotGateway`
call, the same ones the bridge's own HTTP API makes. Reference Desk's bots:

- authenticate every call with the `X-Reference-Token` header (the `webhook_token`);
- `POST /bots/{name}/handoffs` with the bridge's handoff body, `bot` and `callback_url`
  left out (`conversation_id` names the bot's conversation instead): opens a handoff,
  `201` (or `200` with the one already open for that conversation);
- `POST /bots/{name}/messages {conversation_id, text, id?}`: the customer's next message
  (`202`; a repeated `id` is stored once);
- take the bridge's events at `events_url` as `{id, type, timestamp, data}` with
  `Authorization: Bearer <api_key>`, dropping an `id` they have seen.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, HttpUrl, ValidationError

from adapters.kit import BotPlatform, EnvSecret, HeaderToken, webhook_object
from bridge.errors import FieldProblem, InvalidInput, NotFound, PlatformRejected
from bridge.models import CustomerMessageRequest, HandoffRequest
from bridge.ports.agent_side import InboundReply, InboundRequest
from bridge.ports.bot_side import BotGateway


class ReferenceBotOptions(BaseModel):
    """A Reference Desk bot's options (`bots.<name>.options`)."""

    model_config = ConfigDict(extra="forbid")

    # Sent with every event: the bot platform checks it, as the bridge checks its token.
    api_key: EnvSecret
    # What the platform's calls to `/bots/{name}/…` carry in `X-Reference-Token`.
    webhook_token: EnvSecret
    # Where the platform takes events: every handoff's callback_url.
    events_url: HttpUrl


class _Message(BaseModel):
    """`POST /bots/{name}/messages`: a customer's message in a handed-off conversation."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: str
    text: str
    id: str | None = None


def _invalid(exc: ValidationError, what: str) -> InvalidInput:
    """A pydantic error as a 422 naming each field (a 4xx must say what and where)."""
    fields = [
        FieldProblem(".".join(map(str, e["loc"])) or "(body)", e["msg"]) for e in exc.errors()
    ]
    return InvalidInput(f"the {what} has invalid fields", fields)


class ReferenceBot(BotPlatform[ReferenceBotOptions]):
    """Reference Desk's bots: events out to `events_url`, handoffs in through its API."""

    platform: ClassVar[str] = "reference"
    # Checked by the kit before `serve` sees the path, so a wrong token learns nothing.
    api_auth: ClassVar[HeaderToken] = HeaderToken("X-Reference-Token")

    # -- bridge → bot: the relay delivers each event, in order, retrying on failure -------

    async def deliver_event(self, target: str, event_id: str, body: str) -> None:
        """POST the event with its id, the same on every attempt, so a copy can be dropped."""
        try:
            event = json.loads(body)
        except ValueError as exc:
            # Retrying cannot mend it: the relay marks it dead instead.
            raise PlatformRejected(f"event {event_id} is not a bridge event") from exc
        headers = {"Authorization": f"Bearer {self.options.api_key.get_secret_value()}"}
        # The target is a handoff's callback_url (a caller's URL): `callbacks` applies the
        # outbound URL policy, and its errors never show the key.
        await self.callbacks.request(
            "POST", target, json_body={"id": event_id, **event}, headers=headers
        )

    # -- bot → bridge: the platform's own API, authenticated by the kit ------------------

    async def serve(self, path: str, request: InboundRequest, gateway: BotGateway) -> InboundReply:
        """`handoffs` opens a handoff, `messages` relays a customer's message."""
        if path not in ("handoffs", "messages"):
            raise NotFound(
                f"the Reference Desk bot API has no {path!r}",
                [FieldProblem("path", "known: handoffs, messages")],
            )
        if request.method != "POST":
            raise NotFound(f"{path} takes POST only", [FieldProblem("method", "use POST")])
        body = webhook_object(request, f"a {path} call")
        if path == "handoffs":
            return await self._handoff(body, gateway)
        return await self._message(body, gateway)

    async def _handoff(self, body: dict[str, Any], gateway: BotGateway) -> InboundReply:
        conversation_id = body.pop("conversation_id", None)
        if not isinstance(conversation_id, str) or not conversation_id:
            raise InvalidInput(
                "the handoff names no conversation",
                [FieldProblem("conversation_id", "required: the bot's conversation id")],
            )
        try:
            handoff = HandoffRequest.model_validate(
                {
                    **body,
                    # This bot's name: the bridge sends the handoff's events back through it.
                    "bot": {"platform": self.name, "conversation_id": conversation_id},
                    "callback_url": str(self.options.events_url),
                }
            )
        except ValidationError as exc:
            raise _invalid(exc, "handoff") from exc
        row, created = await gateway.open(handoff)
        return InboundReply(201 if created else 200, {"id": row.id, "status": row.status})

    async def _message(self, body: dict[str, Any], gateway: BotGateway) -> InboundReply:
        try:
            call = _Message.model_validate(body)
            message = CustomerMessageRequest(text=call.text, id=call.id)
        except ValidationError as exc:
            raise _invalid(exc, "message") from exc
        row = await gateway.find_by_bot_conversation(self.name, call.conversation_id)
        if row is None:
            raise NotFound(
                f"no handoff of conversation {call.conversation_id!r}",
                [FieldProblem("conversation_id", "never handed off")],
            )
        # An ended conversation raises InvalidTransition: a 409 the platform can read.
        stored, created = await gateway.customer_message(row.id, message)
        return InboundReply(202, {"seq": stored.seq, "duplicate": not created})
