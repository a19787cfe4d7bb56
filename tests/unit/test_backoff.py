"""The durable retry schedule: the default one of about 28 hours, or exponential, capped."""

from __future__ import annotations

import pytest

from bridge.errors import PlatformRejected, PlatformUnavailable
from bridge.relay.schedule import backoff_seconds, retry_delay, retry_horizon_seconds
from bridge.settings import RelaySettings, load_settings
from tests.conftest import ROOT

SETTINGS = RelaySettings(backoff_initial_seconds=2, backoff_max_seconds=60)


def test_backoff_doubles_and_is_capped() -> None:
    highs = [backoff_seconds(n, SETTINGS, rand=lambda: 1.0) for n in range(1, 9)]
    assert highs == [2, 4, 8, 16, 32, 60, 60, 60]


def test_jitter_keeps_at_least_half_the_delay() -> None:
    lows = [backoff_seconds(n, SETTINGS, rand=lambda: 0.0) for n in range(1, 4)]
    assert lows == [1, 2, 4]


DEFAULTS = RelaySettings()
DAY = 24 * 3600


def test_the_default_schedule_retries_for_more_than_a_day() -> None:
    """Like trusted webhook senders (Svix ~28 h, Stripe 3 days), even with no jitter."""
    assert DEFAULTS.backoff_initial_seconds is None
    assert retry_horizon_seconds(DEFAULTS) >= DAY
    # The shipped config spells the same schedule out.
    shipped = load_settings(ROOT / "config" / "bridge.yaml").relay
    assert shipped.retry_schedule_seconds == DEFAULTS.retry_schedule_seconds
    assert retry_horizon_seconds(shipped) >= DAY


def test_the_schedule_is_followed_with_up_to_a_fifth_more() -> None:
    lows = [backoff_seconds(n, DEFAULTS, rand=lambda: 0.0) for n in range(1, 13)]
    highs = [backoff_seconds(n, DEFAULTS, rand=lambda: 1.0) for n in range(1, 13)]
    schedule = DEFAULTS.retry_schedule_seconds
    # Past its end the schedule's last wait repeats.
    assert lows == [*schedule, schedule[-1], schedule[-1]]
    assert highs == pytest.approx([low * 1.2 for low in lows])


def test_a_refusal_is_dead_at_once_and_a_passing_failure_is_not() -> None:
    assert retry_delay(PlatformRejected("HTTP 400"), 1, DEFAULTS) is None
    assert retry_delay(PlatformUnavailable("timed out"), 1, DEFAULTS) is not None
    last = DEFAULTS.max_attempts
    assert retry_delay(PlatformUnavailable("timed out"), last, DEFAULTS) is None


def test_retry_after_asking_longer_than_the_schedule_is_honoured() -> None:
    exc = PlatformUnavailable("HTTP 429", status=429, retry_after=3600)
    assert retry_delay(exc, 1, DEFAULTS, rand=lambda: 0.0) == 3600
    short = PlatformUnavailable("HTTP 429", status=429, retry_after=1)
    assert retry_delay(short, 1, DEFAULTS, rand=lambda: 0.0) == 5
