"""Restarts lose nothing and double nothing: a graceful stop, and SIGKILL mid-delivery.

Both tests run on a SQLite file and on the real PostgreSQL (the `database` fixture).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import unused_port

from tests.conftest import (
    CONFIG,
    CONSOLE_SECRET,
    ROOT,
    Database,
    make_settings,
    start_bridge,
    stop_bridge,
)
from tests.fakes import WEBHOOK_SECRET, FakeBot, handoff_body
from tests.kit.eventually import eventually

# The subprocess's relay: a row the killed process had in flight is taken over by the
# new one once its lease (renewed while the attempt runs) runs out, LEASE_SECONDS after
# the last renewal at most.
LEASE_SECONDS = 2
SUBPROCESS_RELAY: dict[str, Any] = {
    "max_attempts": 1000,
    "backoff_initial_seconds": 0.05,
    "backoff_max_seconds": 0.2,
    "poll_interval_seconds": 0.05,
    "request_timeout_seconds": 2,
    "quick_retries": 0,
    "max_in_flight": 4,
    "lease_seconds": LEASE_SECONDS,
}
STARTUP_SECONDS = 30.0


# ---- a bot that can refuse, be slow, and hold deliveries in flight -----------------------


@dataclass
class ControlledBot(FakeBot):
    """A FakeBot with switches: refuse everything, answer slowly, hold events past a count.

    `refuse_status` answers that status to every (correctly signed) request while set.
    `delay` is slept before each answer. `hold_events(after)` answers the first `after`
    events normally and keeps every later one waiting, unanswered, until `release()`;
    after that it is handled as usual (recorded once per webhook-id).
    """

    refuse_status: int | None = None
    delay: float = 0.0

    @property
    def arrivals(self) -> Counter[str]:
        """Requests per webhook-id as they arrived, held ones included."""
        return Counter(call.headers.get("webhook-id", "") for call in self.calls)

    @property
    def held_ids(self) -> list[str]:
        """The webhook-ids of the requests held, in arrival order."""
        return [call.headers.get("webhook-id", "") for call in self.held]

    def hold_events(self, after: int) -> None:
        """Answer `after` events, then hold the rest until `release()` (queue updates pass)."""
        self.hold(lambda call: self._under_test(call.body), after=after)

    def _under_test(self, body: Any) -> bool:
        # Queue updates pass straight through: only the events under test are held,
        # refused or slowed.
        return isinstance(body, dict) and body.get("type") not in self.ignored

    async def handle(self, request: web.Request) -> web.Response:
        if not self._under_test(json.loads(await request.read())):
            return await super().handle(request)
        if self.refuse_status is not None:
            # FakeBot.handle answers the script's next status after verifying the
            # signature; nothing awaits in between, so no other request can take it.
            self.script.clear()
            self.script.append(self.refuse_status)
            return await super().handle(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().handle(request)


@pytest.fixture
async def controlled_bot() -> AsyncIterator[ControlledBot]:
    """A ControlledBot callback server that verifies every signature (it releases on exit)."""
    async with ControlledBot() as fake:
        yield fake


# ---- helpers -------------------------------------------------------------------------


class BridgeClient(Protocol):
    """What the tests need from a running bridge: JSON GET and POST by path."""

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]: ...

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]: ...


async def outbox_items(bridge: BridgeClient, status: str | None = None) -> list[dict[str, Any]]:
    """Every outbox row (optionally of one status), following the pages."""
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        query = f"/v1/outbox?limit=1000&after={after}"
        if status is not None:
            query += f"&status={status}"
        code, page = await bridge.get(query)
        assert code == 200, page
        items.extend(page["items"])
        if page["next_after"] is None:
            return items
        after = page["next_after"]


async def no_pending(bridge: BridgeClient) -> bool:
    """True once the outbox holds no pending row."""
    return not await outbox_items(bridge, "pending")


def join_token(conversation: dict[str, Any]) -> str:
    """The signed console token at the end of a conversation's join URL."""
    return str(conversation["join_url"]).rsplit("/", 1)[1]


# ---- 1. graceful restart with an undelivered outbox ------------------------------------

CONVERSATIONS = 4
REPLIES = 3


