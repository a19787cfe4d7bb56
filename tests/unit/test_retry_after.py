"""Retry-After from a platform: seconds or an HTTP date; anything else is ignored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.ports.http import parse_retry_after, quick_wait

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_delta_seconds_and_dates_are_read() -> None:
    assert parse_retry_after("30", NOW) == 30.0
    assert parse_retry_after("Tue, 01 Dec 2026 12:01:00 GMT", NOW) == 60.0


@pytest.mark.parametrize("value", [None, "", "²", "٣", "soon", "-5", "1.5e3x"])
def test_values_that_are_not_seconds_or_a_date_are_ignored(value: str | None) -> None:
    # "²" and "٣" pass str.isdigit() but not float(): a platform's odd header must not
    # break a delivery attempt.
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize(("failed", "base"), [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6), (5, 2.0)])
def test_quick_retries_wait_doubling_from_0_2_s_up_to_2_s_with_jitter(
    failed: int, base: float
) -> None:
    waits = [quick_wait(failed) for _ in range(200)]
    assert all(base <= wait <= base + 0.2 for wait in waits)
    assert len(set(waits)) > 1  # jittered, so retries of many deliveries spread out
