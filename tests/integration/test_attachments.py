"""Attachments through the real app, on SQLite and PostgreSQL.

A customer's screenshot, an agent's file and the files of a handoff's history are stored
as links with their name, MIME type and size, shown in the transcript and the console,
and reach the bot in `agent.message`. The `attachments` settings and the outbound URL
policy refuse files with a 422 naming the field, and a refused message stores nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from bridge.settings import Settings
from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fake_dns import TableResolver
from tests.fakes import FakeBot, handoff_body

SHOT = {
    "url": "https://files.example/u/screenshot.png",
    "name": "screenshot.png",
    "mime_type": "image/png",
    "size": 512,
}
INVOICE = {
    "url": "https://93.184.216.34/invoice-42.pdf",
    "name": "invoice 42.pdf",
    "mime_type": "application/pdf",
    "size": 900,
}


@pytest.fixture
def bridge_settings(database: Database) -> Settings:
    """Ana in team support; at most two files of up to 1000 bytes, images and PDFs only."""
    return make_settings(
        database,
        unused_port(),
        agents=[{"id": "ana", "name": "Ana", "teams": ["support"]}],
        teams=[{"id": "support"}],
        channels={"mysite-es": {"team_id": "support"}},
        attachments={
            "max_count": 2,
            "max_size_bytes": 1000,
            "allowed_mime_types": ["image/*", "application/pdf"],
        },
    )


@pytest.fixture
async def bridge(bridge_settings: Settings) -> AsyncIterator[RunningBridge]:
    """The bridge, with names that resolve to a public and to a private address."""
    resolver = TableResolver(
        {"files.example": [["93.184.216.34"]], "intranet.example": [["10.0.0.7"]]}
    )
    running = await start_bridge(bridge_settings, resolver=resolver)
    try:
        yield running
    finally:
        await stop_bridge(running)


async def assigned_to_ana(bridge: RunningBridge, bot: FakeBot, **extra: Any) -> tuple[str, str]:
    """A handoff Ana takes: its id and the console token."""
    status, conversation = await bridge.post("/v1/handoffs", handoff_body(bot.url, **extra))
    assert status == 201, conversation
    cid = str(conversation["id"])
    status, body = await bridge.post(f"/v1/conversations/{cid}/assign", {"agent_id": "ana"})
    assert status == 200, body
    return cid, str(body["join_url"].rsplit("/", 1)[1])


async def test_a_customer_screenshot_is_kept_and_shown_as_a_link(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """A message of one file and no text is stored; the transcript and the console show it;
    a message without files shows no `attachments` at all, as before."""
    cid, token = await assigned_to_ana(bridge, bot)
    path = f"/v1/conversations/{cid}/messages"
    shot = {**SHOT, "mime_type": "Image/PNG"}
    status, body = await bridge.post(path, {"attachments": [shot], "id": "m-1"})
    assert status == 201, body
    assert body["message"]["text"] == ""
    assert body["message"]["attachments"] == [SHOT]  # the type in lower case
    # A retry with the same id answers the stored message, files and all.
    status, again = await bridge.post(path, {"attachments": [shot], "id": "m-1"})
    assert (status, again["message"]) == (200, body["message"])
    status, plain = await bridge.post(path, {"text": "It fails at checkout"})
    assert status == 201, plain
    assert "attachments" not in plain["message"]

    status, transcript = await bridge.get(path)
    assert status == 200, transcript
    newest = transcript["messages"][-2:]
    assert [m.get("attachments") for m in newest] == [[SHOT], None]
    status, console = await bridge.get(f"/console/api/{token}/conversation")
    assert status == 200, console
    assert console["messages"][-2]["attachments"] == [SHOT]


async def test_an_agent_file_reaches_the_bot_in_agent_message(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """The console's agent attaches a link; the bot's agent.message carries it."""
    _, token = await assigned_to_ana(bridge, bot)
    message = {"text": "Here is your invoice", "attachments": [INVOICE], "client_id": "c-1"}
    status, body = await bridge.post(f"/console/api/{token}/messages", message)
    assert status == 201, body

    await bot.wait_for(lambda b: b.of_type("agent.message"))
    (event,) = bot.of_type("agent.message")
    sent = event.data["message"]
    assert (sent["author"], sent["text"], sent["attachments"]) == (
        "Ana",
        "Here is your invoice",
        [INVOICE],
    )


async def test_history_files_are_stored_with_the_handoff(
    bridge: RunningBridge, bot: FakeBot
) -> None:
    """A history message may be a file; one the settings refuse refuses the handoff."""
    history = [
        {"role": "customer", "text": "This is what I see", "attachments": [SHOT]},
        {"role": "bot", "text": "Let me get a person."},
    ]
    refused = [{"role": "customer", "attachments": [{**SHOT, "mime_type": "text/html"}]}]
    status, body = await bridge.post("/v1/handoffs", handoff_body(bot.url, history=refused))
    assert status == 422, body
    assert [f["field"] for f in body["error"]["fields"]] == ["history[0].attachments[0].mime_type"]

    cid, _ = await assigned_to_ana(bridge, bot, history=history)
    status, transcript = await bridge.get(f"/v1/conversations/{cid}/messages")
    assert status == 200, transcript
    assert [m.get("attachments") for m in transcript["messages"]] == [[SHOT], None]


@pytest.mark.parametrize(
    ("attachments", "field"),
    [
        ([SHOT, SHOT, SHOT], "attachments"),
        ([{**SHOT, "size": 1001}], "attachments[0].size"),
        ([SHOT, {**INVOICE, "mime_type": "application/zip"}], "attachments[1].mime_type"),
        ([{**SHOT, "mime_type": "png"}], "attachments[0].mime_type"),
        ([{**SHOT, "url": "ftp://files.example/a.png"}], "attachments[0].url"),
        ([{**SHOT, "url": "http://10.0.0.7/a.png"}], "attachments[0].url"),
        ([{**SHOT, "url": "https://intranet.example/a.png"}], "attachments[0].url"),
        ([{**SHOT, "url": "https://nowhere.example/a.png"}], "attachments[0].url"),
        ([{**SHOT, "name": ""}], "attachments[0].name"),
        ([{**SHOT, "size": -1}], "attachments[0].size"),
        ([{**SHOT, "extra": 1}], "attachments[0].extra"),
        ([], "text"),
    ],
)
async def test_refused_files_are_a_422_naming_the_field_and_store_nothing(
    bridge: RunningBridge, bot: FakeBot, attachments: list[dict[str, Any]], field: str
) -> None:
    """Limits, syntax and the outbound policy (an address or a name that resolves into the
    bridge's network, or nowhere) each name the field; the transcript stays as it was."""
    cid, token = await assigned_to_ana(bridge, bot)
    path = f"/v1/conversations/{cid}/messages"
    status, before = await bridge.get(path)
    assert status == 200, before
    for sender, body in (
        (path, {"attachments": attachments}),
        (f"/console/api/{token}/messages", {"attachments": attachments}),
    ):
        status, answer = await bridge.post(sender, body)
        assert status == 422, answer
        assert field in [f["field"] for f in answer["error"]["fields"]], answer
    status, after = await bridge.get(path)
    assert after == before
