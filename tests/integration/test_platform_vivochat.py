"""A whole VivoChat handoff through the real app and a fake VivoChat, on SQLite and PostgreSQL.

The bridge routes region `es` to its VivoChat channel; the page then runs the VivoChat
widget with the same code and the customer id as userToken; VivoChat verifies the token,
an operator accepts, and the chat_accepted reply hands the operator the history.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from tests.adapters.fake_vivochat import FakeVivoChat, chat_accepted
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body

TOKEN = "vc-hook-5d2e8f0a71c94b36"
ES_CHANNEL = "1CafijNcdgYtDhS3vg9b1V"
MAIN_CHANNEL = "4mQx7RkTz2VbNc8LpYw1Ha"
CUSTOMER = "cust-7f3c9a1e5b2d4c68"


@pytest.fixture
async def vivochat() -> AsyncIterator[FakeVivoChat]:
    async with FakeVivoChat(
        widget_id="w-mysite", main_channel_id=MAIN_CHANNEL, regions={"es": ES_CHANNEL}
    ) as fake:
        yield fake


@pytest.fixture
async def vivo_bridge(
    database: Database, monkeypatch: pytest.MonkeyPatch, vivochat: FakeVivoChat
) -> AsyncIterator[RunningBridge]:
    monkeypatch.setenv("VIVOCHAT_WEBHOOK_TOKEN", TOKEN)
    options = {"webhook_token": "VIVOCHAT_WEBHOOK_TOKEN", "channel_id": ES_CHANNEL}
    settings = make_settings(
        database,
        unused_port(),
        channels={"mysite-es": {"platform": "vivochat", "options": options}},
    )
    bridge = await start_bridge(settings)
    hook = bridge.url(f"/webhooks/mysite-es/{TOKEN}")
    vivochat.webhooks[ES_CHANNEL] = hook
    vivochat.verification_url = hook
    try:
        yield bridge
    finally:
        await stop_bridge(bridge)


async def _outbox(bridge: RunningBridge, cid: str) -> list[dict[str, Any]]:
    status, listing = await bridge.get(f"/v1/outbox?conversation_id={cid}")
    assert status == 200, listing
    items: list[dict[str, Any]] = listing["items"]
    return items


def _joins(items: list[dict[str, Any]]) -> int:
    return sum(1 for item in items if item["event_type"] == "agent.joined")


async def _handoff(bridge: RunningBridge, bot: FakeBot, region: str) -> dict[str, Any]:
    body = handoff_body(bot.url, customer_id=CUSTOMER, region=region)
    status, conversation = await bridge.post("/v1/handoffs", body)
    assert status == 201, conversation
    return conversation  # type: ignore[no-any-return]


async def test_vivochat_handoff_from_region_to_accept_and_close(
    vivo_bridge: RunningBridge, vivochat: FakeVivoChat, bot: FakeBot
) -> None:
    bridge = vivo_bridge
    conversation = await _handoff(bridge, bot, "es")
    cid = conversation["id"]
    assert (conversation["channel"], conversation["platform"]) == ("mysite-es", "vivochat")
    assert conversation["route"]["rule"] == "region"
    # The open is delivered without a call to VivoChat: the ref is the widget's userToken.
    await bridge.get_until(f"/v1/conversations/{cid}", lambda c: c["external_ref"] == CUSTOMER)

    # A customer message is stored for the transcript, not relayed: the customer will
    # write to the operator in the widget itself.
    status, sent = await bridge.post(
        f"/v1/conversations/{cid}/messages", {"text": "Hello? Still there?", "id": "m-1"}
    )
    assert status == 201, sent
    assert [i["kind"] for i in await _outbox(bridge, cid) if i["kind"].startswith("agent.")] == [
        "agent.open"
    ]

    # A chat_accepted with a wrong URL token: 401, no data in the answer, nothing changed.
    forged = chat_accepted(CUSTOMER, "0e7c1d2a-0000-4000-8000-0000000000f0", ES_CHANNEL)
    status, refused = await bridge.post(f"/webhooks/mysite-es/{TOKEN}x", forged)
    assert status == 401, refused
    assert "customData" not in refused and "Where is my order?" not in str(refused)
    _, state = await bridge.get(f"/v1/conversations/{cid}")
    assert (state["status"], state["agent"]) == ("pending", None)
    assert _joins(await _outbox(bridge, cid)) == 0

    # The page runs the widget with the same region code; VivoChat verifies the token.
    dialog = await vivochat.run_widget(CUSTOMER, "es")
    assert (dialog["channelId"], dialog["clientId"]) == (ES_CHANNEL, CUSTOMER)
    [check] = vivochat.replies_of("client_check_token")
    assert check == {
        "result": "ok",
        "clientId": CUSTOMER,
        "contactInfo": {"name": "John Doe", "email": "john@example.com"},
    }

    # An operator accepts: the reply carries metadata, labels, transcript and contacts.
    accepted = await vivochat.accept(dialog["chatId"])
    assert accepted.status == 200, accepted
    reply = accepted.reply
    data = {entry["title"]: entry["content"] for entry in reply["customData"]}
    assert (data["plan"], data["order"], data["Labels"]) == ("vip", "42", "foo, bar")
    assert data["Handoff ID"] == cid
    transcript = data["Bot conversation"].splitlines()
    assert [line.split(": ", 1)[1] for line in transcript] == [
        "Where is my order?",
        "Let me get a person.",
        "Hello? Still there?",
    ]
    assert transcript[0].startswith("[2026-11-21 10:00 UTC] Customer")
    assert reply["contactInfo"] == {"name": "John Doe", "email": "john@example.com"}

    await bot.wait_for(lambda b: len(b.of_type("agent.joined")) == 1)
    joined = bot.of_type("agent.joined")[0]
    assert joined.data["conversation_id"] == cid
    assert joined.data["agent"]["name"] == "VivoChat operator"
    assert bot.bad_signatures == 0
    _, state = await bridge.get(f"/v1/conversations/{cid}")
    assert state["status"] == "active"

    # VivoChat sends the same chat_accepted again: answered the same, applied once.
    again = await vivochat.redeliver(accepted)
    assert (again.status, again.reply) == (200, reply)
    assert _joins(await _outbox(bridge, cid)) == 1

    # An unknown token gets a clear refusal (the visitor stays anonymous in VivoChat).
    unknown = await vivochat.check_token("cust-nobody-0000000000")
    assert unknown.status == 200 and unknown.reply["result"] != "ok"
    assert "clientId" not in unknown.reply

    # The bot closes: the bridge's side ends; VivoChat, with no close API, is not called.
    status, closed = await bridge.post(f"/v1/conversations/{cid}/close", {})
    assert (status, closed["status"]) == (200, "closed")
    await bridge.get_until(
        f"/v1/outbox?conversation_id={cid}",
        lambda listing: any(
            i["kind"] == "agent.close" and i["status"] == "delivered" for i in listing["items"]
        ),
    )
    # After the close nothing about the customer is handed out any more.
    after = await vivochat.check_token(CUSTOMER)
    assert after.reply["result"] != "ok"
    late = await vivochat.redeliver(accepted)
    assert (late.status, late.reply) == (200, {"result": "ok"})
    assert _joins(await _outbox(bridge, cid)) == 1
    assert bot.bad_signatures == 0 and bot.duplicates == 0
    assert vivochat.unexpected == []


async def test_chat_accepted_on_the_main_vivochat_channel_still_finds_the_customer(
    vivo_bridge: RunningBridge, vivochat: FakeVivoChat, bot: FakeBot
) -> None:
    # VivoChat's Regions table lacks `es`, so its dialog lands on the main channel, whose
    # webhook shares the URL (the docs allow one URL for several channels).
    vivochat.regions.clear()
    vivochat.webhooks[MAIN_CHANNEL] = vivochat.webhooks[ES_CHANNEL]
    conversation = await _handoff(vivo_bridge, bot, "es")
    dialog = await vivochat.run_widget(CUSTOMER, "es")
    assert dialog["channelId"] == MAIN_CHANNEL
    accepted = await vivochat.accept(dialog["chatId"])
    assert accepted.status == 200
    assert any(e["title"] == "Bot conversation" for e in accepted.reply["customData"])
    await bot.wait_for(lambda b: len(b.of_type("agent.joined")) == 1)
    assert bot.of_type("agent.joined")[0].data["conversation_id"] == conversation["id"]
    assert bot.bad_signatures == 0


async def test_anonymous_and_malformed_webhooks_change_nothing(
    vivo_bridge: RunningBridge, vivochat: FakeVivoChat, bot: FakeBot
) -> None:
    conversation = await _handoff(vivo_bridge, bot, "es")
    cid = conversation["id"]
    # A visitor who never came through the bot (no userToken): a plain ok.
    dialog = await vivochat.run_widget(None, "es")
    accepted = await vivochat.accept(dialog["chatId"])
    assert (accepted.status, accepted.reply) == (200, {"result": "ok"})
    status, error = await vivo_bridge.post(
        f"/webhooks/mysite-es/{TOKEN}", {"type": "chat_transferred", "chatId": "x"}
    )
    assert status == 400 and error["error"]["code"] == "malformed_payload"
    _, state = await vivo_bridge.get(f"/v1/conversations/{cid}")
    assert state["status"] == "pending"
    assert _joins(await _outbox(vivo_bridge, cid)) == 0
