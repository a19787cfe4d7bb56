"""The typing relay's throttle and its fire-and-forget delivery, with a fake clock and bot."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import ClassVar

from bridge.db.tables import ConversationRow
from bridge.domain.status import Status
from bridge.errors import PlatformUnavailable
from bridge.ports.bot_side import BotSideAdapter
from bridge.ports.context import AdapterContext, NoOptions
from bridge.services.typing import TypingRelay


class RecordingBot(BotSideAdapter):
    """A bot side that keeps what it is given, or fails when told to."""

    platform: ClassVar[str] = "webhook"

    def __init__(self) -> None:
        super().__init__("webhook", NoOptions(), AdapterContext(http=None))  # type: ignore[arg-type]
        self.sent: list[tuple[str, str, dict[str, object]]] = []
        self.fail = False

    async def deliver_event(self, target: str, event_id: str, body: str) -> None:
        if self.fail:
            raise PlatformUnavailable("the bot is down")
        self.sent.append((target, event_id, json.loads(body)))


def _row(status: Status = Status.ACTIVE, cid: str = "c-1") -> ConversationRow:
    return ConversationRow(
        id=cid,
        status=status,
        channel="desk",
        bot_platform="webhook",
        bot_conversation_id=f"bot-{cid}",
        callback_url="http://bot.test/cb",
    )


async def test_one_event_per_conversation_per_interval() -> None:
    bot, now = RecordingBot(), [100.0]
    relay = TypingRelay({"webhook": bot}, min_interval=3.0, monotonic=lambda: now[0])
    assert relay.typing(_row(), "Ana")
    now[0] = 102.9
    assert not relay.typing(_row(), "Ana")
    assert relay.typing(_row(cid="c-2"), "Ben")  # another conversation has its own
    now[0] = 103.0
    assert relay.typing(_row(), "Ana")
    await relay.stop()
    assert [(s[0], s[2]["type"], s[2]["data"]["conversation_id"]) for s in bot.sent] == [
        ("http://bot.test/cb", "agent.typing", "c-1"),
        ("http://bot.test/cb", "agent.typing", "c-2"),
        ("http://bot.test/cb", "agent.typing", "c-1"),
    ]
    assert len({s[1] for s in bot.sent}) == 3  # a webhook-id of its own each


async def test_ended_conversations_and_failures_send_nothing_again() -> None:
    bot = RecordingBot()
    relay = TypingRelay({"webhook": bot}, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    assert not relay.typing(_row(Status.CLOSED), "Ana")
    bot.fail = True
    assert relay.typing(_row(), "Ana")
    await relay.stop()  # the failure is dropped, not raised, not retried
    assert bot.sent == []
