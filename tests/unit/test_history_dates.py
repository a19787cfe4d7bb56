"""History without `sent_at` is dated at the receipt, keeping the order the bot gave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.models import HistoryMessage
from bridge.services.messages import history_values

RECEIVED = datetime(2026, 11, 21, 10, 30, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def _history(*sent_at: str | None) -> list[HistoryMessage]:
    return [
        HistoryMessage.model_validate({"role": "customer", "text": f"m{i}", "sent_at": when})
        for i, when in enumerate(sent_at)
    ]


def _times(*sent_at: str | None) -> list[datetime]:
    return [row["sent_at"] for row in history_values("c-1", _history(*sent_at), RECEIVED)]


def test_undated_messages_get_the_receipt_time_in_the_order_given() -> None:
    assert _times(None, None, None) == [RECEIVED, RECEIVED + TICK, RECEIVED + 2 * TICK]


def test_dated_messages_keep_their_time_and_undated_ones_follow_them() -> None:
    times = _times("2026-11-21T10:00:00Z", None, "2026-11-21T10:01:00", None)
    assert times == [
        datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
        RECEIVED,
        # No offset means UTC.
        datetime(2026, 11, 21, 10, 1, tzinfo=UTC),
        RECEIVED + TICK,
    ]


def test_undated_message_after_a_later_dated_one_is_still_later() -> None:
    # A bot's clock ahead of the bridge's: the undated message still comes after it.
    ahead = datetime(2026, 11, 21, 11, 0, tzinfo=UTC)
    assert _times(None, ahead.isoformat(), None) == [RECEIVED, ahead, ahead + TICK]


def test_every_row_is_created_at_the_receipt() -> None:
    rows = history_values("c-1", _history("2026-11-21T10:00:00Z", None), RECEIVED)
    assert [(row["conversation_id"], row["created_at"]) for row in rows] == [("c-1", RECEIVED)] * 2
