"""Tovie's Operator API through the real app, on SQLite and PostgreSQL.

Tovie (the fake) calls the bridge's apiUrl; an agent answers in the built-in console;
the agent's events reach the fake Tovie webhook as documented Operator API events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from bridge.typedefs import SERVICE
from tests.adapters.fake_tovie import FakeTovie, OperatorApiClient
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge

TOKEN = "it-tovie-apiurl-6b1d0e"
USER = "tovie-user-1"


@pytest.fixture
async def tovie() -> AsyncIterator[FakeTovie]:
    async with FakeTovie() as fake:
        yield fake


@pytest.fixture
async def running(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RunningBridge]:
    monkeypatch.setenv("TOVIE_IT_TOKEN", TOKEN)
    bots = {
        "tovie": {
            "platform": "tovie",
            "options": {"api_token": "TOVIE_IT_TOKEN", "history_limit": 2},
        }
    }
    bridge = await start_bridge(make_settings(database, unused_port(), bots=bots))
    try:
        yield bridge
    finally:
        await stop_bridge(bridge)


def operator_api(bridge: RunningBridge, token: str = TOKEN) -> OperatorApiClient:
    """Tovie's client for the apiUrl configured in Tovie."""
    return OperatorApiClient(bridge.http, bridge.url(f"/bots/tovie/{token}"))


async def transcript(bridge: RunningBridge, conversation_id: str) -> list[tuple[str, str]]:
    status, body = await bridge.get(f"/v1/conversations/{conversation_id}/messages")
    assert status == 200, body
    return [(m["role"], m["text"]) for m in body["messages"]]


async def open_handoff(bridge: RunningBridge, tovie: FakeTovie, **extra: Any) -> dict[str, Any]:
    api = operator_api(bridge)
    status, _ = await api.call("setWebhook", {"url": tovie.webhook_url})
    assert status == 200
    body = {"userId": USER, "destinationId": "mysite:es", "userName": "Juan Pérez", **extra}
    status, reply = await api.call("selectDestination", body)
    assert status == 200, reply
    status, conversation = await bridge.get(f"/v1/conversations/{reply['conversationId']}")
    assert status == 200
    opened: dict[str, Any] = conversation
    return opened


async def test_the_operator_api_flow_from_transfer_to_close(
    running: RunningBridge, tovie: FakeTovie
) -> None:
    api = operator_api(running)
    status, _ = await api.call("setWebhook", {"url": tovie.webhook_url})
    assert status == 200
    status, destinations = await api.call("getDestinations")
    assert status == 200
    ids = [d["destinationId"] for d in destinations]
    assert ids == ["mysite", "mysite:de", "mysite:en", "mysite:es"]

    # History: Tovie sends the last lines before the transfer; the last two are kept.
    for text in ("Hola", "Mi pedido no llega", "¿Me ayudáis?"):
        status, _ = await api.call("sendText", {"userId": USER, "text": text})
        assert status == 200
    status, reply = await api.call(
        "selectDestination",
        {
            "userId": USER,
            "destinationId": "mysite:es",
            "userName": "Juan Pérez",
            "attributes": {"email": "juan@example.com"},
            "customData": {"order": {"id": 42}},
        },
    )
    assert status == 200, reply
    cid = reply["conversationId"]
    status, conversation = await running.get(f"/v1/conversations/{cid}")
    assert (conversation["channel"], conversation["route"]["rule"]) == ("mysite-es", "region")
    assert conversation["bot"] == {"platform": "tovie", "conversation_id": USER}
    assert conversation["callback_url"] == tovie.webhook_url
    assert conversation["customer"]["firstname"] == "Juan"
    assert conversation["metadata"] == {"email": "juan@example.com", "order.id": 42}
    assert await transcript(running, cid) == [
        ("customer", "Mi pedido no llega"),
        ("customer", "¿Me ayudáis?"),
    ]

    # The agent joins and answers in the console; Tovie gets a notice and the answer.
    token = conversation["join_url"].rsplit("/", 1)[1]
    status, _ = await running.post(f"/console/api/{token}/join", {"name": "Ana López"})
    assert status == 200
    status, _ = await running.post(
        f"/console/api/{token}/messages", {"text": "Hola Juan, lo miro.", "client_id": "a-1"}
    )
    assert status == 201
    await tovie.wait_for(lambda t: len(t.of_type("TextMessage")) >= 2)
    notice, answer = tovie.of_type("TextMessage")
    assert notice["text"] == "Ana López joined the chat."
    assert (answer["userId"], answer["text"]) == (USER, "Hola Juan, lo miro.")
    assert answer["employee"]["firstName"] == "Ana"
    assert answer["employee"]["lastName"] == "López"
    assert answer["id"].startswith("msg_") and tovie.duplicates == 0

    # After the transfer, the client's texts and files are customer messages; a file is
    # an attachment, one the outbound policy refuses (a private address) a link line.
    status, _ = await api.call("sendText", {"userId": USER, "text": "Gracias"})
    assert status == 200
    receipt = {"url": "https://93.184.216.34/r.pdf", "fileName": "r.pdf", "size": 2048}
    status, _ = await api.call("sendFile", {"userId": USER, **receipt})
    assert status == 200
    status, _ = await api.call(
        "sendFile", {"userId": USER, "url": "http://10.0.0.9/x.pdf", "fileName": "x.pdf"}
    )
    assert status == 200
    assert (await transcript(running, cid))[-3:] == [
        ("customer", "Gracias"),
        ("customer", ""),
        ("customer", "x.pdf: http://10.0.0.9/x.pdf"),
    ]
    status, body = await running.get(f"/v1/conversations/{cid}/messages")
    assert body["messages"][-2]["attachments"] == [
        {"url": receipt["url"], "name": "r.pdf", "mime_type": "application/pdf", "size": 2048}
    ]

    # The agent's file reaches Tovie as a FileMessage.
    shot = {"url": "https://93.184.216.34/s.png", "name": "s.png", "mime_type": "image/png"}
    status, _ = await running.post(f"/console/api/{token}/messages", {"attachments": [shot]})
    assert status == 201
    await tovie.wait_for(lambda t: t.of_type("FileMessage"))
    (file_sent,) = tovie.of_type("FileMessage")
    assert (file_sent["userId"], file_sent["url"], file_sent["name"]) == (
        USER,
        shot["url"],
        "s.png",
    )

    # The client closes in Tovie; a repeated closeChat is answered 200 and changes nothing.
    for _ in range(2):
        status, _ = await api.call("closeChat", {"userId": USER, "text": "The user closed"})
        assert status == 200
    status, conversation = await running.get(f"/v1/conversations/{cid}")
    assert (conversation["status"], conversation["status_reason"]) == (
        "closed",
        "The user closed",
    )
    # Closed by Tovie itself: nothing is echoed back to Tovie.
    assert tovie.of_type("Closed") == []


