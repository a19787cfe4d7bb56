"""One measurement at a time: a load against some servers, and what reached the receiver.

A `Stage` is what a measurement works with (the servers under load, the receiver, the
scale). `measure_delivery` runs a load of marked messages and waits, up to the scale's
drain time, for them to arrive; `wait_quiet` waits for the bridge's outbox to empty so
one phase's backlog does not run into the next one's figures.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.relay.figures import CpuSample, Delivery, delivery
from bench.relay.load import LoadResult, Request, closed_loop, paced
from bench.relay.procs import Proc
from bench.relay.servers import BOT_PATH

_START = time.monotonic()


def say(text: str) -> None:
    """Progress on stderr, so a long run shows it is alive; the figures go to stdout."""
    print(f"[{time.monotonic() - _START:5.0f} s] {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Scale:
    """How big and how long each phase is."""

    name: str
    seconds: float  # each timed load
    max_messages: int  # a delivery load stops here, so its backlog drains in time
    drain_seconds: float  # how long arrivals are awaited after the last answer
    quiet_seconds: float  # how long a backlog is awaited before the next phase
    waiting: int  # conversations waiting before the second handoff measurement
    seed_seconds: float  # how long seeding them may take
    conversations: int  # conversations the messages are spread over, per direction
    probe_rate: float  # replicas: messages per second of the low-rate probe
    soak_messages: int  # messages through the service before the last RSS reading
    soak_seconds: float  # how long the soak may take


QUICK = Scale(
    name="quick",
    seconds=1.5,
    max_messages=600,
    drain_seconds=5,
    quiet_seconds=5,
    waiting=100,
    seed_seconds=10,
    conversations=32,
    probe_rate=20,
    soak_messages=0,
    soak_seconds=0,
)
FULL = Scale(
    name="full",
    seconds=10,
    max_messages=20_000,
    drain_seconds=30,
    quiet_seconds=30,
    waiting=10_000,
    seed_seconds=120,
    conversations=128,
    probe_rate=20,
    soak_messages=100_000,
    soak_seconds=60,
)
SMOKE = Scale(
    name="smoke",
    seconds=0.3,
    max_messages=40,
    drain_seconds=5,
    quiet_seconds=5,
    waiting=10,
    seed_seconds=10,
    conversations=4,
    probe_rate=20,
    soak_messages=0,
    soak_seconds=0,
)


@dataclass
class Stage:
    """The servers a measurement loads, the receiver it reads, and how."""

    servers: list[Proc]
    receiver: Proc
    scale: Scale
    concurrency: int
    admin_token: str | None = None

    @property
    def callback_url(self) -> str:
        """The fake bot's callback URL."""
        return f"http://127.0.0.1:{self.receiver.port}{BOT_PATH}"

    @property
    def server_roles(self) -> list[str]:
        """The roles of the servers under load, as CPU samples name them."""
        return [server.role for server in self.servers]

    def port(self, index: int) -> int:
        """The server for the index-th request: round robin over the replicas."""
        return self.servers[index % len(self.servers)].port

    async def counts(self) -> dict[str, Any]:
        """The receiver's counts: requests per kind, arrivals per prefix."""
        _, counts = await self.receiver.request_json("GET", "/_counts")
        assert isinstance(counts, dict)
        return counts

    async def arrivals(self, prefix: str) -> list[tuple[str, float]]:
        """Every arrival of a marker with this prefix, as (marker, monotonic time)."""
        _, answer = await self.receiver.request_json("GET", f"/_arrivals?prefix={prefix}")
        return [(str(marker), float(at)) for marker, at in answer["items"]]

    async def wait_arrivals(self, prefix: str, expected: int, deadline: float) -> None:
        """Until `expected` arrivals of the prefix, or the deadline."""
        while time.monotonic() < deadline:
            counts = await self.counts()
            if counts["arrivals"].get(prefix, 0) >= expected:
                return
            await asyncio.sleep(0.05)

    async def pending(self) -> int:
        """Deliveries waiting in the bridge's outbox (at most 1000 counted)."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        status, answer = await self.servers[0].request_json(
            "GET", "/v1/outbox?status=pending&limit=1000", headers=headers
        )
        if status != 200:
            raise RuntimeError(f"GET /v1/outbox answered {status}: {answer}")
        return len(answer["items"])

    async def wait_quiet(self) -> int:
        """Until the outbox is empty or the scale's quiet time passes; what is left."""
        deadline = time.monotonic() + self.scale.quiet_seconds
        while True:
            left = await self.pending()
            if not left or time.monotonic() >= deadline:
                return left
            await asyncio.sleep(0.2)

    def cpu(self) -> CpuSample:
        """CPU so far of the servers, the receiver and the load generator."""
        return CpuSample.take([*self.servers, self.receiver])


async def measure_delivery(
    stage: Stage,
    prefix: str,
    make: Callable[[int], Request],
    *,
    rate: float | None = None,
    seconds: float | None = None,
    limit: int | None = None,
) -> Delivery:
    """Closed-loop (or paced at `rate`) marked messages; their acceptance and arrival."""
    scale = stage.scale
    before = stage.cpu()
    load: LoadResult
    if rate is None:
        load = await closed_loop(
            make,
            concurrency=stage.concurrency,
            seconds=seconds or scale.seconds,
            limit=scale.max_messages if limit is None else limit,
        )
    else:
        load = await paced(
            make, rate=rate, seconds=seconds or scale.seconds, concurrency=stage.concurrency
        )
    accepted = sum(1 for o in load.ok() if o.marker is not None)
    await stage.wait_arrivals(prefix, accepted, time.monotonic() + scale.drain_seconds)
    after = stage.cpu()
    figures = delivery(load, await stage.arrivals(prefix), before, after, stage.server_roles, rate)
    if figures.undelivered:
        figures.notes.append(
            f"{figures.undelivered} accepted messages had not arrived"
            f" {scale.drain_seconds:g} s after the last answer"
        )
    return figures
