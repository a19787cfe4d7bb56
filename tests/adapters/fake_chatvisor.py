"""A fake Chatvisor: a real aiohttp app on port 0 that answers like the REST API.

It keeps customers (tagged through the API), their messages and statuses; every request
is recorded in `calls`. Tests make agents act on it (`agent_writes`, `set_status`) and
read back what the bridge sent.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tests.kit.fake_platform import FakePlatform

API_TOKEN = "cv-api-token-1"
WEBHOOK_TOKEN = "cv-hook-secret-7f3a"
# The first call of an open; `hold(tagging)` keeps it in flight.
TAG_PATH = "/rest/v1/customer/tag"


@dataclass
class FakeChatvisor(FakePlatform):
    """Chatvisor's REST API as far as the adapter uses it; `script` answers before handling."""

    token: str = API_TOKEN
    # Customers by Chatvisor customerId, in the order they were created.
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[tuple[str, str]] = field(default_factory=list)
    assignments: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    visibility: list[bool] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _clock: itertools.count[int] = field(
        default_factory=lambda: itertools.count(1_763_719_200_000, 1000)
    )

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """The endpoints of the REST API the adapter calls."""
        router.add_post(TAG_PATH, self._tag)
        router.add_post("/rest/v1/customer/{cid}/agenturl", self._agent_url)
        router.add_post("/rest/v1/customer/{cid}/assign", self._assign)
        router.add_post("/rest/v1/customer/{cid}/message", self._message)
        router.add_put("/rest/v1/customer/{cid}/status", self._status)
        router.add_get("/rest/v1/customer", self._list)
        router.add_get("/rest/v1/user", self._users)
        router.add_put("/rest/v1/chat/visibility", self._visibility)

    def middlewares(self) -> list[Middleware]:
        """Every endpoint checks the API token first."""
        return [self._authenticated]

    def report(self) -> str:
        """Every request, with its body, for a wait that timed out."""
        return f"requests: {[(c.method, c.path, c.body) for c in self.calls]}"

    # -- what tests read -------------------------------------------------------------------

    def texts(self, customer_id: str | None = None) -> list[str]:
        """Texts of the messages the bridge posted, oldest first."""
        return [
            m["text"]
            for m in self.messages
            if m.get("source") and (customer_id is None or m["customerId"] == customer_id)
        ]

    # -- what agents do on the platform ----------------------------------------------------

    def agent_writes(
        self,
        customer_id: str,
        text: str,
        *,
        agent: str = "Ana Silva",
        message_id: str | None = None,
    ) -> dict[str, Any]:
        """An agent replies in Chatvisor's UI; returns the Message as webhooks carry it."""
        first, _, last = agent.partition(" ")
        message = self._add_message(
            customer_id,
            {
                "id": message_id or f"m-{next(self._ids)}",
                "text": text,
                "direction": "OUT",
                "user": {"id": "u-7", "firstname": first, "lastname": last},
            },
        )
        self.customers[customer_id]["status"] = "UNRESOLVED"
        return message

    def set_status(self, customer_id: str, status: str) -> dict[str, Any]:
        """An agent changes the status; returns the Conversation object of the webhook."""
        customer = self.customers[customer_id]
        customer["status"] = status
        customer["statusChanged"] = next(self._clock)
        return self.conversation(customer_id)

    def conversation(self, customer_id: str) -> dict[str, Any]:
        """The Conversation object as the new-conversation and status-change hooks send it."""
        customer = self.customers[customer_id]
        return {
            "customerId": customer_id,
            "status": customer["status"],
            "lastMessage": customer["lastMessage"],
            "url": f"{self.url}/app/chat/{customer_id}",
        }

    # -- the API ---------------------------------------------------------------------------

    @web.middleware
    async def _authenticated(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "Authentication failed"}, status=401)
        if (status := self.scripted()) is not None:
            return web.json_response({"error": "scripted"}, status=status)
        return await handler(request)

    async def _tag(self, request: web.Request) -> web.Response:
        tag = await request.json()
        customer_id = f"cv-{tag['id']}"
        customer = self.customers.setdefault(
            customer_id, {"id": customer_id, "status": "UNREAD", "lastMessage": None}
        )
        customer.update({k: tag[k] for k in ("email", "firstname", "lastname", "labels")})
        if customer["status"] == "DONE":
            customer["status"] = "UNREAD"
        return web.json_response({"customerId": customer_id, **tag})

    async def _agent_url(self, request: web.Request) -> web.Response:
        customer_id = self._known(request)
        return web.json_response({"url": f"{self.url}/agent/chat/{customer_id}?login=otp-42"})

    async def _assign(self, request: web.Request) -> web.Response:
        self.assignments.append((self._known(request), await request.json()))
        return web.json_response({})

    async def _message(self, request: web.Request) -> web.Response:
        body = await request.json()
        message = self._add_message(self._known(request), {"direction": "IN", **body})
        return web.json_response(message, status=201)

    async def _status(self, request: web.Request) -> web.Response:
        customer_id = self._known(request)
        status = (await request.json())["status"]
        self.statuses.append((customer_id, status))
        self.set_status(customer_id, status)
        return web.json_response(self.conversation(customer_id))

    async def _list(self, request: web.Request) -> web.Response:
        number = int(request.query.get("pageNumber", "0"))
        size = int(request.query.get("pageSize", "20"))
        entries = list(self.customers.values())[number * size : (number + 1) * size]
        return web.json_response({"page": number, "results": entries})

    async def _users(self, request: web.Request) -> web.Response:
        return web.json_response(self.users)

    async def _visibility(self, request: web.Request) -> web.Response:
        self.visibility.append(bool((await request.json())["visible"]))
        return web.json_response({})

    def _known(self, request: web.Request) -> str:
        customer_id = request.match_info["cid"]
        if customer_id not in self.customers:
            raise web.HTTPNotFound(text='{"error": "unknown customer"}')
        return customer_id

    def _add_message(self, customer_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        message = {
            "id": f"m-{next(self._ids)}",
            "customerId": customer_id,
            "timestamp": next(self._clock),
            **fields,
        }
        self.messages.append(message)
        self.customers[customer_id]["lastMessage"] = message
        return message
