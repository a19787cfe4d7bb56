"""Tovie DialogStudio (bot side): the bridge serves Tovie's Operator API.

In Tovie, connect a customer engagement platform of type "Operator API" with the API URL
`https://<bridge>/bots/<name>/<token>`; `<token>` is the `api_token` option (an EnvSecret),
checked in constant time because Tovie cannot sign its calls. Tovie then calls:

- `setWebhook {url}`: the URL is kept in the bridge's adapter state; every event of a
  handoff opened afterwards goes there (it becomes the conversation's callback_url).
- `getDestinations`: one destination per main channel (`mysite`) and per region code
  (`mysite:es`), named from the `destination_names` option or the id.
- `sendText {userId, text}` / `sendFile {userId, url, fileName?, size?}`: a customer
  message (a file is an attachment, its MIME type guessed from the name) for the open
  conversation of `userId`; before there is one, the line is kept (the last
  `history_limit`, for `history_max_age_seconds`) as the coming handoff's history. A file
  the bridge's attachment limits or URL policy refuse is relayed as a `name: url` line.
- `selectDestination {userId, destinationId, userName?, attributes?, customData?}`: opens
  the handoff; repeated for the same userId it returns the same open conversation.
- `closeChat {userId, text}`: closes the open conversation (repeats are answered 200).

Events go back as `TextMessage` (agent text, and the `waiting_notices` text for the
reason of a `handoff.waiting`), `FileMessage` (each attachment of an agent message, and an
agent message that is a single link to a file), `Closed` (closed, released, failed or
cancelled), each with the bridge's event id as `id`, so a retried delivery carries the
same id; an agent message with text and files is one post per part, the files' ids
suffixed `.1`, `.2`... `agent.joined` has no Tovie
equivalent: it becomes a `TextMessage` from the agent built from `join_notice`, or
nothing when `join_notice` is null.

Assumed where the public docs are thin:
- `getDestinations` answers a bare JSON array of `{destinationId, name, hasOnline}`, the
  shape of the destination in the documented `SelectDestination` event. `hasOnline` is
  always "true": the bridge queues a handoff until an agent joins.
- With `sendMessagesToOperator`, Tovie sends the history as `sendText` calls just before
  `selectDestination` (Tovie sets `sendMessageHistoryAmount`; `history_limit` caps what
  the bridge keeps). They carry no author, so all are stored as customer lines; lines that
  arrive after the open are ordinary customer messages. The buffer is read-modify-write,
  so it relies on Tovie sending one call per user at a time.
- `sendText` carries no message id, so a call Tovie repeats is stored twice.
- `hiddenAttributes` are documented as not for the agent and are not stored. Metadata is
  `attributes`, then `customData` flattened (`{"order": {"id": 1}}` → `order.id`); on a
  clash `customData` wins, being the script's deliberate hand-over data.
- The bridge does not push a `SelectDestination` event after `selectDestination`: the
  docs describe it only as an event type, not as a confirmation Tovie waits for.
- A conversation keeps the webhook URL it was opened with if Tovie later calls
  `setWebhook` again. `webhook_url` is a fallback for when Tovie never called it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from adapters.kit import BotPlatform, UrlToken
from adapters.tovie import wire
from adapters.tovie.options import TovieOptions
from bridge.attachments import Attachment, from_platform, read_stored, with_links
from bridge.domain.status import ACTIVE, Status
from bridge.errors import (
    Conflict,
    FieldProblem,
    InvalidInput,
    InvalidTransition,
    MalformedPayload,
    NotFound,
    PlatformRejected,
)
from bridge.models import MAX_TEXT, CustomerMessageRequest, HandoffRequest
from bridge.ports.agent_side import InboundReply, InboundRequest
from bridge.ports.bot_side import BotGateway
from bridge.ports.context import AdapterContext

log = logging.getLogger(__name__)

_WEBHOOK_KEY = "webhook_url"
# The session is over for Tovie: the client goes back to the bot.
_CLOSING_EVENTS = (
    "conversation.closed",
    "conversation.released",
    "handoff.failed",
    "handoff.cancelled",
)


Handler = Callable[[InboundRequest, BotGateway], Awaitable[InboundReply]]


class TovieBot(BotPlatform[TovieOptions]):
    """Tovie DialogStudio, through the Operator API the bridge implements for it."""

    platform: ClassVar[str] = "tovie"
    # Tovie cannot sign its calls: the apiUrl's last segment is the credential.
    api_auth: ClassVar[UrlToken] = UrlToken(
        "api_token",
        refusal="the token in the Tovie apiUrl is wrong",
        problem=FieldProblem("path", "wrong token"),
    )

    def __init__(self, name: str, options: BaseModel, context: AdapterContext) -> None:
        super().__init__(name, options, context)
        self._extensions = frozenset(e.lower().lstrip(".") for e in self.options.file_extensions)
        paths = self.options.paths
        # Method and handler per Operator API call; getDestinations is the one GET.
        self._routes: dict[str, tuple[str, Handler]] = {
            paths.set_webhook: ("POST", self._set_webhook),
            paths.get_destinations: ("GET", self._get_destinations),
            paths.select_destination: ("POST", self._select_destination),
            paths.send_text: ("POST", self._send_text),
            paths.send_file: ("POST", self._send_file),
            paths.close_chat: ("POST", self._close_chat),
        }

    # -- Tovie → bridge: the Operator API ------------------------------------------------

    async def serve(self, path: str, request: InboundRequest, gateway: BotGateway) -> InboundReply:
        """Serve `{apiUrl}/<method>` (the kit checked the token in the URL first)."""
        method = path.strip("/")
        route = self._routes.get(method)
        if route is None:
            known = ", ".join(self._routes)
            raise NotFound(
                f"no Operator API method {method!r}", [FieldProblem("path", f"known: {known}")]
            )
        verb, handler = route
        if request.method != verb:
            raise web.HTTPMethodNotAllowed(request.method, [verb])
        return await handler(request, gateway)

    async def _set_webhook(self, request: InboundRequest, gateway: BotGateway) -> InboundReply:
        call = wire.parse(wire.SetWebhookCall, request)
        await gateway.put_state(self.name, _WEBHOOK_KEY, str(call.url))
        log.info("tovie.webhook_set", extra={"bot": self.name})
        return InboundReply()

    async def _get_destinations(self, request: InboundRequest, gateway: BotGateway) -> InboundReply:
        names = self.options.destination_names
        found: list[dict[str, Any]] = []
        for entry in await gateway.destinations():
            main = str(entry["channel"])
            found.append(wire.destination(main, names.get(main, main)))
            for code in entry["regions"]:
                region_id = f"{main}{wire.REGION_SEPARATOR}{code}"
                found.append(wire.destination(region_id, names.get(region_id, region_id)))
        return InboundReply(body=found)

    async def _select_destination(
        self, request: InboundRequest, gateway: BotGateway
    ) -> InboundReply:
        call = wire.parse(wire.SelectDestinationCall, request)
        channel, region = await self._route(call.destination_id, gateway)
        callback = await gateway.get_state(self.name, _WEBHOOK_KEY) or (
            str(self.options.webhook_url) if self.options.webhook_url else None
        )
        if callback is None:
            raise Conflict(
                "Tovie has not called setWebhook, so there is nowhere to send agent events",
                [FieldProblem("setWebhook", "not called yet; or set the webhook_url option")],
            )
        buffered = await self._load(call.user_id, gateway)
        history = self._recent(buffered)
        firstname, lastname = wire.split_name(call.user_name)
        metadata = {**wire.flatten(call.attributes), **wire.flatten(call.custom_data)}
        email = call.attributes.get("email")
        try:
            handoff = HandoffRequest.model_validate(
                {
                    "bot": {"platform": self.name, "conversation_id": call.user_id},
                    "customer": {
                        "id": call.user_id,
                        "firstname": firstname,
                        "lastname": lastname,
                        "email": email if isinstance(email, str) else None,
                    },
                    "channel": channel,
                    "region": region,
                    "metadata": metadata,
                    "history": history,
                    "callback_url": callback,
                }
            )
        except ValidationError as exc:
            fields = [FieldProblem(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
            raise MalformedPayload(
                "the selectDestination call cannot open a handoff", fields
            ) from exc
        try:
            row, created = await gateway.open(handoff)
        except InvalidInput:
            if not any(message.attachments for message in handoff.history):
                raise
            # A buffered file the bridge refuses must not stop the handoff: as link lines.
            log.info("tovie.history_files_as_links", extra={"bot": self.name})
            row, created = await gateway.open(wire.files_as_links(handoff))
        if buffered:
            # The lines are in the conversation now (or it already had its history).
            await self._keep(call.user_id, [], gateway)
        log.info(
            "tovie.destination_selected",
            # Not `created`: LogRecord has that attribute, and logging refuses the clash.
            extra={"bot": self.name, "conversation": row.id, "new_conversation": created},
        )
        return InboundReply(body={"result": "ok", "conversationId": row.id})

    async def _send_text(self, request: InboundRequest, gateway: BotGateway) -> InboundReply:
        call = wire.parse(wire.SendTextCall, request)
        await self._from_customer(call.user_id, call.text, (), gateway)
        return InboundReply()

    async def _send_file(self, request: InboundRequest, gateway: BotGateway) -> InboundReply:
        call = wire.parse(wire.SendFileCall, request)
        name = call.file_name or call.name
        attachment = from_platform(call.url, name, size=call.size)
        if attachment is None:
            # Not a file the bridge can describe (a name it cannot keep): a link line.
            text = f"{name}: {call.url}" if name else str(call.url)
            await self._from_customer(call.user_id, text, (), gateway)
        else:
            await self._from_customer(call.user_id, "", (attachment,), gateway)
        return InboundReply()

    async def _close_chat(self, request: InboundRequest, gateway: BotGateway) -> InboundReply:
        call = wire.parse(wire.CloseChatCall, request)
        row = await gateway.find_by_bot_conversation(self.name, call.user_id)
        if row is None or Status(row.status) not in ACTIVE:
            return InboundReply()  # already over: a repeated closeChat changes nothing
        reason = (call.text or "the client closed the chat in Tovie")[:1_000]
        try:
            await gateway.close(row.id, "bot", reason)
        except InvalidTransition:
            pass  # closed by the agent meanwhile; the chat is over either way
        return InboundReply()

    async def _route(
        self, destination_id: str | None, gateway: BotGateway
    ) -> tuple[str | None, str | None]:
        """`mysite:es` as (channel, region); None for the default channel."""
        if not destination_id:
            return None, None
        channel, _, region = destination_id.partition(wire.REGION_SEPARATOR)
        mains = {str(entry["channel"]) for entry in await gateway.destinations()}
        if channel not in mains:
            raise InvalidInput(
                f"unknown destination {destination_id!r}",
                [FieldProblem("destinationId", f"not one of getDestinations' ids ({channel!r})")],
            )
        return channel, region or None

    async def _from_customer(
        self, user_id: str, text: str, files: tuple[Attachment, ...], gateway: BotGateway
    ) -> None:
        """Relay to the user's open conversation; before there is one, keep it as history."""
        row = await gateway.find_by_bot_conversation(self.name, user_id)
        if row is not None and Status(row.status) in ACTIVE:
            try:
                await self._relay(row.id, text, files, gateway)
                return
            except InvalidTransition:
                pass  # ended meanwhile: the line belongs to whatever comes next
        if self.options.history_limit == 0:
            return
        lines = await self._load(user_id, gateway)
        line: dict[str, Any] = {"text": text, "at": datetime.now(UTC).isoformat()}
        if files:
            line["attachments"] = [file.model_dump() for file in files]
        lines.append(line)
        await self._keep(user_id, lines[-self.options.history_limit :], gateway)

    @staticmethod
    async def _relay(
        conversation_id: str, text: str, files: tuple[Attachment, ...], gateway: BotGateway
    ) -> None:
        """A customer message; files the bridge may not pass on go as `name: url` lines."""
        try:
            request = CustomerMessageRequest(text=text, attachments=list(files))
            await gateway.customer_message(conversation_id, request)
        except InvalidInput:
            if not files:
                raise
            # Tovie cannot be asked again for the file: the agent gets the link instead.
            log.info("tovie.file_as_link", extra={"conversation": conversation_id})
            linked = CustomerMessageRequest(text=with_links(text, files)[:MAX_TEXT])
            await gateway.customer_message(conversation_id, linked)

    # -- the pre-handoff buffer ----------------------------------------------------------

    @staticmethod
    def _history_key(user_id: str) -> str:
        # Hashed: state keys are short and Tovie's user ids need not be.
        return "history:" + hashlib.sha256(user_id.encode()).hexdigest()

    async def _load(self, user_id: str, gateway: BotGateway) -> list[dict[str, Any]]:
        raw = await gateway.get_state(self.name, self._history_key(user_id))
        try:
            lines = json.loads(raw) if raw else []
        except ValueError:
            lines = []
        if not isinstance(lines, list):
            return []
        return [
            line
            for line in lines
            if isinstance(line, dict)
            and isinstance(line.get("text"), str)
            and isinstance(line.get("at"), str)
        ]

    async def _keep(self, user_id: str, lines: list[dict[str, Any]], gateway: BotGateway) -> None:
        await gateway.put_state(self.name, self._history_key(user_id), json.dumps(lines))

    def _recent(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The kept lines that are recent enough, as handoff history (files and all)."""
        oldest = datetime.now(UTC) - timedelta(seconds=self.options.history_max_age_seconds)
        history = []
        for line in lines:
            try:
                at = datetime.fromisoformat(line["at"])
            except ValueError:
                continue
            if at >= oldest:
                kept = {"role": "customer", "text": line["text"], "sent_at": line["at"]}
                if isinstance(line.get("attachments"), list):
                    kept["attachments"] = line["attachments"]
                history.append(kept)
        return history

    # -- bridge → Tovie: events ----------------------------------------------------------

    async def deliver_event(self, target: str, event_id: str, body: str) -> None:
        """POST the event to Tovie's webhook as a TextMessage, FileMessage or Closed."""
        events = self._tovie_events(event_id, body)
        if not events:
            log.debug("tovie.event_skipped", extra={"bot": self.name, "event": event_id})
        for event in events:
            # Tovie's setWebhook chose the target: it goes through the outbound URL policy.
            await self.callbacks.request("POST", target, json_body=event)

    def _tovie_events(self, event_id: str, body: str) -> list[dict[str, Any]]:
        """The Tovie events a bridge event becomes: none, one, or one per part of a message
        with files."""
        try:
            event = json.loads(body)
            kind, data = event["type"], event["data"]
            user_id = data["bot_conversation_id"]
        except (ValueError, TypeError, KeyError) as exc:
            raise PlatformRejected(f"event {event_id} is not a bridge event: {exc}") from exc
        if not isinstance(user_id, str) or not user_id:
            # Retrying cannot help: without a userId Tovie cannot place the event.
            raise PlatformRejected(f"event {event_id} names no Tovie userId")
        options = self.options
        if kind == "agent.message":
            message = data.get("message")
            message = message if isinstance(message, dict) else {}
            author = wire.employee(
                message.get("author") or options.system_agent_name, options.agent_avatar_url
            )
            text = str(message.get("text") or "")
            files = read_stored(message.get("attachments"))
            if files:
                return wire.message_with_files(event_id, user_id, text, files, author)
            link = wire.file_link(text, self._extensions)
            if link is not None:
                return [wire.file_message(event_id, user_id, *link, author)]
            return [wire.text_message(event_id, user_id, text, author)]
        if kind == "agent.joined":
            if options.join_notice is None:
                return []
            agent = data.get("agent")
            name = (agent.get("name") if isinstance(agent, dict) else None) or (
                options.system_agent_name
            )
            # replace, not format: a notice with other braces must not break delivery.
            text = options.join_notice.replace("{agent}", name)
            return [
                wire.text_message(
                    event_id, user_id, text, wire.employee(name, options.agent_avatar_url)
                )
            ]
        if kind == "handoff.waiting":
            # The bridge's reason picks the text; Tovie itself has no waiting event.
            notice = options.waiting_notices.get(data.get("reason"))
            if notice is None:
                return []
            author = wire.employee(options.system_agent_name, options.agent_avatar_url)
            return [wire.text_message(event_id, user_id, notice, author)]
        if kind in _CLOSING_EVENTS:
            author = wire.employee(options.system_agent_name, options.agent_avatar_url)
            return [wire.closed(event_id, user_id, author)]
        return []
