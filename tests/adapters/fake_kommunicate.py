"""A fake Kommunicate: its REST API on a real aiohttp server (port 0), and its message webhook.

It answers like the platform (`{"status", "generatedAt", "response"}`), keeps group
metadata as string to string, returns the existing group for a repeated `clientGroupId`,
and records every message it accepts with its metadata, a repeated one too: Kommunicate
documents no deduplication of sends. `scripts` holds statuses to answer an operation
with before it succeeds (e.g. `scripts["send"] = deque([500, 500])`); `lost.lose_next()`
makes it store the next message and drop the answer. With `webhook_url` set, every
accepted message is posted back to it, as Kommunicate posts every message of a
conversation to the configured webhook.
"""

from __future__ import annotations

import base64
import itertools
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from adapters.kommunicate.inbound import MESSAGE_ID_KEY
from tests.kit.fake_platform import FakePlatform
from tests.kit.lost_answers import LostAnswers

CREATE_PATH = "/rest/ws/group/conversation"
SEND_PATH = "/rest/ws/message/v2/send"
ASSIGN_PATH = "/rest/ws/group/assignee/change"
STATUS_PATH = "/rest/ws/group/status/change"
DEFAULT_BOT = "bot"


def basic(token: str) -> str:
    """The `Authentication` header value Kommunicate sends for a webhook token."""
    return "Basic " + base64.b64encode(token.encode()).decode()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _error(status: int, code: str, description: str) -> web.Response:
    body = {
        "status": "error",
        "errorResponse": [{"errorCode": code, "description": description}],
        "generatedAt": _now_ms(),
    }
    return web.json_response(body, status=status)


def _success(response: Any) -> web.Response:
    return web.json_response({"status": "success", "generatedAt": _now_ms(), "response": response})


@dataclass
class Group:
    """A conversation as the fake keeps it."""

    id: int
    client_group_id: str
    name: str
    members: list[str]
    metadata: dict[str, str]
    status: int = 1
    assignee: str | None = None