async def test_undelivered_outbox_is_delivered_once_after_restart(
    database: Database, controlled_bot: ControlledBot
) -> None:
    """Events refused until the app stops are delivered by a new instance, once, in order."""
    bot = controlled_bot
    bot.refuse_status = 503
    # Enough attempts that refused rows stay pending (never dead) for the whole test.
    relay = {"max_attempts": 100_000}
    sent: dict[str, list[str]] = {}

    first = await start_bridge(make_settings(database, unused_port(), relay=relay))
    try:
        for i in range(CONVERSATIONS):
            status, conversation = await first.post(
                "/v1/handoffs",
                handoff_body(bot.url, conversation_id=f"restart-{i}", customer_id=f"cust-r{i}"),
            )
            assert status == 201, conversation
            token = join_token(conversation)
            status, joined = await first.post(f"/console/api/{token}/join", {"name": f"Ana {i}"})
            assert status == 200, joined
            texts = [f"reply {j} in conversation {i}" for j in range(REPLIES)]
            for j, text in enumerate(texts):
                status, reply = await first.post(
                    f"/console/api/{token}/messages", {"text": text, "client_id": f"r{i}-{j}"}
                )
                assert status == 201, reply
            sent[conversation["id"]] = texts

        # The head of every conversation's bot lane has been tried and refused.
        await eventually(
            lambda: len(bot.attempts) >= CONVERSATIONS,
            within=15,
            what="a refused attempt on every conversation",
        )
        pending = [
            i
            for i in await outbox_items(first, "pending")
            if i["kind"] == "bot.event" and i["event_type"] != "queue.updated"
        ]
        expected_total = CONVERSATIONS * (1 + REPLIES)
        assert len(pending) == expected_total, pending
        assert {i["conversation_id"] for i in pending} == set(sent)
        assert bot.events == []
    finally:
        await stop_bridge(first)

    pending_ids = {item["webhook_id"] for item in pending}
    bot.refuse_status = None
    bot.script.clear()

    second = await start_bridge(make_settings(database, unused_port(), relay=relay))
    try:
        # Bounded by the lease (make_settings: 5 s timeout, no quick retries -> 15 s) plus a
        # margin: a graceful stop can cancel RelayWorker.run_once after its claim has
        # committed but before it starts the delivery, and such a row is only taken over
        # once its lease runs out: delayed, never lost.
        await bot.wait_for(lambda b: len(b.events) >= expected_total, within=15 + 20)
        await eventually(lambda: no_pending(second), within=15, what="an empty pending outbox")
        assert not await outbox_items(second, "dead")
    finally:
        await stop_bridge(second)

    # Each event arrived exactly once, under the webhook-id it was queued with.
    received_ids = [event.webhook_id for event in bot.events]
    assert len(received_ids) == len(set(received_ids)) == expected_total
    assert set(received_ids) == pending_ids
    assert bot.duplicates == 0
    assert bot.bad_signatures == 0
    # Per conversation: the join first, then the replies in the order they were sent.
    for conversation_id, texts in sent.items():
        events = [e for e in bot.events if e.data["conversation_id"] == conversation_id]
        assert [e.type for e in events] == ["agent.joined"] + ["agent.message"] * REPLIES
        assert [e.data["message"]["text"] for e in events[1:]] == texts


# ---- 2. SIGKILL while deliveries are in flight -------------------------------------------

KILL_CONVERSATIONS = 20
# The bot answers this many deliveries, then leaves the rest hanging until the kill.
ANSWERED_BEFORE_KILL = 8


