"""The suite's one way to wait: look again until something holds, within a deadline.

Tests never sleep a fixed time and assert afterwards: a relay, a platform echo or a
restarted process takes as long as it takes. `eventually` polls a probe (plain or async)
and returns the first value that holds; past the deadline it fails with the last value it
saw, so a failure says what the test was looking at, not only that time ran out.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

# Long enough for a relay with retries on a busy two-core machine; a wait ends as soon as
# its condition holds, so a generous bound costs nothing when things work.
WITHIN_SECONDS = 15.0
# What is polled is local (an in-process fake, the bridge on loopback): looking often is cheap.
EVERY_SECONDS = 0.05


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]],
    holds: Callable[[T], object] = ...,
    *,
    within: float = ...,
    every: float = ...,
    what: str = ...,
    show: Callable[[T], object] = ...,
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T],
    holds: Callable[[T], object] = ...,
    *,
    within: float = ...,
    every: float = ...,
    what: str = ...,
    show: Callable[[T], object] = ...,
) -> T: ...


async def eventually(
    probe: Callable[[], Any],
    holds: Callable[[Any], object] = bool,
    *,
    within: float = WITHIN_SECONDS,
    every: float = EVERY_SECONDS,
    what: str = "the condition",
    show: Callable[[Any], object] = repr,
) -> Any:
    """Call `probe` until `holds(value)`; return that value, or fail showing the last one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if holds(value):
            return value
        if loop.time() >= deadline:
            raise AssertionError(
                f"timed out after {within} s waiting for {what}; saw {show(value)}"
            )
        await asyncio.sleep(every)
