"""Bad input gets a 4xx JSON answer naming the field, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from bridge.db.tables import ConversationRow, MessageRow, OutboxRow
from bridge.typedefs import STORE
from tests.conftest import RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body


async def _counts(bridge: RunningBridge) -> tuple[int, int, int]:
    async with bridge.server.app[STORE].transaction() as tx:
        counts = []
        for table in (ConversationRow, MessageRow, OutboxRow):
            query = select(func.count()).select_from(table)
            counts.append(int((await tx.session.execute(query)).scalar_one()))
    return counts[0], counts[1], counts[2]


def _fields(body: dict[str, Any]) -> dict[str, str]:
    return {f["field"]: f["problem"] for f in body["error"]["fields"]}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("customer"), "customer"),
        (lambda b: b["customer"].pop("id"), "customer.id"),
        (lambda b: b["bot"].update(conversation_id=""), "bot.conversation_id"),
        (lambda b: b.update(callback_url="not a url"), "callback_url"),
        (lambda b: b.update(history="nope"), "history"),
        (lambda b: b["history"][1].update(role="robot"), "history[1].role"),
        (lambda b: b["history"][0].update(sent_at="yesterday"), "history[0].sent_at"),
        (lambda b: b.update(metadata={"nested": {"a": 1}}), "metadata.nested"),
        (lambda b: b.update(colour="blue"), "colour"),
        (lambda b: b.update(channel="nowhere"), "channel"),
    ],
)
async def test_invalid_handoff_names_the_field_and_stores_nothing(
    bridge: RunningBridge, bot: FakeBot, mutate: Any, field: str
) -> None:
    body = handoff_body(bot.url)
    mutate(body)
    before = await _counts(bridge)
    status, answer = await bridge.post("/v1/handoffs", body)
    assert status == 422, answer
    assert answer["error"]["code"] == "invalid_input"
    assert any(name.startswith(field) for name in _fields(answer)), answer
    assert await _counts(bridge) == before


async def test_malformed_wrong_type_and_oversized_bodies(bridge: RunningBridge) -> None:
    before = await _counts(bridge)
    url = bridge.url("/v1/handoffs")
    json_header = {"Content-Type": "application/json"}
    async with bridge.http.post(url, data=b"{not json", headers=json_header) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "malformed_json"
    async with bridge.http.post(url, data=b"[1, 2]", headers=json_header) as response:
        assert response.status == 400
    async with bridge.http.post(url, data=b"a=b", headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 415
        assert _fields(await r.json()) == {"content-type": "is 'text/plain'"}
    big = b'{"x": "' + b"a" * (bridge.settings.server.max_body_bytes + 10) + b'"}'
    async with bridge.http.post(url, data=big, headers=json_header) as response:
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "payload_too_large"
    assert await _counts(bridge) == before


async def test_unknown_conversation_and_wrong_state(bridge: RunningBridge, bot: FakeBot) -> None:
    status, answer = await bridge.get("/v1/conversations/does-not-exist")
    assert status == 404
    assert _fields(answer) == {"conversation_id": "unknown conversation"}
    status, answer = await bridge.post("/v1/conversations/nope/messages", {"text": "hi"})
    assert status == 404

    _, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url))
    cid = conversation["id"]
    status, answer = await bridge.post(f"/v1/conversations/{cid}/messages", {"text": ""})
    assert status == 422 and "text" in _fields(answer)
    status, answer = await bridge.get(f"/v1/conversations/{cid}/messages?limit=abc")
    assert status == 422 and "limit" in _fields(answer)

    token = conversation["join_url"].rsplit("/", 1)[1]
    # The queue's announcement is written in the background: counted before, once it is in.
    await bot.wait_for(lambda b: any(e.type == "queue.updated" for e in b.other_events))
    before = await _counts(bridge)
    # An agent cannot reply before joining.
    status, answer = await bridge.post(f"/console/api/{token}/messages", {"text": "hello"})
    assert status == 409
    assert answer["error"]["code"] == "invalid_state"
    assert await _counts(bridge) == before


async def test_outbox_filters_are_validated(bridge: RunningBridge) -> None:
    status, answer = await bridge.get("/v1/outbox?status=lost")
    assert status == 422 and "status" in _fields(answer)
    status, answer = await bridge.post("/v1/outbox/abc/retry")
    assert status == 404
    status, answer = await bridge.post("/v1/outbox/999999/retry")
    assert status == 404


async def test_api_token_is_required_when_configured(database: Any, bot: FakeBot) -> None:
    from aiohttp.test_utils import unused_port

    settings = make_settings(database, unused_port(), security={"api_token": "s3cret"})
    bridge = await start_bridge(settings)
    try:
        status, answer = await bridge.post("/v1/handoffs", handoff_body(bot.url))
        assert status == 401
        assert list(_fields(answer)) == ["Authorization"]
        status, _ = await bridge.post(
            "/v1/handoffs", handoff_body(bot.url), headers={"Authorization": "Bearer wrong"}
        )
        assert status == 401
        status, _ = await bridge.post(
            "/v1/handoffs", handoff_body(bot.url), headers={"Authorization": "Bearer s3cret"}
        )
        assert status == 201
        # Health checks stay open for load balancers.
        status, _ = await bridge.get("/healthz")
        assert status == 200
    finally:
        await stop_bridge(bridge)