def write_config(directory: Path, relay: dict[str, Any] = SUBPROCESS_RELAY) -> Path:
    """The shipped config with a fast relay, written where the subprocess can read it."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["relay"] = dict(relay)
    config.setdefault("server", {})["log_level"] = "INFO"
    path = directory / "bridge.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class BridgeProcess:
    """`python -m bridge serve` as a real subprocess, with its output in a log file."""

    config: Path
    database: Database
    log_path: Path
    http: aiohttp.ClientSession
    process: asyncio.subprocess.Process | None = None
    port: int = 0
    runs: int = 0
    _log: IO[bytes] | None = None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
        env.update(
            BRIDGE_DATABASE__URL=self.database.url,
            BRIDGE_SECURITY__WEBHOOK_SECRET=WEBHOOK_SECRET,
            BRIDGE_SECURITY__CONSOLE_SECRET=CONSOLE_SECRET,
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
        )
        if self.database.pg_schema:
            env["BRIDGE_DATABASE__PG_SCHEMA"] = self.database.pg_schema
        return env

    def _open_log(self) -> IO[bytes]:
        log = self.log_path.open("ab")
        log.write(f"\n===== run {self.runs} on port {self.port} =====\n".encode())
        log.flush()
        return log

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 120) -> str:
        """The end of the subprocess log, for failure reports."""
        if not self.log_path.exists():
            return "(no log written)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def url(self, path: str) -> str:
        """An absolute URL on the running process."""
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        """Start on a fresh port and return once /readyz answers 200."""
        assert self.process is None or self.process.returncode is not None
        self.runs += 1
        self.port = unused_port()
        self._close_log()
        self._log = self._open_log()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge",
            "serve",
            "--config",
            str(self.config),
            "--port",
            str(self.port),
            cwd=str(self.log_path.parent),
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        await eventually(self._ready, within=STARTUP_SECONDS, what=f"/readyz on {self.port}")

    async def _ready(self) -> bool:
        assert self.process is not None
        if self.process.returncode is not None:
            raise AssertionError(f"bridge exited early with {self.process.returncode}")
        try:
            async with self.http.get(
                self.url("/readyz"), timeout=aiohttp.ClientTimeout(total=2)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no graceful drain, connections just drop."""
        assert self.process is not None and self.process.returncode is None
        os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def close(self) -> None:
        """Kill the process if it still runs; always safe to call."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._close_log()

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.get(self.url(path), **kwargs) as response:
            return response.status, await _body(response)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.post(self.url(path), json=body, **kwargs) as response:
            return response.status, await _body(response)


async def _body(response: aiohttp.ClientResponse) -> Any:
    if response.content_type == "application/json":
        return await response.json()
    return await response.text()


async def test_kill_9_mid_flight_loses_nothing(
    database: Database, controlled_bot: ControlledBot, tmp_path: Path
) -> None:
    """SIGKILL while joins are being delivered: a restart delivers every join, each once."""
    bot = controlled_bot
    bot.delay = 0.05
    bot.hold_events(ANSWERED_BEFORE_KILL)
    async with aiohttp.ClientSession() as http:
        bridge = BridgeProcess(write_config(tmp_path), database, tmp_path / "bridge.log", http)
        try:
            await bridge.start()
            tokens: dict[str, str] = {}
            for i in range(KILL_CONVERSATIONS):
                status, conversation = await bridge.post(
                    "/v1/handoffs",
                    handoff_body(bot.url, conversation_id=f"kill-{i}", customer_id=f"cust-k{i}"),
                )
                assert status == 201, conversation
                tokens[conversation["id"]] = join_token(conversation)
            # Every join gets its 2xx before the kill, so every join must have its effect
            # (an active conversation and one agent.joined event) after the restart.
            for token in tokens.values():
                status, joined = await bridge.post(f"/console/api/{token}/join", {"name": "Ana"})
                assert status == 200, joined

            # Kill once the bot has answered some joins and holds at least one unanswered:
            # that delivery is in flight, its row leased by the process about to die.
            await eventually(
                lambda: bool(bot.held_ids), within=20, what="a delivery held in flight"
            )
            await bridge.kill()
            answered_before_kill = len(bot.events)
            in_flight_at_kill = set(bot.held_ids)
            assert 0 < answered_before_kill < KILL_CONVERSATIONS
            # The held requests now complete against a dead client: the bot has seen
            # them, the bridge never learned it (the at-least-once case).
            bot.release()

            await bridge.start()
            expected = set(tokens)
            await eventually(
                lambda: (
                    {e.data["conversation_id"] for e in bot.of_type("agent.joined")} >= expected
                ),
                within=LEASE_SECONDS + 20,
                what="an accepted agent.joined for every conversation",
            )
            # Rows the killed process had leased come back after the lease (~2 s).
            await eventually(
                lambda: no_pending(bridge),
                within=LEASE_SECONDS + 20,
                what="an empty pending outbox",
            )

            joined_events = bot.of_type("agent.joined")
            assert {e.data["conversation_id"] for e in joined_events} == expected
            assert bot.bad_signatures == 0
            # A receiver that dedupes by webhook-id sees each event exactly once. The raw
            # attempt count may exceed N: a POST in flight at the kill is sent again by
            # the new process under the same webhook-id (the at-least-once contract).
            assert len({e.webhook_id for e in joined_events}) == KILL_CONVERSATIONS
            assert len(joined_events) == KILL_CONVERSATIONS
            assert sum(bot.arrivals.values()) >= KILL_CONVERSATIONS

            # The outbox agrees: one delivered agent.joined per conversation, under the
            # same webhook-ids the bot accepted, and nothing dead.
            rows = [
                item
                for item in await outbox_items(bridge)
                if item["kind"] == "bot.event" and item["event_type"] == "agent.joined"
            ]
            assert {row["status"] for row in rows} == {"delivered"}
            assert {row["webhook_id"] for row in rows} == {e.webhook_id for e in joined_events}
            assert {row["conversation_id"] for row in rows} == expected
            # What was in flight at the kill was never acknowledged to the bridge, so the
            # new process sent it again.
            for webhook_id in in_flight_at_kill:
                assert bot.arrivals[webhook_id] >= 2, (webhook_id, bot.arrivals)

            for conversation_id in expected:
                status, state = await bridge.get(f"/v1/conversations/{conversation_id}")
                assert status == 200, state
                assert (state["status"], state["agent"]["name"]) == ("active", "Ana")
        except BaseException:
            print(f"---- tail of {bridge.log_path} ----\n{bridge.tail()}")
            raise
        finally:
            await bridge.close()


# ---- 3. a delivery cut off by SIGKILL is taken over after the short lease ---------------

# Attempts may run 30 s: a lease covering a whole attempt (the old fixed lease was
# request_timeout * (quick_retries + 1) + 10) would keep the row for 40 s after its claim.
LONG_ATTEMPT_RELAY = {**SUBPROCESS_RELAY, "request_timeout_seconds": 30, "lease_seconds": 2}
OLD_FIXED_LEASE_SECONDS = 30 * (0 + 1) + 10
# A generous multiple of the 2 s lease, and well below what the old lease would take.
TAKEN_OVER_WITHIN = 10 * LONG_ATTEMPT_RELAY["lease_seconds"]


async def test_delivery_cut_off_by_kill_9_is_retried_soon_after_restart(
    database: Database, controlled_bot: ControlledBot, tmp_path: Path
) -> None:
    """The lease is renewed while the attempt runs, so it is short: no 40 s wait after a crash."""
    assert TAKEN_OVER_WITHIN * 1.5 < OLD_FIXED_LEASE_SECONDS
    bot = controlled_bot
    bot.hold_events(0)
    async with aiohttp.ClientSession() as http:
        config = write_config(tmp_path, LONG_ATTEMPT_RELAY)
        bridge = BridgeProcess(config, database, tmp_path / "bridge.log", http)
        try:
            await bridge.start()
            status, conversation = await bridge.post(
                "/v1/handoffs", handoff_body(bot.url, conversation_id="cut", customer_id="c-cut")
            )
            assert status == 201, conversation
            status, joined = await bridge.post(
                f"/console/api/{join_token(conversation)}/join", {"name": "Ana"}
            )
            assert status == 200, joined
            # Held for longer than several leases: the lease is renewed meanwhile, so the
            # row stays with this process (one delivery in flight for the lane).
            await eventually(lambda: bool(bot.held_ids), within=20, what="a held delivery")
            await asyncio.sleep(3 * LONG_ATTEMPT_RELAY["lease_seconds"])
            assert bot.arrivals[bot.held_ids[0]] == 1, bot.arrivals
            held = bot.held_ids[0]
            await bridge.kill()
            bot.release()

            await bridge.start()
            # Retried from the restart on, after what is left of a 2 s lease, not 40 s.
            await eventually(
                lambda: bot.arrivals[held] >= 2,
                within=TAKEN_OVER_WITHIN,
                what="the cut-off delivery sent again by the new process",
            )
            await eventually(
                lambda: no_pending(bridge), within=TAKEN_OVER_WITHIN, what="no pending row"
            )
            assert [e.webhook_id for e in bot.of_type("agent.joined")] == [held]
        except BaseException:
            print(f"---- tail of {bridge.log_path} ----\n{bridge.tail()}")
            raise
        finally:
            await bridge.close()
