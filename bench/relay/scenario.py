"""What is measured, in order: the two anchors, then each configuration of the bridge.

A bridge configuration (SQLite or PostgreSQL, 1 process or 2 replicas) goes through:
handoffs with no conversation waiting; seeding the main channel's queue (not timed);
handoffs with that many waiting; opening the conversations the messages use (not
timed); customer→platform messages as fast as they are accepted, then paced at half the
relay anchor's rate; agent→bot messages; for replicas, a low-rate probe; in full mode a
soak up to 100,000 messages; and RSS readings along the way.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.relay import bodies
from bench.relay.client import ClientFailure
from bench.relay.figures import AnchorFigures, BridgeFigures, Requests, Soak
from bench.relay.load import LoadResult, Request, closed_loop
from bench.relay.phases import Scale, Stage, measure_delivery, say
from bench.relay.procs import Proc, StartFailed, start_server
from bench.relay.servers import KOMMUNICATE_PREFIX, SEND_PATH
from bench.relay.service import (
    KOMMUNICATE_CHANNEL,
    Secrets,
    agent_region,
    database,
    start_bridges,
)

UNLIMITED = 10**9


async def measure_anchors(
    receiver: Proc, directory: Path, scale: Scale, concurrency: int
) -> AnchorFigures:
    """The bare app and the non-durable relay, each in its own process, same requests."""

    def message(server: Proc, prefix: str) -> Callable[[int], Request]:
        return lambda i: bodies.customer_message(server.port, f"c{i % 64}", f"{prefix}.{i}")

    bare = await start_server("bare", directory)
    try:
        stage = Stage([bare], receiver, scale, concurrency)
        before = stage.cpu()
        load = await closed_loop(
            message(bare, "bare"), concurrency=concurrency, seconds=scale.seconds, limit=UNLIMITED
        )
        after = stage.cpu()
        used = after.used_since(before, stage.server_roles)
        bare_rss = bare.rss()
    finally:
        await bare.stop()
    forward = f"http://127.0.0.1:{receiver.port}{KOMMUNICATE_PREFIX}{SEND_PATH}"
    relay = await start_server("relay", directory, forward)
    try:
        stage = Stage([relay], receiver, scale, concurrency)
        relayed = await measure_delivery(stage, "relay", message(relay, "relay"), limit=UNLIMITED)
        relay_rss = relay.rss()
    finally:
        await relay.stop()
    ok = len(load.ok())
    return AnchorFigures(
        bare=Requests.of(load),
        bare_cpu_ms_per_request=1000 * used / ok if ok else math.nan,
        bare_rss_mb=bare_rss,
        bare_cpu_percent=after.percent_since(before),
        relay=relayed,
        relay_rss_mb=relay_rss,
    )


async def measure_bridge(
    kind: str,
    processes: int,
    receiver: Proc,
    directory: Path,
    scale: Scale,
    concurrency: int,
    relay_rate: float,
) -> BridgeFigures:
    """Start the service on a fresh database and measure everything for one configuration."""
    label = f"{'SQLite' if kind == 'sqlite' else 'PostgreSQL'}, {processes} process" + (
        "es" if processes > 1 else ""
    )
    figures = BridgeFigures(label, kind, processes)
    keys = Secrets.fresh()
    # Markers' prefixes are unique in the run: one receiver serves every configuration.
    tag = f"{kind[:2]}{processes}"
    say(f"bridge, {label}: starting")
    async with database(kind, directory) as db:
        try:
            bridges = await start_bridges(
                db, processes, directory, receiver.port, keys, scale.conversations
            )
        except StartFailed as exc:
            figures.error, _, tail = str(exc).partition("\n")
            say(f"{label}: {figures.error}; its log ends with:\n{tail}")
            return figures
        try:
            stage = Stage(bridges, receiver, scale, concurrency, keys.admin_token)
            run = BridgeRun(stage, keys.api_token, tag, figures)
            await run.all(relay_rate)
        except (RuntimeError, ClientFailure, KeyError, ValueError) as exc:
            # Reported in the table, with the figures measured so far; the next
            # configuration still runs.
            figures.error = f"{type(exc).__name__}: {exc} (the logs' ends are on stderr)"
            for bridge in bridges:
                say(f"{label}: {bridge.role}'s log ends with:\n{bridge.tail()}")
        finally:
            for bridge in bridges:
                await bridge.stop()
    return figures


def created(load: LoadResult) -> int:
    """How many handoffs created a conversation (201)."""
    return sum(1 for o in load.outcomes if o.status == 201)


@dataclass
class BridgeRun:
    """The phases of one configuration, in order, filling in its figures."""

    stage: Stage
    token: str
    tag: str
    figures: BridgeFigures

    @property
    def scale(self) -> Scale:
        """The run's scale."""
        return self.stage.scale

    def rss(self, moment: str) -> None:
        """Read every replica's RSS."""
        self.figures.rss_mb[moment] = [round(s.rss(), 1) for s in self.stage.servers]

    async def quiet(self, before: str) -> None:
        """Wait for the outbox to drain; say so when it did not."""
        if left := await self.stage.wait_quiet():
            more = "+" if left >= 1000 else ""
            self.figures.notes.append(f"{left}{more} deliveries still pending before {before}")

    async def handoffs(
        self,
        name: str,
        seconds: float,
        limit: int,
        channel: str | None = None,
        region: Callable[[int], str] | None = None,
    ) -> LoadResult:
        """Closed-loop handoffs of distinct customers (on the main channel unless told).

        The answers' bodies are kept only for conversations opened on a named channel or
        region: the message phases need their ids and join links.
        """
        stage = self.stage

        def make(i: int) -> Request:
            key = f"{self.tag}-{name}-{i}"
            return bodies.handoff(
                stage.port(i),
                key,
                stage.callback_url,
                self.token,
                channel=channel,
                region=region(i) if region else None,
            )

        return await closed_loop(
            make,
            concurrency=stage.concurrency,
            seconds=seconds,
            limit=limit,
            keep_bodies=bool(channel or region),
        )

    async def all(self, relay_rate: float) -> None:
        """Every phase of the configuration."""
        self.rss("ready")
        await self.handoff_phases()
        customers, join_tokens = await self.open_conversations()
        self.rss("active")
        await self.customer_phases(customers, relay_rate)
        await self.agent_phase(join_tokens)
        if len(self.stage.servers) > 1:
            await self.probe(customers)
        if self.scale.soak_messages:
            await self.soak(customers)
        self.rss("end")

    async def handoff_phases(self) -> None:
        """Handoffs with none waiting, seeding, and handoffs with the queue seeded."""
        scale, figures = self.scale, self.figures
        announced_before = await self.announced()
        say(f"{figures.label}: handoffs, none waiting")
        empty = await self.handoffs("h0", scale.seconds, UNLIMITED)
        figures.handoffs_empty = Requests.of(empty)
        waiting = created(empty)
        say(f"{figures.label}: seeding {scale.waiting:,} waiting conversations (not timed)")
        seeded = await self.handoffs("seed", scale.seed_seconds, max(0, scale.waiting - waiting))
        waiting += created(seeded)
        if waiting < scale.waiting:
            figures.notes.append(
                f"seeding reached {waiting:,} of {scale.waiting:,} waiting conversations"
                f" in its {scale.seed_seconds:g} s"
            )
        await self.quiet(f"handoffs with {waiting:,} waiting")
        figures.waiting = waiting
        say(f"{figures.label}: handoffs, {waiting:,} waiting")
        full = await self.handoffs("hN", scale.seconds, UNLIMITED)
        figures.handoffs_waiting = Requests.of(full)
        figures.active_conversations = waiting + created(full)
        await self.settle_announcements(announced_before, figures.active_conversations)

    async def announced(self) -> int:
        """`queue.updated` events the fake bot has received so far (in every configuration)."""
        return int((await self.stage.counts())["kinds"].get("bot.queue.updated", 0))

    async def settle_announcements(self, before: int, waiting: int) -> None:
        """Wait for every waiting chat's first `queue.updated`, a cost of the handoffs.

        The service announces a channel's positions at most once per
        `queue.update_seconds`, a batch at a time: without this wait, that work (an event
        and a delivery per handoff) would run into the message phases and be counted
        there. Bounded by three quiet times; a note says when it did not finish.
        """
        deadline = time.monotonic() + 3 * self.scale.quiet_seconds
        while (announced := await self.announced() - before) < waiting:
            if time.monotonic() >= deadline:
                self.figures.notes.append(
                    f"{announced:,} of {waiting:,} waiting chats had their first queue.updated"
                    " before the message phases"
                )
                return
            await asyncio.sleep(0.2)
        await self.quiet("the message phases")

    async def open_conversations(self) -> tuple[list[str], list[str]]:
        """Kommunicate conversations for customer messages; joined console ones for agents."""
        count = self.scale.conversations
        seconds = self.scale.seed_seconds
        say(f"{self.figures.label}: opening {count} + {count} conversations (not timed)")
        before = (await self.stage.counts())["kinds"].get("kommunicate.create", 0)
        opened = await self.handoffs("km", seconds, count, channel=KOMMUNICATE_CHANNEL)
        customers = [json.loads(o.body)["id"] for o in opened.outcomes if o.status == 201]
        console = await self.handoffs("console", seconds, count, region=agent_region)
        pages = [json.loads(o.body) for o in console.outcomes if o.status == 201]
        join_tokens = [page["join_url"].rsplit("/", 1)[1] for page in pages]
        stage = self.stage
        joined = await closed_loop(
            lambda i: bodies.join(stage.port(i), join_tokens[i], f"Agent {i}"),
            concurrency=stage.concurrency,
            seconds=seconds,
            limit=len(join_tokens),
        )
        join_tokens = [join_tokens[o.index] for o in joined.outcomes if o.status == 200]
        if not customers or not join_tokens:
            raise RuntimeError(
                f"opened {len(customers)} Kommunicate and joined {len(join_tokens)} console"
                f" conversations; failures {opened.failures()} {console.failures()}"
            )
        deadline = time.monotonic() + self.scale.quiet_seconds
        while time.monotonic() < deadline:
            kinds = (await stage.counts())["kinds"]
            if kinds.get("kommunicate.create", 0) - before >= len(customers):
                break
            await asyncio.sleep(0.1)
        self.figures.active_conversations += len(customers) + len(join_tokens)
        await self.quiet("the message phases")
        return customers, join_tokens

    def message_port(self, index: int, conversations: int) -> int:
        """Round robin over replicas such that each conversation's messages alternate too."""
        servers = len(self.stage.servers)
        shift = index // conversations if conversations % servers == 0 else 0
        return self.stage.servers[(index + shift) % servers].port

    def customer_message(self, customers: list[str], prefix: str) -> Callable[[int], Request]:
        """The index-th customer message of a phase, over the Kommunicate conversations."""

        def make(i: int) -> Request:
            port = self.message_port(i, len(customers))
            return bodies.customer_message(
                port, customers[i % len(customers)], f"{prefix}.{i}", self.token
            )

        return make

    async def customer_phases(self, customers: list[str], relay_rate: float) -> None:
        """As fast as accepted, then paced at half the relay anchor's rate."""
        figures = self.figures
        say(f"{figures.label}: customer messages")
        prefix = f"{self.tag}cust"
        figures.customer = await measure_delivery(
            self.stage, prefix, self.customer_message(customers, prefix)
        )
        figures.messages += figures.customer.accepted.ok
        await self.quiet("the paced customer messages")
        say(f"{figures.label}: customer messages at {relay_rate / 2:,.0f}/s")
        prefix = f"{self.tag}paced"
        figures.customer_paced = await measure_delivery(
            self.stage, prefix, self.customer_message(customers, prefix), rate=relay_rate / 2
        )
        figures.messages += figures.customer_paced.accepted.ok
        await self.quiet("the agent messages")

    async def agent_phase(self, join_tokens: list[str]) -> None:
        """Agents' messages through the console, to the bot's callback."""
        say(f"{self.figures.label}: agent messages")
        prefix = f"{self.tag}agent"

        def make(i: int) -> Request:
            port = self.message_port(i, len(join_tokens))
            return bodies.agent_message(port, join_tokens[i % len(join_tokens)], f"{prefix}.{i}")

        self.figures.agent = await measure_delivery(self.stage, prefix, make)
        self.figures.messages += self.figures.agent.accepted.ok
        await self.quiet("the next phase")

    async def probe(self, customers: list[str]) -> None:
        """Replicas: a low rate of customer messages alternating replicas; is there a poll wait?"""
        say(f"{self.figures.label}: low-rate probe across replicas")
        prefix = f"{self.tag}probe"
        self.figures.probe = await measure_delivery(
            self.stage,
            prefix,
            self.customer_message(customers, prefix),
            rate=self.scale.probe_rate,
            seconds=max(2.0, self.scale.seconds),
        )
        self.figures.messages += self.figures.probe.accepted.ok
        await self.quiet("the soak")

    async def soak(self, customers: list[str]) -> None:
        """Customer messages until the run has sent `soak_messages` (or time is up)."""
        say(f"{self.figures.label}: soak to {self.scale.soak_messages:,} messages")
        servers, prefix = self.stage.servers, f"{self.tag}soak"
        start = [s.rss() for s in servers]
        peak = list(start)

        async def watch() -> None:
            while True:
                await asyncio.sleep(1)
                peak[:] = [max(p, s.rss()) for p, s in zip(peak, servers, strict=True)]

        watcher = asyncio.create_task(watch())
        try:
            load = await closed_loop(
                self.customer_message(customers, prefix),
                concurrency=self.stage.concurrency,
                seconds=self.scale.soak_seconds,
                limit=max(0, self.scale.soak_messages - self.figures.messages),
            )
            accepted = len(load.ok())
            await self.stage.wait_arrivals(
                prefix, accepted, time.monotonic() + self.scale.drain_seconds
            )
        finally:
            watcher.cancel()
        delivered = (await self.stage.counts())["arrivals"].get(prefix, 0)
        self.figures.messages += accepted
        if self.figures.messages < self.scale.soak_messages:
            self.figures.notes.append(
                f"the soak stopped at its {self.scale.soak_seconds:g} s limit:"
                f" {self.figures.messages:,} messages in all, not {self.scale.soak_messages:,}"
            )
        self.figures.soak = Soak(
            accepted,
            delivered,
            round(load.seconds, 1),
            [round(r, 1) for r in start],
            [round(r, 1) for r in peak],
        )