async def test_a_repeated_select_destination_returns_the_same_conversation(
    running: RunningBridge, tovie: FakeTovie
) -> None:
    first = await open_handoff(running, tovie)
    again = await open_handoff(running, tovie)
    assert again["id"] == first["id"] and again["status"] == "pending"


async def test_an_agent_close_reaches_tovie_as_closed(
    running: RunningBridge, tovie: FakeTovie
) -> None:
    conversation = await open_handoff(running, tovie)
    token = conversation["join_url"].rsplit("/", 1)[1]
    status, _ = await running.post(f"/console/api/{token}/join", {"name": "Ana"})
    assert status == 200
    status, _ = await running.post(f"/console/api/{token}/close", {})
    assert status == 200
    await tovie.wait_for(lambda t: len(t.of_type("Closed")) == 1)
    [closed] = tovie.of_type("Closed")
    assert closed["userId"] == USER
    assert [e["type"] for e in tovie.events] == ["TextMessage", "Closed"]


async def test_a_failed_delivery_to_tovie_is_retried_under_the_same_id(
    running: RunningBridge, tovie: FakeTovie
) -> None:
    tovie.script = deque([500, 502])
    conversation = await open_handoff(running, tovie)
    token = conversation["join_url"].rsplit("/", 1)[1]
    await running.post(f"/console/api/{token}/join", {"name": "Ana"})
    await running.post(f"/console/api/{token}/messages", {"text": "Hola", "client_id": "a-1"})
    await tovie.wait_for(lambda t: len(t.events) == 2)
    notice, answer = tovie.events
    assert tovie.attempts[notice["id"]] == 3 and tovie.attempts[answer["id"]] == 1
    assert answer["text"] == "Hola" and tovie.duplicates == 0


async def test_a_wrong_token_is_401_and_nothing_is_stored(
    running: RunningBridge, tovie: FakeTovie
) -> None:
    intruder = operator_api(running, token="not-the-token")
    status, error = await intruder.call("setWebhook", {"url": "https://evil.example.com/hook"})
    assert (status, error["error"]["code"]) == (401, "invalid_signature")
    status, _ = await intruder.call("sendText", {"userId": USER, "text": "hi"})
    assert status == 401
    status, _ = await intruder.call(
        "selectDestination", {"userId": USER, "destinationId": "mysite"}
    )
    assert status == 401
    status, _ = await intruder.call("getDestinations")
    assert status == 401

    service = running.server.app[SERVICE]
    assert await service.get_state("tovie", "webhook_url") is None
    assert await service.find_by_bot_conversation("tovie", USER) is None
    # With the right token but no history from the intruder, the handoff starts empty.
    conversation = await open_handoff(running, tovie)
    assert await transcript(running, conversation["id"]) == []
