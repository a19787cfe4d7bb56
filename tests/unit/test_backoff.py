"""The durable retry schedule: exponential, capped, jittered."""

from __future__ import annotations

from bridge.relay.worker import backoff_seconds
from bridge.settings import RelaySettings

SETTINGS = RelaySettings(backoff_initial_seconds=2, backoff_max_seconds=60)


def test_backoff_doubles_and_is_capped() -> None:
    highs = [backoff_seconds(n, SETTINGS, rand=lambda: 1.0) for n in range(1, 9)]
    assert highs == [2, 4, 8, 16, 32, 60, 60, 60]


def test_jitter_keeps_at_least_half_the_delay() -> None:
    lows = [backoff_seconds(n, SETTINGS, rand=lambda: 0.0) for n in range(1, 4)]
    assert lows == [1, 2, 4]
