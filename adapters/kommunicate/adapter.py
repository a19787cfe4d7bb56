"""Kommunicate (agent side): each handoff becomes a Kommunicate conversation (a "group").

- open: `POST /rest/ws/group/conversation` with the customer, the default agents and bots,
  `clientGroupId` = the bridge's conversation id, and the routing settings as group
  metadata: `SKIP_ROUTING`, `KM_TEAM_ID`, `CONVERSATION_ASSIGNEE` (only with skip routing,
  as Kommunicate's docs pair them), `SKIP_BOT_EVENT`, `WELCOME_MESSAGE`, `KM_CHAT_CONTEXT`
  and `conversationMetadata` (the handoff's metadata, shown to the agent). With skip
  routing and an assignee, the assignee is also set with
  `PATCH /rest/ws/group/assignee/change`. The join link is the dashboard's.
  The handoff's settings (either spelling) override the channel's options key by key; an
  empty value inherits, and a handoff can turn skip routing on but not off.
- history and customer messages: `POST /rest/ws/message/v2/send`, one call per message,
  from the original author (the customer's user, or `bot_user_id` for everything else),
  with a metadata marker naming the bridge as origin and the bridge's message id
  (`handoff_bridge_message_id`: `<conversation id>:<seq>`, the same on every attempt).
- close (and release): `PATCH /rest/ws/group/status/change?groupId&status=2` (resolved).
- inbound (`inbound.py`): the message webhook, authenticated (`webhook_auth`) by
  `Authentication: Basic base64(token)` (sic, not Authorization). An agent's message
  becomes `agent.message` with the message `key` as event id; echoes of what the bridge
  posted, and messages from the customer, bot and system users, are dropped. The first
  agent message is the join (the bridge does that); Kommunicate sends no join event.

Assumptions, where the public docs are thin:
- A create with a `clientGroupId` that already exists answers with that group, so an
  open retried after a lost answer does not make a second conversation (the docs only
  call the id unique).
- The create answer carries the new group's id in `response.id` (as the Web SDK reads it).
- Group metadata is string to string (the SDKs send `Map<String, String>`): skip routing
  is "true", the team id is text, and lists and dictionaries are JSON text (the Web SDK
  sends `KM_CHAT_CONTEXT` and `conversationMetadata` so).
- The webhook carries a message's `metadata` as it was sent, so our marker comes back.
- A 2xx whose JSON says `"status": "error"` is a refusal (Applozic answers errors so).
- Messages with Applozic's notification or hidden content types (10, 11, 102, 103) are
  system notices, not agent replies.
- The customer's Kommunicate user is `customer_user_prefix` + the bridge's customer id:
  the prefix keeps customers apart from agent and bot ids and lets the webhook tell a
  customer's own message from an agent's.

Not done, and why:
- A message sent again after a lost answer or a crash may show twice: `v2/send`
  documents no idempotency key, so the message id in the metadata only lets the copies
  be told for one (the webhook brings it back with each).
- A conversation resolved in the dashboard does not close the bridge's conversation: no
  status or resolved webhook is documented (the message webhook carries messages only).
- History keeps its order but not its times: `v2/send` takes no timestamp.
- An agent's file (the webhook's `file`) is the message's attachment; a customer's file
  goes to Kommunicate as a `name: url` line (sending a file message needs an upload).
- The platform is not asked whether agents are online (no documented call for it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from adapters.kit import HeaderToken, PlatformAdapter, json_or_none, message_key
from adapters.kommunicate import inbound
from adapters.kommunicate.inbound import MESSAGE_ID_KEY, ORIGIN_KEY, ORIGIN_VALUE
from adapters.kommunicate.options import ConversationSettings, KommunicateOptions
from bridge.attachments import with_links
from bridge.errors import PlatformRejected
from bridge.ports import agent_side as port
from bridge.ports.http import HttpResponse

log = logging.getLogger(__name__)

# external_ref is "<groupId>:<customer user id>": the group id is numeric, so the first
# colon splits it, and post_message learns the customer's user id without any state.
_REF_SEPARATOR = ":"
# The customer's user id travels in external_ref (256 characters) after the group id.
_MAX_USER_ID = 200


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in ids if i))


def _customer_name(customer: Mapping[str, Any]) -> str:
    name = " ".join(str(customer[k]) for k in ("firstname", "lastname") if customer.get(k))
    return name or str(customer.get("email") or customer.get("id") or "customer")


def _answer(response: HttpResponse, what: str) -> Any:
    """The JSON answer (None when it is not JSON); a `"status": "error"` is a refusal."""
    body = json_or_none(response)
    if isinstance(body, dict) and str(body.get("status", "")).lower() == "error":
        # The refusal is stored and shown: it must not quote back the API key.
        detail = json.dumps(body.get("errorResponse") or body.get("response") or body)
        raise PlatformRejected(
            f"kommunicate refused to {what}: {response.redact(detail)[:300]}",
            status=response.status,
        )
    return body


class KommunicateAdapter(PlatformAdapter[KommunicateOptions]):
    """Kommunicate: agents answer handed-off chats in the Kommunicate dashboard."""

    platform: ClassVar[str] = "kommunicate"
    capabilities: ClassVar[port.Capabilities] = port.Capabilities(history=False, join_url=True)
    # Kommunicate documents `Authentication` (sic); `Authorization` is taken should it switch.
    webhook_auth: ClassVar[HeaderToken] = HeaderToken(
        "Authentication",
        scheme="Basic",
        also=("Authorization",),
        refusal="the Authentication header does not carry the webhook token",
    )

    # -- outbound -----------------------------------------------------------------------

    async def open_conversation(self, conversation: port.ConversationSnapshot) -> port.OpenResult:
        """Create the group with its members and routing metadata; assign when asked to."""
        opts = self.options
        wanted = ConversationSettings.parse(conversation.settings)
        customer_user = self.customer_user_id(conversation.customer)
        # A handoff can turn skip routing on, not off: the bridge's merged settings say
        # false for "not given", which must not undo the channel's option.
        skip_routing = opts.skip_routing or bool(wanted.skip_routing)
        assignee = wanted.assignee or opts.default_assignee
        if assignee and not skip_routing:
            # Without skip routing Kommunicate's conversation rules choose the assignee;
            # the docs pair a default assignee with skipRouting: true, and so do we.
            log.warning(
                "kommunicate.assignee_ignored",
                extra={"conversation": conversation.id, "why": "skip routing is off"},
            )
            assignee = None
        # A handoff's list replaces the channel's (an empty one was dropped as "not given").
        agents = wanted.agent_ids or opts.default_agent_ids
        bots = wanted.bot_ids or opts.default_bot_ids
        metadata: dict[str, str] = {}
        if skip_routing:
            metadata["SKIP_ROUTING"] = "true"
        if team_id := wanted.team_id or opts.team_id:
            metadata["KM_TEAM_ID"] = team_id
        if assignee:
            metadata["CONVERSATION_ASSIGNEE"] = assignee
        shown = {**conversation.metadata, **(wanted.conversation_metadata or {})}
        if shown:
            metadata["conversationMetadata"] = json.dumps(shown, ensure_ascii=False)
        if wanted.chat_context:
            metadata["KM_CHAT_CONTEXT"] = json.dumps(wanted.chat_context, ensure_ascii=False)
        if wanted.skip_bot_events:
            metadata["SKIP_BOT_EVENT"] = json.dumps(wanted.skip_bot_events)
        if wanted.welcome_message:
            metadata["WELCOME_MESSAGE"] = wanted.welcome_message
        name = wanted.group_name or opts.group_name.format(
            customer_name=_customer_name(conversation.customer),
            customer_id=str(conversation.customer.get("id", "")),
            channel=conversation.channel,
            conversation_id=conversation.id,
        )
        body = {
            "groupName": name,
            "groupMemberList": _unique([customer_user, *agents, *bots, assignee or ""]),
            "clientGroupId": conversation.id,
            "metadata": metadata,
        }
        response = await self.http.request(
            "POST",
            self._url(opts.create_conversation_path),
            json_body=body,
            headers=self._headers(),
        )
        group_id = self._group_id(_answer(response, "create the conversation"), response)
        if assignee:
            await self.change_assignee(group_id, assignee)
        log.info("kommunicate.opened", extra={"conversation": conversation.id, "group": group_id})
        return port.OpenResult(
            external_ref=f"{group_id}{_REF_SEPARATOR}{customer_user}",
            join_url=self._dashboard_link(group_id),
        )

    async def change_assignee(self, group_id: str, assignee: str) -> None:
        """Make `assignee` (an agent or bot user id) the conversation's assignee."""
        opts = self.options
        params = {
            "groupId": group_id,
            "assignee": assignee,
            "sendNotifyMessage": str(opts.notify_on_assign).lower(),
            "takeOverFromBot": str(opts.take_over_from_bot).lower(),
        }
        response = await self.http.request(
            "PATCH",
            self._url(opts.assignee_change_path),
            headers=self._headers(acting=True),
            params=params,
        )
        answer = _answer(response, "change the assignee")
        result = answer.get("response") if isinstance(answer, dict) else answer
        # "updated" and "already updated" are what we asked for; AGENT_IS_ALREADY_ENGAGED
        # (the agent is at capacity) leaves the group with its routing: worth a warning.
        level = logging.INFO if result in ("updated", "already updated", None) else logging.WARNING
        log.log(level, "kommunicate.assigned", extra={"group": group_id, "result": str(result)})

    async def post_message(
        self, conversation: port.ConversationRef, message: port.OutboundMessage
    ) -> None:
        """Post one message as its original author, marked as the bridge's, with its id.

        Files go as `name: url` lines: the documented send call takes text, and a file
        message needs the file uploaded to Kommunicate, which the bridge (holding links,
        never bytes) does not do.
        """
        group_id, customer_user = self._parse_ref(conversation)
        sender = customer_user if message.role == "customer" else self.options.bot_user_id
        body = {
            "groupId": group_id,
            "message": with_links(message.text, message.attachments),
            "fromUserName": sender,
            # Metadata is string to string; the id repeats on every attempt of this post.
            "metadata": {
                ORIGIN_KEY: ORIGIN_VALUE,
                MESSAGE_ID_KEY: message_key(conversation, message),
            },
        }
        url = self._url(self.options.send_message_path)
        response = await self.http.request("POST", url, json_body=body, headers=self._headers())
        _answer(response, "take a message")

    async def close_conversation(self, conversation: port.ConversationRef, reason: str) -> None:
        """Mark the conversation resolved (Kommunicate has no separate hand-back status)."""
        group_id, _ = self._parse_ref(conversation)
        params = {"groupId": group_id, "status": str(self.options.resolved_status)}
        response = await self.http.request(
            "PATCH",
            self._url(self.options.status_change_path),
            headers=self._headers(acting=True),
            params=params,
        )
        _answer(response, "change the conversation's status")
        log.info("kommunicate.resolved", extra={"conversation": conversation.id, "group": group_id})

    def join_url(self, conversation: port.ConversationRef) -> str | None:
        """The conversation in the Kommunicate dashboard (agents log in there)."""
        # Read for every view of the conversation: never raise, whatever the ref holds.
        group_id = (conversation.external_ref or "").partition(_REF_SEPARATOR)[0]
        return self._dashboard_link(group_id) if group_id else None

    def customer_user_id(self, customer: Mapping[str, Any]) -> str:
        """The Kommunicate user that stands for this customer."""
        customer_id = str(customer.get("id") or "")
        if not customer_id:
            raise PlatformRejected("kommunicate needs the customer's id")
        user_id = f"{self.options.customer_user_prefix}{customer_id}"
        if len(user_id) > _MAX_USER_ID:
            raise PlatformRejected(
                f"the customer's Kommunicate user id is over {_MAX_USER_ID} chars"
            )
        return user_id

    # -- inbound ------------------------------------------------------------------------

    def parse_inbound(self, request: port.InboundRequest) -> list[port.InboundEvent]:
        """An agent's message as `agent.message`; echoes and non-agent messages are dropped."""
        return inbound.parse(request, self.options)

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def _group_id(answer: Any, response: HttpResponse) -> str:
        inner = answer.get("response") if isinstance(answer, dict) else None
        candidate = inner.get("id", inner.get("groupId")) if isinstance(inner, dict) else None
        if isinstance(candidate, bool) or not isinstance(candidate, int | str) or candidate == "":
            raise PlatformRejected(
                "kommunicate created no conversation id we can read:"
                f" {response.redact(str(answer))[:200]}"
            )
        return str(candidate)

    @staticmethod
    def _parse_ref(conversation: port.ConversationRef) -> tuple[str, str]:
        group_id, _, customer_user = (conversation.external_ref or "").partition(_REF_SEPARATOR)
        if not group_id or not customer_user:
            raise PlatformRejected(
                f"conversation {conversation.id} has no Kommunicate group"
                f" (external_ref {conversation.external_ref!r})"
            )
        return group_id, customer_user

    def _url(self, path: str) -> str:
        return self.options.base_url + path

    def _dashboard_link(self, group_id: str) -> str:
        return self.options.dashboard_url.format(groupId=group_id)

    def _headers(self, *, acting: bool = False) -> dict[str, str]:
        headers = {"Api-Key": self.options.api_key.get_secret_value()}
        if acting:
            headers["Of-User-Id"] = self.options.acting_user_id
        return headers