@dataclass
class FakeKommunicate(FakePlatform):
    """The platform's side of the adapter, recording what it receives.

    Its script is per operation (`scripts`), not the base's one `script` for every request.
    """

    api_key: str
    webhook_token: str
    webhook_url: str | None = None
    groups: dict[int, Group] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    assignments: list[dict[str, str]] = field(default_factory=list)
    status_changes: list[dict[str, str]] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    scripts: dict[str, deque[int]] = field(default_factory=dict)
    unauthorized: int = 0
    echo_statuses: list[int] = field(default_factory=list)
    # Only sends lose their answer (after the message was stored).
    lost: LostAnswers = field(
        default_factory=lambda: LostAnswers(frozenset({SEND_PATH})), kw_only=True
    )
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(81_000_001))
    _keys: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- lifecycle ------------------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """The REST API the adapter calls; the base URL is the adapter's `base_url`."""
        router.add_post(CREATE_PATH, self._create)
        router.add_post(SEND_PATH, self._send)
        router.add_patch(ASSIGN_PATH, self._assign)
        router.add_patch(STATUS_PATH, self._status)

    # -- what tests read ------------------------------------------------------------------

    def group(self, client_group_id: str) -> Group | None:
        """The group created for one of the bridge's conversations."""
        return next((g for g in self.groups.values() if g.client_group_id == client_group_id), None)

    def texts(self, group_id: int | None = None) -> list[str]:
        """The accepted message texts, in order (of one group when given)."""
        return [m["message"] for m in self.messages if group_id is None or m["groupId"] == group_id]

    def message_ids(self, group_id: int | None = None) -> list[str | None]:
        """The bridge's message id in each accepted message's metadata, in order."""
        return [
            m["metadata"].get(MESSAGE_ID_KEY)
            for m in self.messages
            if group_id is None or m["groupId"] == group_id
        ]

    def report(self) -> str:
        """The platform's state, for a wait that timed out."""
        return (
            f"groups={list(self.groups.values())} messages={self.messages}"
            f" statuses={self.status_changes} attempts={dict(self.attempts)}"
        )

    # -- the message webhook --------------------------------------------------------------

    def webhook_payload(
        self,
        group: Group | int | str,
        text: str,
        *,
        sender: str,
        key: str | None = None,
        metadata: dict[str, str] | None = None,
        client_group_id: str | None = None,
    ) -> dict[str, Any]:
        """A message webhook body, shaped as Kommunicate's webhook documentation shows it."""
        if isinstance(group, Group):
            group_id, client_group_id, name = group.id, group.client_group_id, group.name
        else:
            known = self.groups.get(int(group))
            group_id = int(group)
            client_group_id = client_group_id or (known.client_group_id if known else str(group))
            name = known.name if known else "Conversation"
        payload: dict[str, Any] = {
            "key": key or f"5-{group_id}-{next(self._keys)}",
            "from": sender,
            "groupId": group_id,
            "clientGroupId": client_group_id,
            "groupName": name,
            "message": text,
            "timeStamp": _now_ms(),
            "receiverConnected": False,
            "receiverLastSeenAtTime": _now_ms(),
        }
        if metadata:
            payload["metadata"] = metadata
        return payload

    def echo_payload(self, message: dict[str, Any]) -> dict[str, Any]:
        """The webhook Kommunicate sends for a message posted through the API."""
        return self.webhook_payload(
            message["groupId"],
            message["message"],
            sender=message["fromUserName"],
            key=message["key"],
            metadata=message["metadata"],
        )

    async def deliver(self, payload: dict[str, Any], token: str | None = None) -> int:
        """POST a webhook to `webhook_url` as Kommunicate does; returns the answer's status."""
        assert self.webhook_url is not None
        headers = {"Authentication": basic(token if token is not None else self.webhook_token)}
        async with self.http.post(self.webhook_url, json=payload, headers=headers) as answer:
            await answer.read()
            return answer.status

    async def _echo(self, message: dict[str, Any]) -> None:
        try:
            status = await self.deliver(self.echo_payload(message))
        except aiohttp.ClientError:
            status = -1
        self.echo_statuses.append(status)

    # -- the REST API ---------------------------------------------------------------------

    def _refuse(self, request: web.Request, operation: str) -> web.Response | None:
        if request.headers.get("Api-Key") != self.api_key:
            self.unauthorized += 1
            return _error(401, "AUTHENTICATION_FAILED", "invalid Api-Key")
        self.attempts[operation] += 1
        script = self.scripts.get(operation)
        if script:
            status = script.popleft()
            return _error(status, "SCRIPTED", f"scripted {status}")
        return None

    async def _create(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request, "create")) is not None:
            return refused
        body = await request.json()
        members = body.get("groupMemberList")
        metadata = body.get("metadata") or {}
        if not isinstance(body.get("groupName"), str) or not body["groupName"]:
            return _error(400, "AL-G-05", "groupName is required")
        if (
            not isinstance(members, list)
            or not members
            or not all(isinstance(m, str) for m in members)
        ):
            return _error(400, "AL-G-06", "groupMemberList needs at least one user id")
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            return _error(400, "AL-G-07", "group metadata is a map of strings")
        client_group_id = str(body.get("clientGroupId") or "")
        group = self.group(client_group_id) if client_group_id else None
        if group is None:
            group_id = next(self._ids)
            group = Group(
                id=group_id,
                client_group_id=client_group_id or str(group_id),
                name=body["groupName"],
                # Kommunicate puts its default bot in every conversation.
                members=list(dict.fromkeys([*members, DEFAULT_BOT])),
                metadata=dict(metadata),
                assignee=metadata.get("CONVERSATION_ASSIGNEE"),
            )
            self.groups[group_id] = group
        return _success(
            {
                "id": group.id,
                "clientGroupId": group.client_group_id,
                "name": group.name,
                "adminId": DEFAULT_BOT,
                "membersId": group.members,
                "metadata": group.metadata,
                "createdAtTime": _now_ms(),
                "updatedAtTime": _now_ms(),
            }
        )

    def _known_group(self, raw: Any) -> Group | None:
        try:
            return self.groups.get(int(raw))
        except (TypeError, ValueError):
            return None

    async def _send(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request, "send")) is not None:
            return refused
        body = await request.json()
        group = self._known_group(body.get("groupId"))
        if group is None:
            return _error(400, "AL-G-01", "group does not exist")
        if not isinstance(body.get("message"), str) or not isinstance(
            body.get("fromUserName"), str
        ):
            return _error(400, "AL-M-01", "message and fromUserName are required")
        message = {
            "key": f"5-{group.id}-{next(self._keys)}",
            "groupId": group.id,
            "message": body["message"],
            "fromUserName": body["fromUserName"],
            "metadata": dict(body.get("metadata") or {}),
        }
        self.messages.append(message)
        if self.webhook_url is not None:
            self.spawn(self._echo(message))
        return _success({"messageKey": message["key"], "createdAt": _now_ms()})

    async def _assign(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request, "assign")) is not None:
            return refused
        group = self._known_group(request.query.get("groupId"))
        assignee = request.query.get("assignee")
        if group is None or not assignee or not request.headers.get("Of-User-Id"):
            return _error(400, "AL-G-01", "groupId, assignee and Of-User-Id are required")
        self.assignments.append({**request.query, "Of-User-Id": request.headers["Of-User-Id"]})
        already = group.assignee == assignee
        group.assignee = assignee
        return _success("already updated" if already else "updated")

    async def _status(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request, "status")) is not None:
            return refused
        group = self._known_group(request.query.get("groupId"))
        status = request.query.get("status", "")
        if group is None or status not in {"1", "2", "3", "4", "5"}:
            return _error(400, "AL-G-01", "a known groupId and a status 1-5 are required")
        if not request.headers.get("Of-User-Id"):
            return _error(400, "AL-U-01", "Of-User-Id is required")
        self.status_changes.append({**request.query, "Of-User-Id": request.headers["Of-User-Id"]})
        group.status = int(status)
        return _success("updated")
