"""Slow clients are cut off: a request head or body sent a byte a second does not hold a
connection open past the server's header and body timeouts.

The real service runs as a subprocess (the timeouts are `web.run_app` options); raw
sockets trickle a request head, or a complete head and then its body, one byte a second.
Each stops by itself after a generous bound (three times the timeout) and reports when the
server closed it; the timing is measured and printed, and only the bound is asserted.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONFIG, Database
from tests.integration.test_log_secrets import serving
from tests.integration.test_restart import BridgeProcess

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 3.0
CONNECTIONS = 20
BYTE_EVERY_SECONDS = 1.0
HEAD = "POST /v1/handoffs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@dataclass
class Outcome:
    """What one trickling client saw: when the server closed it, and what it answered."""

    closed_after: float | None
    answer: bytes


async def trickle(port: int, at_once: bytes, trickled: bytes, bound: float) -> Outcome:
    """Send `at_once`, then `trickled` a byte a second, until the server closes or `bound`."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = loop.time()
    answer = b""
    try:
        writer.write(at_once)
        for index in range(len(trickled)):
            if loop.time() - started > bound:
                break
            writer.write(trickled[index : index + 1])
            try:
                chunk = await asyncio.wait_for(reader.read(4096), BYTE_EVERY_SECONDS)
            except TimeoutError:
                continue
            if not chunk:
                return Outcome(loop.time() - started, answer)
            answer += chunk
        return Outcome(None, answer)
    except (ConnectionResetError, BrokenPipeError):
        return Outcome(loop.time() - started, answer)
    finally:
        writer.close()


def write_config(directory: Path) -> Path:
    """The shipped config with short header and body timeouts."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    server = config.setdefault("server", {})
    server["header_timeout_seconds"] = HEADER_TIMEOUT
    server["body_timeout_seconds"] = BODY_TIMEOUT
    path = directory / "bridge.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_slow_heads_and_bodies_are_closed(database: Database, tmp_path: Path) -> None:
    """Trickled heads and bodies are closed within their timeouts; others are still served."""
    async with serving(write_config(tmp_path), database, BridgeProcess) as bridge:
        body = json.dumps({"padding": "x" * 200}).encode()
        heads = [
            trickle(bridge.port, b"", HEAD.encode() * 10, 3 * HEADER_TIMEOUT)
            for _ in range(CONNECTIONS)
        ]
        bodies = [
            trickle(
                bridge.port,
                f"{HEAD}Content-Length: {len(body)}\r\n\r\n".encode(),
                body,
                3 * BODY_TIMEOUT,
            )
            for _ in range(CONNECTIONS)
        ]
        attack = asyncio.gather(*heads, *bodies)
        # While they trickle, everyone else is answered as usual.
        await asyncio.sleep(BYTE_EVERY_SECONDS)
        status, health = await bridge.get("/healthz")
        assert status == 200, health
        outcomes = await attack

    slow_heads, slow_bodies = outcomes[:CONNECTIONS], outcomes[CONNECTIONS:]
    print(
        "closed after (s): heads",
        sorted(round(o.closed_after or -1, 1) for o in slow_heads),
        "bodies",
        sorted(round(o.closed_after or -1, 1) for o in slow_bodies),
    )
    assert all(o.closed_after is not None for o in slow_heads), "a trickled head stayed open"
    assert all(o.closed_after is not None for o in slow_bodies), "a trickled body stayed open"
    # Each body got its answer before the close: 408, naming what was slow.
    for outcome in slow_bodies:
        head, _, payload = outcome.answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), outcome.answer[:200]
        problem = json.loads(payload)
        assert problem["error"]["code"] == "request_timeout", problem
        assert problem["error"]["fields"] == [{"field": "(body)", "problem": "sent too slowly"}]
