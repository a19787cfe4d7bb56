"""The first hour's commands as real processes: `serve` prints a URL that answers, and
`listen` verifies events with the secret the bridge keeps when none is given."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from bridge.relay import signing
from tests.conftest import CONFIG

# The code under test, on a SQLite file in tmp_path, with no BRIDGE_* from outside.
from tests.integration.test_credentials import _env
from tests.kit.eventually import WITHIN_SECONDS


@asynccontextmanager
async def _running(tmp_path: Path, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m bridge ARGS` in tmp_path, interrupted (Ctrl+C) when the block ends."""
    with (tmp_path / f"{args[0]}.err").open("wb") as errors:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge",
            *args,
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
        )
        try:
            yield process
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(process.wait(), WITHIN_SECONDS)
                except TimeoutError:
                    process.kill()
                    await process.wait()


def _errors(tmp_path: Path) -> str:
    return "\n".join(p.read_text() for p in tmp_path.glob("*.err"))


async def _line(process: asyncio.subprocess.Process, tmp_path: Path) -> str:
    """The next line the process prints (failing with its error output when it stops)."""
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), WITHIN_SECONDS)
    if not line:
        raise AssertionError(f"the process ended without printing:\n{_errors(tmp_path)}")
    return line.decode().rstrip("\n")


async def test_serve_prints_the_index_url_and_it_answers(tmp_path: Path) -> None:
    port = unused_port()
    async with _running(tmp_path, "serve", "--config", str(CONFIG), "--port", str(port)) as serve:
        first = await _line(serve, tmp_path)
        assert first.startswith(f"handoff bridge serving on http://127.0.0.1:{port}"), first
        second = await _line(serve, tmp_path)
        url = f"http://127.0.0.1:{port}/"
        assert second.startswith(f"open {url} "), second
        async with (
            aiohttp.ClientSession() as http,
            http.get(url, headers={"Accept": "application/json"}) as answer,
        ):
            assert answer.status == 200
            view = await answer.json()
    assert view["desk"]["agents"] == ["demo"]
    assert view["links"]["health"] == "/healthz"


async def test_listen_without_a_secret_verifies_with_the_stored_one(tmp_path: Path) -> None:
    port = unused_port()
    async with _running(tmp_path, "listen", "--config", str(CONFIG), "--port", str(port)) as proc:
        started = await _line(proc, tmp_path)
        assert started.startswith(f"listening for the bridge's events on http://127.0.0.1:{port}/")
        assert "the bridge's database" in started
        assert "whsec_" not in started
        shown = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge",
            "secrets",
            "show",
            "--config",
            str(CONFIG),
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(shown.communicate(), WITHIN_SECONDS)
        secret = out.decode().strip()
        assert secret.startswith("whsec_")

        event = {"type": "agent.message", "data": {"conversation_id": "c-9"}}
        event["data"]["message"] = {"text": "hello"}
        body = json.dumps(event)
        headers = signing.headers(signing.secret_key(secret), "msg_x", int(time.time()), body)
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"http://127.0.0.1:{port}/callback", data=body, headers=headers) as answer,
        ):
            assert answer.status == 204
        line = await _line(proc, tmp_path)
        assert line.startswith("event     agent.message  conversation=c-9"), line
        assert "text='hello'" in line


@pytest.mark.parametrize("secret", ["not-a-secret", "whsec_???"])
async def test_listen_refuses_to_start_with_a_malformed_secret(tmp_path: Path, secret: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "listen",
        "--secret",
        secret,
        cwd=tmp_path,
        env=_env(tmp_path),
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await asyncio.wait_for(process.communicate(), WITHIN_SECONDS)
    assert process.returncode == 2
    assert b"configuration error: the webhook secret" in errors
