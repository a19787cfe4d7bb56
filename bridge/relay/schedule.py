"""When a failed delivery is tried again, and when it is dead."""

from __future__ import annotations

import random
from collections.abc import Callable

from bridge.errors import PlatformError
from bridge.settings import RelaySettings

# Up to this share of a scheduled delay is added at random, so receivers that failed
# together are not retried together.
SCHEDULE_JITTER = 0.2


def backoff_seconds(
    attempts: int, settings: RelaySettings, rand: Callable[[], float] = random.random
) -> float:
    """The wait after the attempt just failed (1-based), jitter included.

    The retry schedule's n-th entry (its last repeats) plus up to 20%; or, when
    `backoff_initial_seconds` is set, capped exponential backoff with equal jitter.
    """
    if settings.backoff_initial_seconds is not None:
        ceiling: float = min(
            settings.backoff_max_seconds, settings.backoff_initial_seconds * 2.0 ** (attempts - 1)
        )
        return ceiling / 2 + rand() * ceiling / 2
    schedule = settings.retry_schedule_seconds
    delay = float(schedule[min(attempts, len(schedule)) - 1])
    return delay * (1 + SCHEDULE_JITTER * rand())


def retry_delay(
    exc: PlatformError,
    attempts: int,
    settings: RelaySettings,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds until the next attempt after `attempts` attempts, or None: the row is dead.

    A refusal (a 4xx) is dead at once, as is the last attempt; a Retry-After is honoured
    when it asks for longer than the schedule.
    """
    if not exc.retryable or attempts >= settings.max_attempts:
        return None
    delay = backoff_seconds(attempts, settings, rand)
    retry_after = getattr(exc, "retry_after", None)
    return delay if retry_after is None else max(delay, retry_after)


def retry_horizon_seconds(settings: RelaySettings) -> float:
    """The shortest time from a first failed attempt to a delivery being dead."""
    return sum(
        backoff_seconds(n, settings, rand=lambda: 0.0) for n in range(1, settings.max_attempts)
    )
