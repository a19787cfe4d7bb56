"""CRM and helpdesk integration: signed lifecycle events out, signed updates in."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import unused_port
from standardwebhooks.webhooks import Webhook

from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body

INTEGRATION_SECRET = "whsec_dGhpcy1pcy1hLXRlc3Qtc2VjcmV0LTMyYnl0ZXM="
OLD_SECRET = "whsec_b2xkLXNlY3JldC1iZWZvcmUtdGhlLXJvdGF0aW9u"


@pytest.fixture
async def bridge(database: Database) -> AsyncIterator[RunningBridge]:
    """The bridge with two integration secrets active (a rotation in progress)."""
    settings = make_settings(
        database,
        unused_port(),
        security={"integration_secrets": [INTEGRATION_SECRET, OLD_SECRET]},
    )
    running = await start_bridge(settings)
    try:
        yield running
    finally:
        await stop_bridge(running)


def _signed(
    body: dict[str, Any], secret: str, msg_id: str, at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """Sign as a CRM would, with the standardwebhooks package."""
    from datetime import UTC, datetime

    raw = json.dumps(body)
    when = datetime.fromtimestamp(at if at is not None else time.time(), tz=UTC)
    signature = Webhook(secret).sign(msg_id, when, raw)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }
    return raw.encode(), headers


async def _post_signed(
    bridge: RunningBridge,
    path: str,
    body: dict[str, Any],
    secret: str,
    msg_id: str,
    at: float | None = None,
) -> tuple[int, Any]:
    raw, headers = _signed(body, secret, msg_id, at)
    async with bridge.http.post(bridge.url(path), data=raw, headers=headers) as response:
        return response.status, await response.json()


async def test_subscriber_gets_signed_lifecycle_events_in_order(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    async with FakeBot() as crm:
        status, sub = await bridge.post(
            "/v1/subscriptions", {"url": crm.url, "events": ["*"], "description": "CRM"}
        )
        assert status == 201 and sub["secret"].startswith("whsec_")
        crm.secret = sub["secret"]
        status, listing = await bridge.get("/v1/subscriptions")
        assert [s["id"] for s in listing["items"]] == [sub["id"]]
        assert "secret" not in listing["items"][0]

        _, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url))
        cid = conversation["id"]
        await bridge.post(f"/v1/conversations/{cid}/messages", {"text": "hello", "id": "m1"})
        token = conversation["join_url"].rsplit("/", 1)[1]
        await bridge.post(f"/console/api/{token}/join", {"name": "Ana"})
        await bridge.post(f"/console/api/{token}/messages", {"text": "hi", "client_id": "a1"})
        await bridge.post(f"/v1/conversations/{cid}/close", {})

        await crm.wait_for(lambda c: len(c.events) == 6)
        assert [e.type for e in crm.events] == [
            "handoff.requested",
            "handoff.routed",
            "customer.message",
            "agent.joined",
            "agent.message",
            "conversation.closed",
        ]
        assert crm.events[1].data["route"]["channel"] == "mysite-es"
        assert crm.events[0].data["customer"]["id"] == "cust-1"
        assert crm.bad_signatures == 0 and crm.duplicates == 0
        # The bot gets only what concerns it, under its own secret.
        await bot.wait_for(lambda b: len(b.events) == 2)
        assert [e.type for e in bot.events] == ["agent.joined", "agent.message"]

        status, _ = await bridge.post("/v1/subscriptions", {"url": crm.url, "events": ["nope"]})
        assert status == 422
        async with bridge.http.delete(bridge.url(f"/v1/subscriptions/{sub['id']}")) as r:
            assert r.status == 204
        async with bridge.http.delete(bridge.url(f"/v1/subscriptions/{sub['id']}")) as r:
            assert r.status == 404


async def test_signed_updates_apply_once_and_bad_signatures_store_nothing(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    _, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url))
    cid = conversation["id"]
    body = {
        "customer_id": "cust-1",
        "labels_add": ["gold"],
        "labels_remove": ["foo"],
        "email": "new@example.com",
    }
    status, answer = await _post_signed(
        bridge, "/integrations/customers", body, INTEGRATION_SECRET, "msg_c1"
    )
    assert (status, answer["updated_conversations"]) == (200, [cid])
    # A redelivery is acknowledged and changes nothing.
    status, answer = await _post_signed(
        bridge,
        "/integrations/customers",
        {**body, "labels_add": ["platinum"]},
        INTEGRATION_SECRET,
        "msg_c1",
    )
    assert (status, answer["updated_conversations"]) == (200, [])
    _, state = await bridge.get(f"/v1/conversations/{cid}")
    assert state["customer"]["labels"] == ["bar", "gold"]
    assert state["customer"]["email"] == "new@example.com"

    # The old secret still works during the rotation.
    status, answer = await _post_signed(
        bridge,
        f"/integrations/conversations/{cid}/metadata",
        {"metadata": {"tier": 2}},
        OLD_SECRET,
        "msg_m1",
    )
    assert (status, answer["metadata"]["tier"]) == (200, 2)

    for secret, at in (("whsec_" + "A" * 44, None), (INTEGRATION_SECRET, time.time() - 600)):
        status, answer = await _post_signed(
            bridge,
            f"/integrations/conversations/{cid}/metadata",
            {"metadata": {"x": 1}},
            secret,
            "msg_bad",
            at,
        )
        assert status == 401, answer
        assert answer["error"]["code"] == "invalid_signature"
    raw, headers = _signed({"metadata": {"x": 1}}, INTEGRATION_SECRET, "msg_flip")
    tampered = raw.replace(b"1", b"2")
    async with bridge.http.post(
        bridge.url(f"/integrations/conversations/{cid}/metadata"), data=tampered, headers=headers
    ) as response:
        assert response.status == 401
    _, state = await bridge.get(f"/v1/conversations/{cid}")
    assert "x" not in state["metadata"]

    status, _ = await _post_signed(
        bridge,
        "/integrations/presence",
        {"channel": "mysite-es", "agent_id": "ana", "name": "Ana", "presence": "online"},
        INTEGRATION_SECRET,
        "msg_p1",
    )
    assert status == 200


async def test_bot_updates_metadata_and_the_console_sees_it(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    _, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url))
    cid = conversation["id"]
    async with bridge.http.patch(
        bridge.url(f"/v1/conversations/{cid}/metadata"), json={"metadata": {"cart": 99.5}}
    ) as response:
        assert response.status == 200
        state = await response.json()
    assert state["metadata"] == {"plan": "vip", "order": 42, "cart": 99.5}
    token = conversation["join_url"].rsplit("/", 1)[1]
    _, view = await bridge.get(f"/console/api/{token}/conversation")
    assert view["conversation"]["metadata"]["cart"] == 99.5
    async with bridge.http.patch(
        bridge.url(f"/v1/conversations/{cid}/metadata"), json={"metadata": {"a": {"b": 1}}}
    ) as response:
        assert response.status == 422
    await bridge.post(f"/v1/conversations/{cid}/close", {})
    async with bridge.http.patch(
        bridge.url(f"/v1/conversations/{cid}/metadata"), json={"metadata": {"late": True}}
    ) as response:
        assert response.status == 409


async def test_integrations_are_refused_without_a_secret(database: Database) -> None:
    running = await start_bridge(make_settings(database, unused_port()))
    try:
        status, answer = await _post_signed(
            running,
            "/integrations/presence",
            {"channel": "mysite", "agent_id": "a", "presence": "online"},
            INTEGRATION_SECRET,
            "msg_x",
        )
        assert status == 403
        assert "INTEGRATION_SECRETS" in answer["error"]["message"]
    finally:
        await stop_bridge(running)
