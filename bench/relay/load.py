"""The load generator: closed-loop (c workers, as fast as answers come) and paced runs.

Each worker owns one keep-alive connection per port. Every request's send and answer
times are kept (`time.monotonic`, which on Linux is one clock for every process, so the
receiver's arrival times compare with them directly).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from bench.relay.client import ClientFailure, Connection


@dataclass(frozen=True, slots=True)
class Request:
    """One request of a run: where, the prepared bytes, and the marker the receiver will see."""

    port: int
    data: bytes
    marker: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one request; status 0 when no response came."""

    index: int
    marker: str | None
    status: int
    started: float
    finished: float
    body: bytes = b""


@dataclass
class LoadResult:
    """Every outcome of a run, and its CPU cost to this (the load) process."""

    outcomes: list[Outcome] = field(default_factory=list)
    began: float = 0.0
    ended: float = 0.0
    client_cpu_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        """From the first send to the last answer."""
        return max(self.ended - self.began, 1e-9)

    def ok(self, accepted: Iterable[int] = (200, 201, 204)) -> list[Outcome]:
        """The outcomes with a success status."""
        wanted = set(accepted)
        return [o for o in self.outcomes if o.status in wanted]

    def failures(self, accepted: Iterable[int] = (200, 201, 204)) -> dict[str, int]:
        """Count of each other status (`no answer` for status 0)."""
        wanted = set(accepted)
        counts = Counter(
            "no answer" if o.status == 0 else str(o.status)
            for o in self.outcomes
            if o.status not in wanted
        )
        return dict(counts)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of values; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def _worker(
    make: Callable[[int], Request],
    next_index: Callable[[], int | None],
    result: LoadResult,
    keep_bodies: bool,
    due: Callable[[int], float] | None,
) -> None:
    connections: dict[int, Connection] = {}
    try:
        while (index := next_index()) is not None:
            if due is not None and (wait := due(index) - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            request = make(index)
            connection = connections.get(request.port)
            if connection is None:
                connection = connections[request.port] = Connection(request.port)
            started = time.monotonic()
            try:
                response = await connection.send(request.data)
                status, body = response.status, response.body if keep_bodies else b""
            except ClientFailure:
                status, body = 0, b""
            result.outcomes.append(
                Outcome(index, request.marker, status, started, time.monotonic(), body)
            )
    finally:
        for connection in connections.values():
            await connection.close()


async def _run(
    make: Callable[[int], Request],
    next_index: Callable[[], int | None],
    concurrency: int,
    keep_bodies: bool,
    due: Callable[[int], float] | None = None,
) -> LoadResult:
    result = LoadResult()
    cpu = time.process_time()
    workers = [_worker(make, next_index, result, keep_bodies, due) for _ in range(concurrency)]
    await asyncio.gather(*workers)
    result.client_cpu_seconds = time.process_time() - cpu
    if result.outcomes:
        result.began = min(o.started for o in result.outcomes)
        result.ended = max(o.finished for o in result.outcomes)
    return result


async def closed_loop(
    make: Callable[[int], Request],
    *,
    concurrency: int,
    seconds: float,
    limit: int,
    keep_bodies: bool = False,
) -> LoadResult:
    """Send requests 0, 1, 2, … from `concurrency` workers until `seconds` or `limit` is reached.

    A request in flight at the deadline is still awaited and counted.
    """
    counter = itertools.count()
    deadline = time.monotonic() + seconds

    def next_index() -> int | None:
        index = next(counter)
        return index if index < limit and time.monotonic() < deadline else None

    return await _run(make, next_index, concurrency, keep_bodies)


async def paced(
    make: Callable[[int], Request], *, rate: float, seconds: float, concurrency: int
) -> LoadResult:
    """Offer `rate` requests per second for `seconds`, each started on its schedule or late.

    When every worker is busy, requests start late, and none starts after `seconds`: the
    achieved rate is then below the offered one, which the report shows.
    """
    counter = itertools.count()
    total = max(1, round(rate * seconds))
    start = time.monotonic()
    deadline = start + seconds

    def next_index() -> int | None:
        index = next(counter)
        return index if index < total and time.monotonic() < deadline else None

    return await _run(make, next_index, concurrency, False, due=lambda i: start + i / rate)
