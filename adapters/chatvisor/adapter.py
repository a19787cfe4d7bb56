"""Chatvisor (TeamViewer Engage): agents answer in Chatvisor; the bridge tags the customer.

What it does, and what it assumes where Chatvisor's public docs are thin:

- Open: tags (re-identifies) the customer with `{email, firstname, id, labels, lastname}`
  (documented shape; path assumed), assigns to a user or a team when configured
  (documented as mutually exclusive; path and body `{userId}` / `{teamId}` assumed), and
  generates the public agent chat URL (documented; path assumed, answer `{url}` or the
  bare URL) which becomes the conversation's join link. The conversation's
  `external_ref` is the Chatvisor customerId, read from the tag answer (`customerId` or
  `id`); when the answer has none, Chatvisor is assumed to key the customer by our id.
- Messages and history: no send endpoint is documented. The bridge POSTs each message to
  `message_path` as `{text, sender{type, name}, externalId, source}`, so history is
  replayed message by message (`Capabilities.history` is False). `externalId` is
  `<echo_marker>:<conversation id>:<seq>`, the same on every attempt; no deduplication
  on it is documented, so a post repeated after a lost answer may show twice.
- Close: sets the customer's status to DONE (`PUT status_path {status}`; assumed).
- Webhooks (Settings > API > WebHooks, all three may use one URL): Chatvisor signs
  nothing, so the URL carries a secret segment, `/webhooks/{channel}/{token}`. A status
  of DONE closes the conversation; an agent's Message becomes agent.message. The docs say
  "new message" fires for customer messages, so agents' replies may arrive only through
  polling: set `poll_interval_seconds` unless the tenant sends agent messages too.
- Polling (`GET /rest/v1/customer`, documented): see cursor.py. It sees each customer's
  last message only, so two agent messages within one interval yield the later one.
- Agents: `GET users_path` is assumed to list users as `{id, firstname, lastname, online,
  available}`; presence and `check_availability` ("any agent is online") derive from it.
- Visibility: `set_chat_visibility` sends `PUT visibility_path {visible}` (assumed).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from adapters.chatvisor.cursor import PollCursor
from adapters.chatvisor.options import ChatvisorOptions
from adapters.chatvisor.wire import CustomerState, parse_customer, parse_webhook
from adapters.kit import PlatformAdapter, UrlToken, json_or_none, message_key, webhook_object
from bridge.attachments import with_links
from bridge.errors import MalformedPayload, PlatformRejected
from bridge.ports import agent_side as port
from bridge.ports.http import HttpResponse

log = logging.getLogger(__name__)

_TAG_FIELDS = ("email", "firstname", "id", "labels", "lastname")


class ChatvisorAdapter(PlatformAdapter[ChatvisorOptions]):
    """Chatvisor / TeamViewer Engage as the agent side."""

    platform: ClassVar[str] = "chatvisor"
    capabilities: ClassVar[port.Capabilities] = port.Capabilities(
        history=False,
        join_url=True,
        availability=True,
        messages=True,
        inbound=True,
        polling=True,
    )
    # Chatvisor signs nothing: the secret last segment of the webhook URL authenticates it.
    webhook_auth: ClassVar[UrlToken] = UrlToken(
        refusal="the Chatvisor webhook URL token does not match"
    )

    # -- outbound --------------------------------------------------------------------------

    async def open_conversation(self, conversation: port.ConversationSnapshot) -> port.OpenResult:
        """Tag the customer, assign when configured, and get the agent's join link."""
        customer = conversation.customer
        tag: dict[str, Any] = {key: customer.get(key) for key in _TAG_FIELDS}
        tag["labels"] = list(customer.get("labels") or [])
        tagged = await self._call("POST", self.options.url(self.options.tag_path), json_body=tag)
        customer_id = _customer_id(json_or_none(tagged)) or str(customer["id"])
        assignment = self._assignment(conversation.settings)
        if assignment is not None:
            url = self.options.url(self.options.assign_path, customer_id)
            await self._call("POST", url, json_body=assignment)
        join_url = await self._agent_url(customer_id)
        log.info(
            "chatvisor.opened",
            extra={"conversation": conversation.id, "assigned": assignment is not None},
        )
        return port.OpenResult(external_ref=customer_id, join_url=join_url)

    async def post_message(
        self, conversation: port.ConversationRef, message: port.OutboundMessage
    ) -> None:
        """Post one message into the customer's chat, marked so its echo is recognised."""
        marker = self.options.echo_marker
        body = {
            # No file message is documented: files go as `name: url` lines.
            "text": with_links(message.text, message.attachments),
            "sender": {"type": message.role.upper(), "name": message.author},
            # The same on every attempt: a repeated post names the same message, and its
            # echo is recognised.
            "externalId": f"{marker}:{message_key(conversation, message)}",
            "source": marker,
        }
        url = self.options.url(self.options.message_path, self._customer_of(conversation))
        await self._call("POST", url, json_body=body)

    async def close_conversation(self, conversation: port.ConversationRef, reason: str) -> None:
        """Mark the customer DONE, which ends the chat for Chatvisor's agents."""
        url = self.options.url(self.options.status_path, self._customer_of(conversation))
        await self._call("PUT", url, json_body={"status": "DONE"})

    async def set_chat_visibility(self, visible: bool) -> None:
        """Show or hide the chat widget (combines with Chatvisor's action rules)."""
        url = self.options.url(self.options.visibility_path)
        await self._call("PUT", url, json_body={"visible": visible})

    async def agent_presence(self) -> list[port.InboundEvent]:
        """Every agent account with its presence, as agent.presence events."""
        response = await self._call("GET", self.options.url(self.options.users_path))
        users = _results(json_or_none(response), "user list")
        events = []
        for user in users:
            if not isinstance(user, dict) or user.get("id") in (None, ""):
                raise PlatformRejected("a Chatvisor user list entry has no id")
            agent_id = str(user["id"])
            presence = _presence(user)
            name = " ".join(str(user[k]) for k in ("firstname", "lastname") if user.get(k))
            events.append(
                port.InboundEvent(
                    kind="agent.presence",
                    event_id=f"chatvisor:presence:{agent_id}:{presence}",
                    agent_id=agent_id,
                    agent_name=name or user.get("name") or None,
                    presence=presence,
                )
            )
        return events

    async def check_availability(self) -> bool | None:
        """True when any agent is online (the widget's "any agent is online" rule)."""
        return any(event.presence != "offline" for event in await self.agent_presence())

    # -- polling ---------------------------------------------------------------------------

    def poll_interval(self) -> float | None:
        """The configured interval; None leaves polling to webhooks."""
        return self.options.poll_interval_seconds

    async def poll(self, cursor: str | None) -> tuple[list[port.InboundEvent], str | None]:
        """Agent messages and closes since the last poll, from the customer list."""
        state = PollCursor.load(cursor)
        customers, complete = await self._list_customers()
        events = state.advance(customers, complete)
        if self.options.sync_presence_on_poll:
            events.extend(await self.agent_presence())
        return events, state.dump()

    async def _list_customers(self) -> tuple[list[CustomerState], bool]:
        """Up to poll_max_pages pages; True when the last page came back short."""
        size = self.options.poll_page_size
        customers: list[CustomerState] = []
        for page in range(self.options.poll_max_pages):
            # offset is sent as page * size so either reading of the documented
            # parameters (offset or pageNumber) selects the same page.
            params = {"offset": str(page * size), "pageNumber": str(page), "pageSize": str(size)}
            response = await self._call(
                "GET", self.options.url(self.options.customers_path), params=params
            )
            entries = _results(json_or_none(response), "customer list")
            try:
                customers.extend(parse_customer(e, self.options.echo_marker) for e in entries)
            except MalformedPayload as exc:
                raise PlatformRejected(f"GET {self.options.customers_path}: {exc.message}") from exc
            if len(entries) < size:
                return customers, True
        return customers, False

    # -- inbound webhooks ------------------------------------------------------------------

    def parse_inbound(self, request: port.InboundRequest) -> list[port.InboundEvent]:
        """DONE closes; an agent's message is relayed; the customer's and our echoes drop."""
        body = webhook_object(request, "a Chatvisor webhook body")
        return parse_webhook(body, self.options.echo_marker)

    # -- helpers ---------------------------------------------------------------------------

    def _assignment(self, settings: dict[str, Any]) -> dict[str, str] | None:
        """A user or a team, from the handoff's settings, else from the channel's options."""
        user, team = settings.get("default_assignee"), settings.get("team_id")
        if user is None and team is None:
            user, team = self.options.default_assignee, self.options.team_id
        if user is not None and team is not None:
            raise PlatformRejected(
                "settings.default_assignee and settings.team_id are mutually exclusive"
                " on Chatvisor; send one"
            )
        if user is not None:
            return {"userId": str(user)}
        if team is not None:
            return {"teamId": str(team)}
        return None

    async def _agent_url(self, customer_id: str) -> str | None:
        endpoint = self.options.url(self.options.agent_url_path, customer_id)
        response = await self._call("POST", endpoint)
        body = json_or_none(response)
        url = body.get("url") if isinstance(body, dict) else body
        if url is None and not isinstance(body, dict):
            url = response.body.decode("utf-8", "replace").strip()
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            return url
        # Without it the bridge's own join link stands in; the handoff still goes ahead.
        log.warning("chatvisor.no_agent_url", extra={"customer": customer_id})
        return None

    @staticmethod
    def _customer_of(conversation: port.ConversationRef) -> str:
        if not conversation.external_ref:
            raise PlatformRejected(
                f"conversation {conversation.id} has no Chatvisor customerId (not opened)"
            )
        return conversation.external_ref

    async def _call(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
    ) -> HttpResponse:
        headers = {
            "Authorization": f"Bearer {self.options.api_token.get_secret_value()}",
            "Accept": "application/json",
        }
        return await self.http.request(
            method, url, json_body=json_body, headers=headers, params=params
        )


def _customer_id(body: Any) -> str | None:
    if isinstance(body, dict):
        for key in ("customerId", "id"):
            value = body.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
    return None


def _results(body: Any, what: str) -> list[Any]:
    """The entries of a list answer: `{results: [...]}` (v1.9's sample) or a bare list."""
    if isinstance(body, dict) and isinstance(body.get("results"), list):
        return list(body["results"])
    if isinstance(body, list):
        return body
    raise PlatformRejected(f"the Chatvisor {what} is not a list or {{results: [...]}}")


def _presence(user: dict[str, Any]) -> port.Presence:
    """online and available -> online; online but unavailable -> absent; else offline."""
    if not user.get("online"):
        return "offline"
    return "absent" if user.get("available") is False else "online"
